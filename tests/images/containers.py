"""Running the images `make images` built, without a Docker engine: a working container from the
image (`buildah from`), its entrypoint and command run with `buildah run --isolation chroot
--network host`, as the image's user, in its working directory, with its environment and what
the test adds, as `docker run -e ...` would."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from infra.images import control_plane_image


def inspect_image(reference: str) -> dict[str, Any]:
    """The image's configuration, as buildah reads it (Docker's form: it keeps HEALTHCHECK)."""
    found = subprocess.run(
        ["buildah", "inspect", "--type", "image", reference], check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(found)["Docker"]["config"])


def image_exists(reference: str) -> bool:
    return subprocess.run(["podman", "image", "exists", reference], check=False).returncode == 0


@dataclass
class Container:
    """A working container of an image and the one process a test runs in it."""

    name: str
    reference: str
    config: dict[str, Any]
    process: subprocess.Popen[bytes] | None = None

    @property
    def rootfs(self) -> Path:
        mount = subprocess.run(["buildah", "mount", self.name], check=True, capture_output=True, text=True)
        return Path(mount.stdout.strip())

    def start(
        self,
        args: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        *,
        volumes: Sequence[str] = (),
        log: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """The image's entrypoint with `args` (its CMD when None), as `docker run` starts it. `env`
        becomes the container's (as `docker run -e`): what runs in it later sees it too, the
        HEALTHCHECK included."""
        if env:
            options = [option for key, value in env.items() for option in ("--env", f"{key}={value}")]
            subprocess.run(["buildah", "config", *options, self.name], check=True)
        command = [
            *(self.config.get("Entrypoint") or []),
            *(self.config.get("Cmd") or [] if args is None else args),
        ]
        self.process = self.run_in(command, volumes=volumes, log=log)
        return self.process

    def run_in(
        self,
        command: Sequence[str],
        env: dict[str, str] | None = None,
        *,
        volumes: Sequence[str] = (),
        log: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        """`command` in the container (beside what already runs there, as `docker exec`)."""
        options = ["--isolation", "chroot", "--network", "host"]
        for key, value in (env or {}).items():
            options += ["--env", f"{key}={value}"]
        for volume in volumes:
            options += ["--volume", volume]
        output = log.open("ab") if log is not None else None
        return subprocess.Popen(
            ["buildah", "run", *options, self.name, "--", *command],
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
        )

    def main_pid(self) -> int | None:
        """The started command's process: the child of buildah's chroot launcher."""
        if self.process is None or self.process.poll() is not None:
            return None
        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    if child.parent() and "buildah-chroot-exec" in " ".join(child.parent().cmdline()):  # type: ignore[union-attr]
                        return int(child.pid)
        return None

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM to the command itself, as `docker stop` sends to PID 1 (buildah does not pass
        a SIGTERM on: it kills), then its exit status; SIGKILL after `timeout`."""
        if self.process is None:
            return None
        pid = self.main_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def remove(self) -> None:
        """Stop what still runs in the container (it may have left children), then remove it."""
        if self.process is not None and self.process.poll() is None:
            self.stop(timeout=20)
        root = None
        with contextlib.suppress(subprocess.CalledProcessError):
            root = str(self.rootfs)
        if root:
            _kill_processes_under(root)
        subprocess.run(["buildah", "rm", self.name], check=False, capture_output=True)


def _kill_processes_under(rootfs: str) -> None:
    """Processes whose root is the container's (buildah binds it under /var/tmp/buildah*/mnt/rootfs,
    so compare by device and inode)."""
    try:
        wanted = os.stat(rootfs)
    except OSError:
        return
    for pid in psutil.pids():
        with contextlib.suppress(OSError, psutil.Error):
            root = os.stat(f"/proc/{pid}/root")
            if (root.st_dev, root.st_ino) == (wanted.st_dev, wanted.st_ino) and pid != os.getpid():
                os.kill(pid, signal.SIGKILL)


def create(reference: str, name: str) -> Container:
    """A working container of the local image `reference` (never pulled)."""
    subprocess.run(["buildah", "rm", name], check=False, capture_output=True)
    subprocess.run(
        ["buildah", "from", "--pull-never", "--quiet", "--name", name, reference],
        check=True,
        capture_output=True,
    )
    return Container(name=name, reference=reference, config=inspect_image(reference))


def health(container: Container, timeout: float = 10) -> int:
    """The exit status of the image's HEALTHCHECK command, run in the container."""
    test = container.config["Healthcheck"]["Test"]
    assert test[0] == "CMD", test
    probe = container.run_in(test[1:])
    try:
        return probe.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        probe.kill()
        return -1


def wait_healthy(container: Container, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health(container) == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"{container.reference} was not healthy within {timeout:.0f} s")


def control_plane_env(port: int) -> dict[str, str]:
    """The control plane image's environment against the test PostgreSQL and Redis, with the
    production settings the Helm chart gives it."""
    import secrets

    from cryptography.fernet import Fernet

    from tests.control_plane import env_sharing_test_database

    return {
        "SAAS_ENV": "production",
        "DATABASE_URL": env_sharing_test_database()["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "SAAS_PUBLIC_URL": f"https://127.0.0.1:{port}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }


def start_control_plane_command(
    command: str, name: str, log: Path, env: dict[str, str] | None = None
) -> Container:
    """The control plane image's `command` (web, worker, beat, consumer, migrate) in a container
    of its own."""
    reference = control_plane_image().reference
    if not image_exists(reference):
        raise AssertionError(f"{reference} is not built: `make test-images` builds it (make images).")
    container = create(reference, name)
    container.start([command], env or control_plane_env(0), log=log)
    return container


def sbom_of(reference: str) -> dict[str, Any]:
    """The SBOM `make images` wrote beside the image (.run/images/<name>-<tag>.spdx.json), checked
    to describe this very image (its ID)."""
    repository, tag = reference.rsplit(":", 1)
    path = (
        Path(__file__).resolve().parents[2]
        / ".run"
        / "images"
        / f"{repository.rsplit('/', 1)[-1]}-{tag}.spdx.json"
    )
    document = json.loads(path.read_text())
    image_id = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", reference],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    [image] = [p for p in document["packages"] if p.get("primaryPackagePurpose") == "CONTAINER"]
    assert image["checksums"] == [{"algorithm": "SHA256", "checksumValue": image_id}], path
    return dict(document)


def sbom_versions(document: dict[str, Any], kind: str) -> dict[str, str]:
    """name -> version of the SBOM's `kind` ("deb" or "pypi") packages."""
    return {
        str(p["name"]): str(p["versionInfo"])
        for p in document["packages"]
        if str(p["SPDXID"]).startswith(f"SPDXRef-{kind}-")
    }
