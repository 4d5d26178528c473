"""An agent told to stop while it starts HAProxy stops: it waits for the start to end, reads the
last counts, stops HAProxy and exits 0. Its SIGTERM handler once did that work itself, on the
main thread that held the reload's lock: the agent hung until killed (a CI run caught it)."""

import os
import shutil
import signal
from pathlib import Path

import pytest

from saas.launcher.services import free_port
from tests.control_plane import start_agent, stop_haproxy, wait_for
from tests.unit.test_agent_untrusted import body_of, served


def _slow_haproxy(folder: Path) -> tuple[Path, Path]:
    """An haproxy that, started as a master (-W), marks the file it returns and sleeps 3 s before
    it runs: long enough to signal the agent while it waits for the first worker."""
    marker = folder / "master-starting"
    wrapper = folder / "haproxy"
    wrapper.write_text(
        f'#!/bin/sh\ncase " $* " in *" -W "*) touch "{marker}"; sleep 3 ;; esac\n'
        f'exec "{shutil.which("haproxy")}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper, marker


@pytest.mark.slow
def test_a_stop_asked_while_haproxy_starts_ends_the_agent_and_haproxy(tmp_path: Path) -> None:
    data_dir = tmp_path / "agent"
    data_dir.mkdir()
    # A last good snapshot on disk: the agent serves it at start, without its control plane.
    (data_dir / "last_good.json").write_bytes(body_of(served(3, {"schema_version": 1, "cluster_id": 1})))
    haproxy, marker = _slow_haproxy(tmp_path)
    log = tmp_path / "agent.log"
    agent = start_agent(
        0,
        "gct_1_unused",
        data_dir,
        free_port(),
        control_url="http://127.0.0.1:9",  # nothing there
        extra=("--haproxy-bin", str(haproxy)),
        log=log,
    )
    try:
        wait_for(marker.exists, timeout=30, interval=0.05)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=60) == 0, log.read_text()
        # It finished serving the snapshot it was starting, then stopped HAProxy.
        assert "applied snapshot version 3" in log.read_text()
        master = int((data_dir / "run" / "haproxy.pid").read_text().split()[0])
        wait_for(lambda: not _alive(master), timeout=15)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        stop_haproxy(data_dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        # A zombie is gone for this purpose: its parent (the agent) has exited.
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
