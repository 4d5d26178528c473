"""Usage batches on their way to the control plane: an on-disk spool and its sender.

A batch is written to the spool (a file, fsynced, then renamed into place and the folder
fsynced) before anything tries to send it, and leaves the spool only when the control plane has
answered 202: an agent killed at any moment, or a control plane away for a day, loses nothing.
A batch sent twice (a lost answer, a restart mid-send) counts once, by its id.

The spool is bounded, by total size and by age. What the bounds drop is logged as an error and
counted (`dropped_batches`), never lost silently. The defaults hold more than a day of batches
from a busy gateway."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .durable import write_atomically
from .metering import FIRST_LATENCY_GPC
from .protocol import LATENCY_BOUNDS_MS, UsageBatch

logger = logging.getLogger("gateway_agent.usage")


@dataclass(frozen=True)
class SpoolLimits:
    max_bytes: int = 512 * 1024 * 1024
    max_age_s: float = 7 * 24 * 3600


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
        write_atomically(path, batch.model_dump_json().encode())
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

    @staticmethod
    def _spooled_at(path: Path, mtime: float) -> float:
        """When `append` spooled the batch: the time in its name, read from the clock the age is
        measured by (the file's mtime, stamped by the filesystem's clock, for a name without one)."""
        stamp = path.name.partition("-")[0]
        return int(stamp) / 1e9 if stamp.isdigit() else mtime

    def enforce_limits(self) -> None:
        now = time.time()
        files = [(path, path.stat()) for path in self.pending()]
        total = sum(stat.st_size for _, stat in files)
        dropped = 0
        for path, stat in files:  # oldest first
            age = now - self._spooled_at(path, stat.st_mtime)
            if total <= self.limits.max_bytes and age <= self.limits.max_age_s:
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


# --- counting: HAProxy's counters into batches ------------------------------------------------

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
_ROW = re.compile(r"\bkey=(\S+)")
_FIELD = re.compile(r"\b(bytes_in_cnt|bytes_out_cnt|gpc\d+)=(\d+)")
# Settled worker generations are remembered longer than a table keeps an idle entry.
SETTLED_GENERATIONS_KEPT_S = 8 * 24 * 3600


def parse_usage_table(text: str) -> dict[str, list[int]]:
    """`show table usage/counts` as {key: [1xx, 2xx, 3xx, 4xx, 5xx, went upstream, answered by
    the upstream, bytes in, bytes out, *latency buckets]}."""
    rows: dict[str, list[int]] = {}
    for line in text.splitlines():
        key = _ROW.search(line)
        if key is None:
            continue
        fields = {name: int(value) for name, value in _FIELD.findall(line)}
        rows[key.group(1)] = [
            *(fields.get(f"gpc{i}", 0) for i in range(FIRST_LATENCY_GPC)),
            fields.get("bytes_in_cnt", 0),
            fields.get("bytes_out_cnt", 0),
            *(fields.get(f"gpc{FIRST_LATENCY_GPC + i}", 0) for i in range(LATENCY_BUCKETS)),
        ]
    return rows


class UsageMeter:
    """Turns the growth of HAProxy's absolute counters into usage batches, each count once.

    Each read covers every worker the agent can still see: the current one and any old one it
    holds across a reload. A key belongs to one worker generation (`<generation>|<route>|<consumer>`),
    so its counter only grows while that worker lives; a key missing from a read belongs to a worker
    that is gone (or an entry idle for a week), and is settled then.

    The state (the counters last read and a sequence number) and the batch made from a read are
    written together, in one atomic file, before the batch goes to the spool: a crash at any point
    either repeats the batch (same id, counted once) or loses nothing."""

    def __init__(self, state_path: Path, spool: UsageSpool, unanswered_after_s: float = 120) -> None:
        self.state_path = state_path
        self.spool = spool
        self.unanswered_after_s = unanswered_after_s  # longer than any upstream may take
        self.state: dict[str, Any] = {"counters": {}, "sequence": 0, "pending": None, "settled": {}}
        self._baseline_only = False
        try:
            self.state.update(json.loads(state_path.read_text()))
        except FileNotFoundError:
            pass  # the first run
        except (OSError, ValueError) as exc:
            # Written atomically, so this is damage from outside. The next read only sets the
            # baseline: billing it all again would double what was billed; what grew since the
            # last good read is lost instead, and said here.
            logger.error(
                "usage state %s unreadable; calls since its last read are not billed: %s", state_path, exc
            )
            self._baseline_only = True
        if self.state.get("pending"):  # written, maybe not spooled before a crash: spool again
            self.spool.append(UsageBatch.model_validate_json(self.state["pending"]))
            self._save({**self.state, "pending": None})

    def _save(self, state: dict[str, Any]) -> None:
        write_atomically(self.state_path, json.dumps(state).encode())
        self.state = state

    def record(self, counters: dict[str, list[int]], instance_id: str, now: float) -> UsageBatch | None:
        """Account for one read of every visible worker's table; the batch of what grew, if any.

        A request counts with its status class as soon as it has one. One that went upstream and
        has no answer yet is either in flight (its answer will class it) or was answered by
        HAProxy itself (502, 503, 504: no response rule runs). What has stayed unanswered for a
        whole `unanswered_after_s` cannot be in flight any more: it is counted then, as 5xx; so is
        what a gone worker left unanswered."""
        settled: dict[str, float] = {
            generation: at
            for generation, at in dict(self.state.get("settled", {})).items()
            if at >= now - SETTLED_GENERATIONS_KEPT_S
        }
        # A settled generation's counts are all billed: met again (a table copied to a new
        # worker), they are not counts.
        counters = {key: values for key, values in counters.items() if key.split("|", 1)[0] not in settled}
        if self._baseline_only:
            self._baseline_only = False
            self._save({**self.state, "counters": counters, "settled": settled, "read_at": now})
            return None
        base: dict[str, list[int]] = self.state["counters"]
        failed: dict[str, int] = dict(self.state.get("failed", {}))
        history: dict[str, list[list[float]]] = dict(self.state.get("unanswered", {}))
        minute = int(now) - int(now) % 60
        items: list[dict[str, Any]] = []

        def add(key: str, classes: list[int], grown: list[int]) -> None:
            _, route, consumer = [*key.split("|", 2), "", ""][:3]
            first = True
            for status_class, count in zip(CLASSES, classes, strict=True):
                if count > 0:
                    item: dict[str, Any] = {
                        "minute": minute,
                        "route_id": int(route) if route.isdigit() else 0,
                        "consumer": consumer[:100],
                        "status_class": status_class,
                        "requests": count,
                        "bytes_in": grown[7] if first else 0,
                        "bytes_out": grown[8] if first else 0,
                    }
                    if first and any(grown[9:]):
                        item["latency_ms_buckets"] = grown[9:]
                    items.append(item)
                    first = False

        for key, values in sorted(counters.items()):
            before = base.get(key)
            if (
                before is None
                or len(before) != len(values)
                or any(v < b for v, b in zip(values, before, strict=True))
            ):
                before, failed[key], history[key] = [0] * len(values), 0, []  # new, or started again
            grown = [v - b for v, b in zip(values, before, strict=True)]
            classes = grown[:5]
            # Unanswered so far, and for how long: the least seen over the window has stayed.
            unanswered = values[5] - values[6] - failed.get(key, 0)
            seen = [entry for entry in history.get(key, []) if entry[0] >= now - self.unanswered_after_s]
            covered = bool(history.get(key)) and history[key][0][0] <= now - self.unanswered_after_s
            seen.append([now, unanswered])
            if covered and (gone := int(min(entry[1] for entry in seen))) > 0:
                classes[4] += gone
                failed[key] = failed.get(key, 0) + gone
                seen = [[t, u - gone] for t, u in seen]
            history[key] = seen if unanswered > 0 else []
            add(key, classes, grown)
        for key in sorted(base.keys() - counters.keys()):
            # Its worker is gone: nothing it left unanswered can be answered any more.
            values = base[key]
            settled[key.split("|", 1)[0]] = now
            if len(values) > 6 and (left := values[5] - values[6] - failed.get(key, 0)) > 0:
                add(key, [0, 0, 0, 0, left], [0] * len(values))
        sequence = int(self.state["sequence"])
        batch = None
        if items:
            identity = f"{instance_id}:{sequence}:{now}"
            batch = UsageBatch.model_validate(
                {
                    "batch_id": hashlib.sha256(identity.encode()).hexdigest()[:32],
                    "instance_id": instance_id,
                    "window_start": float(self.state.get("read_at") or now),
                    "window_end": now,
                    "items": items,
                }
            )
        live = {key.split("|", 1)[0] for key in counters}
        self._save(
            {
                "counters": counters,
                "failed": {key: n for key, n in failed.items() if key in counters},
                "unanswered": {
                    key: entries for key, entries in history.items() if entries and key in counters
                },
                "settled": {generation: at for generation, at in settled.items() if generation not in live},
                "sequence": sequence + 1,
                "read_at": now,
                "pending": batch.model_dump_json() if batch else None,
            }
        )
        if batch is not None:
            self.spool.append(batch)
            self._save({**self.state, "pending": None})
        return batch
