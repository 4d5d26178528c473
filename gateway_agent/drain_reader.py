"""The drain reader: holds an old HAProxy worker until its final usage counts are on disk, even
when the agent dies meanwhile.

A stopping worker exits as soon as its last client connection ends, and an interactive session
on its stats socket is one (`runtime_api.WorkerSession`). Just before a reload the agent opens
such a session on the serving worker and hands its socket to this small process, started in a
session of its own (`start_new_session`): a SIGKILL of the agent, or of its process group, leaves
it. A restarted agent could not take the old worker back: a master-CLI session reads an old
worker but does not keep it alive.

Every 0.1 s it asks the worker `show info`. Once the worker is stopping (the reload happened) and
serves no one, its counters cannot change any more: it reads `show table <table>`, writes the
answer atomically (temporary file, fsync, rename, fsync of the folder) to
`<folder>/<pid>-<ns>.table`, and only then closes the session, so the worker cannot exit before
its final counts are on disk. The agent looks for new files every 0.1 s, counts them with its
next read, and deletes them once the state that accounts for them is saved (`agent.py`).

Its life is bounded (`--limit-s`, longer than any route's timeout): at the limit it writes what it
reads then, with the calls still in flight, and lets the worker go. If the reload it was started
for fails, the agent ends it (SIGTERM) and it writes nothing. A worker lost under it (killed, a
crash) leaves nothing to write: the agent settles that worker's generation without it. It logs
to the agent's stderr, which it inherits. It imports only the standard library and these two
modules of the agent's: it starts in a few tens of milliseconds, and holds little memory while
a long call drains."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .durable import write_atomically
from .runtime_api import RuntimeAPIError, WorkerSession

logger = logging.getLogger("gateway_agent.drain_reader")
POLL_S = 0.1


def drain(session: WorkerSession, folder: Path, table: str, limit_s: float) -> Path | None:
    """Wait until the worker behind `session` is stopping and serves no one (or `limit_s` has
    passed), write its table to `folder`, then close the session. The file written, or None."""
    deadline = time.monotonic() + limit_s
    try:
        while not session.drained():
            if time.monotonic() >= deadline:
                logger.error(
                    "HAProxy worker %s still serves after %.0f s: its counts so far are written, "
                    "the calls it still serves will count as 5xx",
                    session.pid,
                    limit_s,
                )
                break
            time.sleep(POLL_S)
        answer = session.command(f"show table {table}")
        if f"table: {table}" not in answer:
            logger.info("HAProxy worker %s has no table %s: nothing to keep", session.pid, table)
            return None
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{session.pid}-{time.time_ns()}.table"
        write_atomically(path, answer.encode())
        logger.info("final usage counts of HAProxy worker %s written to %s", session.pid, path.name)
        return path
    except (RuntimeAPIError, OSError) as exc:
        logger.error("HAProxy worker %s lost before its final usage read: %s", session.pid, exc)
        return None
    finally:
        session.close()  # the worker may exit from here on


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway_agent.drain_reader", description=__doc__)
    parser.add_argument("--fd", type=int, required=True, help="the interactive stats session's socket")
    parser.add_argument("--folder", type=Path, required=True, help="where the final table is written")
    parser.add_argument("--table", required=True)
    parser.add_argument("--limit-s", type=float, default=2 * 3600)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        session = WorkerSession.adopt(args.fd)
    except RuntimeAPIError as exc:
        logger.error("no HAProxy worker to hold: %s", exc)
        return 1
    return 0 if drain(session, args.folder, args.table, args.limit_s) is not None else 1


if __name__ == "__main__":
    sys.exit(main())
