"""The control plane as its own process, the way `make run` serves it: for tests and benchmarks
that need real agents, sockets and long-polls against it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]


def env_sharing_test_database(application_name: str = "") -> dict[str, str]:
    """The environment for a control-plane process that must share the test database; its
    connections show `application_name`, when given, in pg_stat_activity."""
    from urllib.parse import quote

    from django.conf import settings

    db = settings.DATABASES["default"]
    credentials = quote(str(db["USER"]), safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(str(db["PASSWORD"]), safe="")
    url = f"postgresql://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    if application_name:
        url += "?application_name=" + quote(application_name, safe="")
    return {**os.environ, "DATABASE_URL": url}


def connect_to_test_database() -> psycopg.Connection:
    """A connection of its own to the test database, beside Django's."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=str(db["HOST"]),
        port=str(db["PORT"]),
        dbname=str(db["NAME"]),
        user=str(db["USER"]),
        password=str(db.get("PASSWORD") or "") or None,
    )


def start_control_plane(port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """uvicorn serving saas.asgi on 127.0.0.1:`port`; the caller waits for it and stops it."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "saas.asgi:application",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )


def _output(log: Path | None) -> BinaryIO | None:
    return log.open("ab") if log is not None else None


def start_usage_consumer(
    name: str, env: dict[str, str] | None = None, *, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`manage.py consume_usage --name NAME`, as `make run` starts it; its output goes to the file
    `log` when given."""
    output = _output(log)
    return subprocess.Popen(
        [sys.executable, "manage.py", "consume_usage", "--name", name],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=output,
    )


def start_celery_worker(
    hostname: str, env: dict[str, str] | None = None, *, concurrency: int = 1, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`celery -A saas worker` as `make run` starts it, named `hostname` (e.g. `a@%h`)."""
    output = _output(log)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "saas",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            str(concurrency),
            "--hostname",
            hostname,
        ],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=output,
    )


def start_celery_beat(
    schedule: Path, env: dict[str, str] | None = None, *, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`celery -A saas beat` as `make run` starts it, keeping its schedule in the file `schedule`."""
    output = _output(log)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "saas",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(schedule),
        ],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=output,
    )


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 20) -> None:
    """SIGTERM to every one still running, then wait for each; one that outstays `timeout` is
    SIGKILLed."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(
    check: Callable[[], object], timeout: float = 20, interval: float = 0.2, *, what: str = ""
) -> object:
    """Until `check()` gives something true, which is returned. A connection refused or reset on
    the way (what is waited for is starting or restarting) counts as not yet."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except (httpx.TransportError, OSError) as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or 'the check'}; last: {last!r}")


def stop_haproxy(data_dir: Path) -> None:
    """Stop the HAProxy an agent ran from `data_dir` (it outlives the agent by design)."""
    pid_file = data_dir / "run" / "haproxy.pid"
    if pid_file.exists():
        for pid in pid_file.read_text().split():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid), signal.SIGTERM)


def wait_until_up(port: int, timeout: float = 30) -> None:
    """Until /healthz answers 200 on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the control plane on port {port} did not start in {timeout:.0f} s")


def start_agent(
    control_port: int,
    token: str,
    data_dir: Path,
    http_port: int,
    *,
    https_port: int = 0,
    metrics_port: int = 0,
    extra: tuple[str, ...] = (),
    control_url: str | None = None,
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """`gateway-agent run` against the control plane on `control_port` (or at `control_url`), its
    HAProxy listening on 127.0.0.1 (0 turns the HTTPS or metrics listener off); its log goes to
    the file `log` when given."""
    output = log.open("ab") if log is not None else None
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway_agent",
            "run",
            "--control-plane",
            control_url or f"http://127.0.0.1:{control_port}",
            "--token",
            token,
            "--data-dir",
            str(data_dir),
            "--http-port",
            str(http_port),
            "--https-port",
            str(https_port),
            "--metrics-port",
            str(metrics_port),
            "--bind",
            "127.0.0.1",
            *extra,
        ],
        cwd=ROOT,
        stdout=output,
        stderr=output,
    )


def serving_worker_pid(data_dir: Path) -> int | None:
    """The agent's serving HAProxy worker; None while there is none to ask (a reload re-executes
    the master, whose socket refuses connections for that moment)."""
    from gateway_agent.runtime_api import RuntimeAPI, RuntimeAPIError

    try:
        with RuntimeAPI(data_dir / "run" / "master.sock") as api:
            return api.current_worker_pid()
    except RuntimeAPIError:
        return None


def stop_gateway(agent: subprocess.Popen[bytes], data_dir: Path) -> None:
    """Stop an agent and the HAProxy it ran. The agent's stop reads its last usage and gives
    HAProxy up to 10 s to finish what it serves: on a machine loaded by a whole suite that took
    more than 20 s once, so it gets a minute."""
    if agent.poll() is None:
        agent.terminate()
        agent.wait(timeout=60)
    stop_haproxy(data_dir)


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        # `/sleep/<ms>` anywhere in the path: answered that much later (a call in flight).
        if pause := re.search(r"/sleep/([0-9]{1,5})\b", self.path):
            time.sleep(int(pause.group(1)) / 1000)
        # `/status/<code>` anywhere in the path: answered with that status.
        asked = re.search(r"/status/([1-5][0-9][0-9])\b", self.path)
        self.send_response(int(asked.group(1)) if asked else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def start_echo_upstream() -> ThreadingHTTPServer:
    """An upstream on loopback answering GETs with the path and headers it saw, as JSON, with
    200 or the status a path asks for (`/status/503`), after the pause it asks for
    (`/sleep/1500`, in ms); the caller shuts it down."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    return upstream
