"""Running HAProxy in master-worker mode, validating configurations and reloading hitlessly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .runtime_api import RuntimeAPI, RuntimeAPIError


class HAProxyError(RuntimeError):
    pass


def haproxy_version(binary: str) -> str:
    try:
        output = subprocess.run([binary, "-v"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise HAProxyError(f"Cannot run {binary}: {exc}") from exc
    match = re.search(r"version (\S+)", output)
    return match.group(1) if match else output.strip()


def check_config(binary: str, config: Path) -> None:
    """`haproxy -c`: raise HAProxyError with HAProxy's own alerts when it refuses the file."""
    result = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    if result.returncode != 0:
        alerts = [line for line in (result.stdout + result.stderr).splitlines() if "ALERT" in line]
        raise HAProxyError(
            "haproxy -c refused the configuration: " + (" | ".join(alerts) or result.stderr.strip())
        )


class HAProxyProcess:
    """The HAProxy master, started with -W (master-worker): a reload (SIGUSR2) starts new workers
    with the new configuration while old ones finish their connections; listeners are handed
    over through the stats socket (expose-fd listeners), so no connection is refused."""

    def __init__(self, binary: str, config: Path, run_dir: Path) -> None:
        self.binary = binary
        self.config = config
        self.run_dir = run_dir
        self.process: subprocess.Popen[bytes] | None = None
        # A master left by an agent that died: adopted, so the gateway never stopped serving.
        self.adopted_pid = self.adopt_pid_file(run_dir)

    @property
    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        if self.adopted_pid is not None:
            try:
                os.kill(self.adopted_pid, 0)
                return True
            except OSError:
                self.adopted_pid = None
        return False

    @property
    def master_socket(self) -> Path:
        return self.run_dir / "master.sock"

    def runtime_api(self) -> RuntimeAPI:
        return RuntimeAPI(self.master_socket)

    def current_worker_pid(self) -> int | None:
        try:
            with self.runtime_api() as api:
                return api.current_worker_pid()
        except RuntimeAPIError:
            return None  # the master re-executing itself, or not started yet

    def start(self, timeout: float = 10) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.master_socket.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "-W",
                "-db",
                "-S",
                f"{self.master_socket},mode,600",
                "-f",
                str(self.config),
                "-p",
                str(self.run_dir / "haproxy.pid"),
            ],
            stdin=subprocess.DEVNULL,
        )
        self._wait_for_worker(lambda pid: pid is not None, timeout)

    def reload(self, timeout: float = 10) -> None:
        """Hitless reload; returns once the master has forked the worker with the new
        configuration, so what follows (a runtime change, the next reload) reaches that one."""
        if not self.running:
            self.start()
            return
        previous = self.current_worker_pid()
        if self.process is not None:
            self.process.send_signal(signal.SIGUSR2)
        elif self.adopted_pid is not None:
            os.kill(self.adopted_pid, signal.SIGUSR2)
        if previous is not None:
            self._wait_for_worker(lambda pid: pid is not None and pid != previous, timeout)

    def _wait_for_worker(self, ready: Callable[[int | None], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready(self.current_worker_pid()):
            if not self.running:
                code = self.process.returncode if self.process is not None else "unknown"
                raise HAProxyError(f"HAProxy exited with status {code}")
            if time.monotonic() > deadline:
                raise HAProxyError(f"HAProxy's new worker did not start within {timeout:.0f} s")
            time.sleep(0.005)

    def stop(self, timeout: float = 10) -> None:
        if self.process is None and self.adopted_pid is not None and self.running:
            os.kill(self.adopted_pid, signal.SIGUSR1)
            deadline = time.monotonic() + timeout
            while self.running and time.monotonic() < deadline:
                time.sleep(0.1)
            return
        if self.process is None or self.process.poll() is not None:
            return
        # SIGUSR1: soft stop, workers finish what they serve.
        self.process.send_signal(signal.SIGUSR1)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @staticmethod
    def adopt_pid_file(run_dir: Path) -> int | None:
        """The pid of a master left running by a previous agent, if any."""
        try:
            pid = int((run_dir / "haproxy.pid").read_text().split()[0])
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError, IndexError):
            return None
