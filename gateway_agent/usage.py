"""Usage batches on their way to the control plane: an on-disk spool and its sender.

A batch is written to the spool (a file, fsynced, then renamed into place and the folder
fsynced) before anything tries to send it, and leaves the spool only when the control plane has
answered 202: an agent killed at any moment, or a control plane away for a day, loses nothing.
A batch sent twice (a lost answer, a restart mid-send) counts once, by its id.

The spool is bounded, by total size and by age. What the bounds drop is logged as an error and
counted (`dropped_batches`), never lost silently. The defaults hold more than a day of batches
from a busy gateway."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .protocol import UsageBatch

logger = logging.getLogger("gateway_agent.usage")


@dataclass(frozen=True)
class SpoolLimits:
    max_bytes: int = 512 * 1024 * 1024
    max_age_s: float = 7 * 24 * 3600


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UsageSpool:
    def __init__(self, folder: Path, limits: SpoolLimits | None = None) -> None:
        self.folder = folder
        self.rejected = folder / "rejected"
        self.limits = limits or SpoolLimits()
        self.dropped_batches = 0
        self.rejected.mkdir(parents=True, exist_ok=True)

    def append(self, batch: UsageBatch) -> Path:
        # Names sort in the order batches were made: the sender replays them in that order.
        path = self.folder / f"{time.time_ns():020d}-{batch.batch_id}.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(batch.model_dump_json().encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_folder(self.folder)
        self.enforce_limits()
        return path

    def pending(self) -> list[Path]:
        return sorted(self.folder.glob("*.json"))

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def reject(self, path: Path, reason: str) -> None:
        """Kept aside, not retried: the control plane refused it as invalid (a bug to look at)."""
        logger.error("usage batch %s refused by the control plane: %s", path.name, reason)
        path.replace(self.rejected / path.name)

    def enforce_limits(self) -> None:
        now = time.time()
        files = [(path, path.stat()) for path in self.pending()]
        total = sum(stat.st_size for _, stat in files)
        dropped = 0
        for path, stat in files:  # oldest first
            if total <= self.limits.max_bytes and now - stat.st_mtime <= self.limits.max_age_s:
                break
            path.unlink(missing_ok=True)
            total -= stat.st_size
            dropped += 1
        if dropped:
            self.dropped_batches += dropped
            logger.error(
                "usage spool over its bounds (%d bytes, %.0f s): dropped the %d oldest batches, "
                "%d in all: those calls will not be billed",
                self.limits.max_bytes,
                self.limits.max_age_s,
                dropped,
                self.dropped_batches,
            )


class UsageRefused(RuntimeError):
    pass


def send_pending(spool: UsageSpool, post: Callable[[bytes], int]) -> int:
    """Send what the spool holds, oldest first; returns how many were delivered. `post` takes a
    batch's JSON bytes and returns the HTTP status. Stops at the first failure (the caller retries
    later, with backoff): 202 removes a batch, 400 sets it aside, anything else leaves it."""
    delivered = 0
    for path in spool.pending():
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            continue  # dropped by the bounds meanwhile
        status = int(post(body))
        if status == 202:
            spool.remove(path)
            delivered += 1
        elif status == 400:
            spool.reject(path, "HTTP 400")
        else:
            raise UsageRefused(f"usage: HTTP {status}; {len(spool.pending())} batches wait in the spool")
    return delivered
