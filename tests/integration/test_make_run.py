"""`make run` from a clean data folder: everything comes up, /readyz answers 200, a second run
reuses the data, and Ctrl-C stops every process."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from saas.launcher.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["SAAS_DATA_DIR"] = str(data_dir)
    env["SAAS_PORT"] = str(port)
    env["SAAS_PG_PORT"] = str(free_port())
    env["SAAS_REDIS_PORT"] = str(free_port())
    return subprocess.Popen(
        [sys.executable, "-m", "saas.launcher", "run"],
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

    # Second run: same data folder, the account made before is still there. Stopped the way
    # Kubernetes or systemd would, with SIGTERM.
    process = _start(data_dir, port)
    try:
        _wait_ready(port, process)
        assert _signup(port, "first@example.com") == 400  # already exists: the data was kept
    finally:
        _stop(process, signal.SIGTERM)
