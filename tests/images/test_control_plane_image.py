"""The control plane's image `make images` built, run with buildah's chroot isolation on the
host's network against the test PostgreSQL and Redis, as the Helm chart runs it (production
settings): its web command answers /readyz and takes a sign-up, which provisions the
organization's schema; its worker command runs the task the sign-up queued (the verification
email); its beat command starts; its migrate command (the chart's migrations Job) ends well.
The usage consumer command is run by test_gateway_image.py, on the gateway's usage."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import httpx
import pytest
from django.db import connection

from infra.images import control_plane_image
from saas.launcher.services import free_port
from tests.control_plane import wait_for
from tests.images.containers import (
    control_plane_env,
    create,
    health,
    image_exists,
    sbom_of,
    sbom_versions,
    start_control_plane_command,
)

pytestmark = [pytest.mark.images, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

IMAGE = control_plane_image()
# Behind the chart's Ingress: HTTPS ended there, said in X-Forwarded-Proto.
PROXIED = {"X-Forwarded-Proto": "https"}


def test_the_control_plane_image_serves_a_sign_up_and_its_worker_runs_the_task(tmp_path: Path) -> None:
    if not image_exists(IMAGE.reference):
        pytest.fail(f"{IMAGE.reference} is not built: `make test-images` builds it (make images).")
    port = free_port()
    mail = tmp_path / "mail"
    mail.mkdir()
    mail.chmod(0o777)  # the image's user (10001) writes there
    env = {
        **control_plane_env(port),
        "WEB_WORKERS": "1",
        "WORKER_CONCURRENCY": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": "/mail",
    }
    web = create(IMAGE.reference, f"control-plane-web-{os.getpid()}")
    worker = create(IMAGE.reference, f"control-plane-worker-{os.getpid()}")
    try:
        assert web.config["User"] == "10001" and web.config["Cmd"] == ["web"]
        # No compiler and no pip in the final stage: only the virtualenv came from the builder.
        rootfs = web.rootfs
        assert not [
            tool
            for tool in ("gcc", "cc", "x86_64-linux-gnu-gcc-12", "make")
            if (rootfs / "usr/bin" / tool).exists()
        ]
        assert not list((rootfs / "opt/saas/bin").glob("pip*"))
        assert (rootfs / "app/static/staticfiles.json").is_file()  # collectstatic's manifest
        sbom = sbom_of(IMAGE.reference)
        debs = sbom_versions(sbom, "deb")
        assert (
            not {"gcc", "gcc-12", "cpp", "binutils", "make", "python3-dev"} & set(debs) and "tzdata" in debs
        )
        assert sbom_versions(sbom, "pypi")["Django"].startswith("5.2.")
        labels = web.config["Labels"]
        assert labels["org.opencontainers.image.version"] == IMAGE.tag
        assert labels["org.opencontainers.image.ref.name"] == IMAGE.reference
        base = f"http://127.0.0.1:{port}"
        web.start(None, env, log=tmp_path / "web.log")  # its CMD: web
        ready = wait_for(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, timeout=90)
        assert ready, (tmp_path / "web.log").read_text()
        assert health(web) == 0
        # Production: plain HTTP is sent to HTTPS; the console and its assets come from the image.
        assert httpx.get(f"{base}/api/v1/", timeout=5).status_code == 301
        console = httpx.get(f"{base}/console/", headers=PROXIED, timeout=5)
        assert console.status_code == 200 and "/static/console/" in console.text

        email = f"images-{secrets.token_hex(4)}@example.com"
        signup = httpx.post(
            f"{base}/api/v1/auth/signup/",
            json={"email": email, "password": "a long passphrase 42", "organization_name": "Image Test"},
            headers=PROXIED,
            timeout=60,
        )
        assert signup.status_code == 201, signup.text
        from tenants.models import Organization

        schema = Organization.objects.get(name="Image Test").schema_name
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", [schema])
            [tables] = cursor.fetchone()
        assert tables > 10  # provisioned from the template (with the pg_dump in the image)

        # The worker takes the verification email the sign-up queued in Redis and sends it.
        worker.start(["worker"], env, volumes=[f"{mail}:/mail"], log=tmp_path / "worker.log")
        sent = wait_for(lambda: [p for p in mail.iterdir() if email in p.read_text()], timeout=90)
        assert sent, (tmp_path / "worker.log").read_text()
        message = sent[0].read_text()  # type: ignore[index]
        assert f"To: {email}" in message and "verify" in message.lower()
        assert "Task identity.send_verification_email" in (tmp_path / "worker.log").read_text()
        assert worker.stop(timeout=60) == 0  # SIGTERM: Celery's warm shutdown
        # uvicorn shuts down, then ends by the signal it was sent (buildah says 1 for that).
        web.stop(timeout=30)
        assert "Finished server process" in (tmp_path / "web.log").read_text()

        # Beat starts and schedules; the migrations Job's command finds every schema up to date.
        beat = start_control_plane_command(
            "beat", f"control-plane-beat-{os.getpid()}", tmp_path / "beat.log", env
        )
        try:
            wait_for(lambda: "beat: Starting" in (tmp_path / "beat.log").read_text(), timeout=60)
            time.sleep(2)
            assert beat.process is not None and beat.process.poll() is None, (
                tmp_path / "beat.log"
            ).read_text()
        finally:
            beat.remove()
        migrate = start_control_plane_command(
            "migrate", f"control-plane-migrate-{os.getpid()}", tmp_path / "migrate.log", env
        )
        try:
            assert migrate.process is not None
            assert migrate.process.wait(timeout=240) == 0, (tmp_path / "migrate.log").read_text()
        finally:
            migrate.remove()
    finally:
        for container in (web, worker):
            container.remove()
