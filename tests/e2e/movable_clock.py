"""The control plane as `make run` serves it, with a wall clock a test can move forward: for a
test of what happens after minutes or hours (a grace period ending) that must not wait them.

`python -m tests.e2e.movable_clock CLOCK_FILE PORT` serves saas.asgi on 127.0.0.1:PORT. The
test writes a number of seconds into CLOCK_FILE: the process's clock (core.clock, and Python's
wall clock under it) runs that far ahead of the real one from then on, still ticking; the file
`CLOCK_FILE.applied` says when it does. Monotonic time (timeouts, the long-poll's wait) is not
moved, as a real clock change would not move it either."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
import uvicorn

from tests.control_plane import ROOT, wait_for, wait_until_up


def _follow(clock_file: Path) -> None:
    applied = 0.0
    while True:
        try:
            wanted = float(clock_file.read_text() or 0)
        except (OSError, ValueError):
            wanted = applied
        if wanted != applied:
            # A journey on top of the one before, from the moved clock's now: no instant where
            # the clock reads real time again.
            time_machine.travel(datetime.now(UTC) + timedelta(seconds=wanted - applied), tick=True).start()
            applied = wanted
            clock_file.with_suffix(".applied").write_text(str(applied))
        time.sleep(0.05)


def move_clock(clock_file: Path, ahead_s: float) -> None:
    """The control plane's clock `ahead_s` seconds ahead of the real one, once it is."""
    clock_file.write_text(str(ahead_s))
    applied = clock_file.with_suffix(".applied")
    wait_for(
        lambda: applied.exists() and float(applied.read_text() or "nan") == ahead_s,
        10,
        0.05,
        what=f"the control plane's clock {ahead_s:.0f} s ahead",
    )


@contextlib.contextmanager
def serving(clock_file: Path, port: int, env: dict[str, str]) -> Iterator[None]:
    """This module's control plane on `port` with environment `env`, up, until the block ends."""
    web = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.movable_clock", str(clock_file), str(port)], cwd=ROOT, env=env
    )
    try:
        wait_until_up(port)
        yield
    finally:
        web.terminate()
        web.wait(timeout=20)


def main() -> None:
    clock_file, port = Path(sys.argv[1]), int(sys.argv[2])
    threading.Thread(target=_follow, args=(clock_file,), daemon=True).start()
    uvicorn.run("saas.asgi:application", host="127.0.0.1", port=port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
