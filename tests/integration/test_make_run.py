"""`make run` from a clean data folder: everything comes up, /readyz answers 200, a second run
reuses the data, and Ctrl-C stops every process. `make demo`'s gateway, stopped with the rest,
delivers its last usage first."""

import base64
import hashlib
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from cryptography.fernet import Fernet, InvalidToken

from saas.launcher.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def _start(data_dir: Path, port: int, *options: str) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "FIELD_ENCRYPTION_KEY", "DJANGO_SECRET_KEY")
    }
    env["SAAS_DATA_DIR"] = str(data_dir)
    env["SAAS_PORT"] = str(port)
    env["SAAS_PG_PORT"] = str(free_port())
    env["SAAS_REDIS_PORT"] = str(free_port())
    return subprocess.Popen(
        [sys.executable, "-m", "saas.launcher", "run", *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if response.status_code == 200:
                return dict(response.json())
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("the control plane did not become ready in 120 s")


def _signup(port: int, email: str) -> int:
    response = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/auth/signup/",
        json={"email": email, "password": "a long passphrase", "organization_name": "Acme"},
        timeout=10,
    )
    return response.status_code


def _stop(process: subprocess.Popen[bytes], signum: int = signal.SIGINT) -> str:
    if process.poll() is not None:  # exited on its own: say why, not that it cannot be found
        output = process.stdout.read().decode() if process.stdout else ""
        raise AssertionError(f"the launcher exited with {process.returncode}:\n{output[-5000:]}")
    children = psutil.Process(process.pid).children(recursive=True)
    all_descendants = {p.pid for p in children}
    # Any process started by the launcher, even in its own session, must be gone afterwards.
    os.kill(process.pid, signum)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output.decode()
    _gone, alive = psutil.wait_procs(
        [psutil.Process(pid) for pid in all_descendants if psutil.pid_exists(pid)], timeout=10
    )
    assert not alive, f"still running after Ctrl-C: {[p.cmdline() for p in alive]}"
    return output.decode()


@pytest.mark.slow
def test_make_run_comes_up_reuses_data_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    process = _start(data_dir, port)
    try:
        assert _wait_ready(port, process) == {"status": "ok", "checks": {"postgresql": "ok", "redis": "ok"}}
        assert _signup(port, "first@example.com") == 201
    finally:
        output = _stop(process)
    assert f"Control plane ready at http://127.0.0.1:{port}/" in output
    assert "/api/v1/auth/signup/" in output
    secrets_of_first_run = (
        (data_dir / "field-encryption.key").read_text(),
        (data_dir / "postgres-password").read_text(),
    )

    # Second run: same data folder, the account made before is still there. Stopped the way
    # Kubernetes or systemd would, with SIGTERM.
    process = _start(data_dir, port)
    try:
        _wait_ready(port, process)
        assert _signup(port, "first@example.com") == 400  # already exists: the data was kept
    finally:
        _stop(process, signal.SIGTERM)

    # The secrets `make run` made for itself: random, 0600, in the data folder, kept across runs.
    key_file, password_file = data_dir / "field-encryption.key", data_dir / "postgres-password"
    assert stat.S_IMODE(key_file.stat().st_mode) == stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((data_dir / "django-secret-key").stat().st_mode) == 0o600
    assert (key_file.read_text(), password_file.read_text()) == secrets_of_first_run


@pytest.mark.slow
def test_the_demo_gateway_delivers_its_last_usage_before_the_control_plane_stops(tmp_path):
    from gateway_agent.usage import UsageSpool

    data_dir = tmp_path / "data"
    port = free_port()
    process = _start(data_dir, port, "--demo")
    spool = UsageSpool(data_dir / "demo-gateway" / "usage")
    try:
        _wait_ready(port, process)
        # The demo's traffic runs through its gateway: some of it is counted and spooled.
        deadline = time.monotonic() + 120
        while not (data_dir / "demo-gateway" / "usage_state.json").exists():
            assert time.monotonic() < deadline, "the demo gateway counted nothing in 120 s"
            time.sleep(1)
    finally:
        output = _stop(process)
    # Stopped before the web server, the gateway delivered everything it had counted.
    assert spool.pending() == [], output[-3000:]
    assert "usage batches undelivered" not in output


def _old_development_key() -> bytes:
    """How the field encryption key was derived before: from the development SECRET_KEY."""
    return base64.urlsafe_b64encode(hashlib.sha256(b"django-insecure-development-only-key").digest())


@pytest.mark.slow
def test_a_fresh_make_run_encrypts_nothing_the_old_development_key_decrypts(tmp_path):
    data_dir = tmp_path / "data"
    port = free_port()
    process = _start(data_dir, port)
    try:
        _wait_ready(port, process)
    finally:
        _stop(process)
    key = (data_dir / "field-encryption.key").read_text().strip()
    assert Fernet(key.encode()) and key.encode() != _old_development_key()
    # A process of the development tree started by hand, no FIELD_ENCRYPTION_KEY: it reads the
    # key `make run` made, as the launcher's own processes receive it.
    env = {k: v for k, v in os.environ.items() if k != "FIELD_ENCRYPTION_KEY"}
    env["SAAS_DATA_DIR"] = str(data_dir)
    ciphertext = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from core.encryption import encrypt_secret;"
         " print(encrypt_secret('a JWT HMAC secret'))"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "saas.settings"}, check=True, capture_output=True, text=True,
    ).stdout.strip().encode()  # fmt: skip
    assert Fernet(key.encode()).decrypt(ciphertext) == b"a JWT HMAC secret"
    with pytest.raises(InvalidToken):
        Fernet(_old_development_key()).decrypt(ciphertext)
