"""The control plane as its own process, the way `make run` serves it: for tests and benchmarks
that need real agents, sockets and long-polls against it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
