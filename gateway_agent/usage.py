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
from .metering import FIRST_CODE_GPC, FIRST_LATENCY_GPC
from .protocol import LATENCY_BOUNDS_MS, STATUS_CODES, UsageBatch

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

    def holds(self, batch_id: str) -> bool:
        """Whether a batch with this id waits in the spool."""
        return any(self.folder.glob(f"*-{batch_id}.json"))

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
    later, with backoff): 202 removes a batch, 400 and 413 (refused as invalid or too big: sent
    again, it would be refused again, and hold back every batch after it) set it aside, anything
    else leaves it."""
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
        elif status in (400, 413):
            spool.reject(path, f"HTTP {status}")
        else:
            raise UsageRefused(f"usage: HTTP {status}; {len(spool.pending())} batches wait in the spool")
    return delivered


# --- counting: HAProxy's counters into batches ------------------------------------------------

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
# A row of `parse_usage_table`: the counters (only ever growing while their worker lives), then
# what HAProxy says holds the entry now. A request is in exactly one of the status counters: its
# code's (STATUS_CODES) or else its class's.
SENT, ANSWERED, BYTES_IN, BYTES_OUT, FIRST_LATENCY = 5, 6, 7, 8, 9
FIRST_CODE = FIRST_LATENCY + LATENCY_BUCKETS
COUNTERS = FIRST_CODE + len(STATUS_CODES)
IN_USE = COUNTERS  # `use`: the live requests tracking the entry (not a counter)
# Rows saved by agents that counted classes alone: their code counters were zero.
_CLASS_ONLY_COUNTERS = FIRST_CODE
# What one batch may hold: the protocol's bound on items, and a size within the control plane's
# bound on a body (4 MiB) and the common proxy default in front of it (nginx's 1 MiB): 10,000
# items of long consumer names and big numbers would pass both.
MAX_BATCH_ITEMS: int = min(
    m.max_length for m in UsageBatch.model_fields["items"].metadata if hasattr(m, "max_length")
)
MAX_BATCH_BYTES = 1_000_000
_ROW = re.compile(r"\bkey=(\S+)")
_USE = re.compile(r"\buse=(\d+)")
_FIELD = re.compile(r"\b(bytes_in_cnt|bytes_out_cnt|gpc\d+)=(\d+)")
# Settled worker generations are remembered longer than a table keeps an idle entry.
SETTLED_GENERATIONS_KEPT_S = 8 * 24 * 3600


def parse_usage_table(text: str) -> dict[str, list[int]]:
    """`show table usage/counts` as {key: [1xx, 2xx, 3xx, 4xx, 5xx (the codes not counted one by
    one), went upstream, answered, bytes in, bytes out, *latency buckets, *STATUS_CODES, in use]}:
    COUNTERS counters, then IN_USE. A worker whose table counts no codes reads as zeros there."""
    rows: dict[str, list[int]] = {}
    for line in text.splitlines():
        key = _ROW.search(line)
        if key is None:
            continue
        fields = {name: int(value) for name, value in _FIELD.findall(line)}
        use = _USE.search(line, key.end())
        rows[key.group(1)] = [
            *(fields.get(f"gpc{i}", 0) for i in range(FIRST_LATENCY_GPC)),
            fields.get("bytes_in_cnt", 0),
            fields.get("bytes_out_cnt", 0),
            *(fields.get(f"gpc{FIRST_LATENCY_GPC + i}", 0) for i in range(LATENCY_BUCKETS)),
            *(fields.get(f"gpc{FIRST_CODE_GPC + i}", 0) for i in range(len(STATUS_CODES))),
            int(use.group(1)) if use else 0,
        ]
    return rows


def merged_row(first: list[int] | None, second: list[int]) -> list[int]:
    """Two reads of one key (a live worker's and a drain reader's file, or two files): each
    counter's highest, the counters being absolute and only growing while their worker lives.
    `use` the highest too: fewer of the unanswered are taken as given up, never more; unknown
    (left out) when either read lacks it."""
    if first is None:
        return list(second)
    counters = [max(a, b) for a, b in zip(first[:COUNTERS], second[:COUNTERS], strict=True)]
    if len(first) > IN_USE and len(second) > IN_USE:
        counters.append(max(first[IN_USE], second[IN_USE]))
    return counters


def merge_reads(into: dict[str, list[int]], rows: dict[str, list[int]]) -> dict[str, list[int]]:
    """`rows` merged into `into` (changed, and returned), key by key (`merged_row`)."""
    for key, row in rows.items():
        into[key] = merged_row(into.get(key), row)
    return into


def _generation(key: str) -> str:
    return key.split("|", 1)[0]


def _batch_id(instance_id: str, sequence: int, now: float, part: int) -> str:
    """Deterministic for a read: the first part keeps the id a read had when it made one batch."""
    identity = f"{instance_id}:{sequence}:{now}" + (f":{part}" if part else "")
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def _parts(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The items in order, cut into batches within MAX_BATCH_ITEMS and MAX_BATCH_BYTES (measured
    as ASCII JSON with every field, never shorter than what is sent)."""
    parts: list[list[dict[str, Any]]] = []
    size = MAX_BATCH_BYTES
    for item in items:
        length = len(json.dumps(item, separators=(",", ":"))) + 1
        if not parts or len(parts[-1]) >= MAX_BATCH_ITEMS or size + length > MAX_BATCH_BYTES:
            parts.append([])
            size = 512  # the batch's own fields
        parts[-1].append(item)
        size += length
    return parts


class UsageMeter:
    """Turns the growth of HAProxy's absolute counters into usage batches, each count once.

    Each read covers every worker the agent can still see: the current one, old ones still
    finishing their requests (read through the master CLI), and the final counts drain readers
    wrote for old workers gone since (`drained`). A key belongs to one worker generation (`<generation>|<route>|<consumer>`),
    so its counter only grows while that worker lives. A generation missing from a read altogether
    is a worker that is gone: it is settled then. A key missing while its generation is read is an
    entry HAProxy let expire after a week unused: nothing of it is in flight.

    A request that went upstream counts when it is answered (metering.py), however many reads and
    however long that takes. One never answered is counted as 5xx as soon as HAProxy shows it
    gone: more unanswered (`went upstream - answered`) than live requests holding the entry
    (`use`); or when its worker is gone.

    The state (the counters last read and a sequence number) and the batches made from a read
    (as many as its items need) are written together, in one atomic file, before the batches go
    to the spool: a crash at any point either repeats them (same ids, counted once) or loses
    nothing."""

    def __init__(self, state_path: Path, spool: UsageSpool) -> None:
        self.state_path = state_path
        self.spool = spool
        self.state: dict[str, Any] = {"counters": {}, "sequence": 0, "pending": [], "settled": {}}
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
        # Written by earlier versions: one batch or none; a window of unanswered counts, unused.
        pending = self.state.get("pending")
        self.state["pending"] = [pending] if isinstance(pending, str) else list(pending or [])
        self.state.pop("unanswered", None)
        self.state["counters"] = {
            key: [*row, *[0] * len(STATUS_CODES)] if len(row) == _CLASS_ONLY_COUNTERS else row
            for key, row in dict(self.state.get("counters", {})).items()
        }
        if self.state["pending"]:  # written, maybe not all spooled before a crash: spool again
            for text in self.state["pending"]:
                batch = UsageBatch.model_validate_json(text)
                if not self.spool.holds(batch.batch_id):
                    self.spool.append(batch)
            self._save({**self.state, "pending": []})

    def _save(self, state: dict[str, Any]) -> None:
        write_atomically(self.state_path, json.dumps(state, separators=(",", ":")).encode())
        self.state = state

    def record(
        self,
        counters: dict[str, list[int]],
        instance_id: str,
        now: float,
        drained: dict[str, list[int]] | None = None,
    ) -> list[UsageBatch]:
        """Account for one read of every visible worker's table (`parse_usage_table` rows; a row
        of COUNTERS values alone has no `use`: all of its unanswered are taken as in flight), and
        of the `drained` files' rows, read after the live workers. The batches of what grew, none
        when nothing did.

        A key in both is merged (`merged_row`). A drained row is a worker's final read, unless its
        drain reader gave up while the worker still served: then it may be older than what the
        agent read of that worker since. Counters only grow within a generation, so the last
        read's are kept where the file's are lower (never taken as an entry started again, which
        would bill it twice), and how many requests hold the entry is unknown."""
        base: dict[str, list[int]] = self.state["counters"]
        if drained:
            counters = dict(counters)
            for key, row in drained.items():
                row = merged_row(counters.get(key), row)
                before = base.get(key)
                if (
                    before is not None
                    and len(before) == COUNTERS
                    and any(v < b for v, b in zip(row, before, strict=False))
                ):
                    row = [max(v, b) for v, b in zip(row[:COUNTERS], before, strict=True)]
                counters[key] = row
        settled: dict[str, float] = {
            generation: at
            for generation, at in dict(self.state.get("settled", {})).items()
            if at >= now - SETTLED_GENERATIONS_KEPT_S
        }
        # A settled generation's counts are all billed: met again (a table copied to a new
        # worker), they are not counts.
        read = {key: values for key, values in counters.items() if _generation(key) not in settled}
        if self._baseline_only:
            self._baseline_only = False
            baseline = {key: values[:COUNTERS] for key, values in read.items()}
            # What is gone unanswered by now is before the baseline too.
            given_up = {
                key: values[SENT] - values[ANSWERED] - values[IN_USE]
                for key, values in read.items()
                if len(values) > IN_USE and values[SENT] - values[ANSWERED] > values[IN_USE]
            }
            self._save(
                {**self.state, "counters": baseline, "failed": given_up, "settled": settled, "read_at": now}
            )
            return []
        failed: dict[str, int] = {key: int(n) for key, n in dict(self.state.get("failed", {})).items()}
        minute = int(now) - int(now) % 60
        items: list[dict[str, Any]] = []

        def add(key: str, classes: list[int], grown: list[int]) -> bool:
            """Items of the key's growth: one per status code counted one by one, then one per
            class for its other codes (`classes`); bytes and latencies go with the first."""
            _, route, consumer = [*key.split("|", 2), "", ""][:3]
            first = True
            counts = [
                *(
                    (f"{code // 100}xx", code, n)
                    for code, n in zip(STATUS_CODES, grown[FIRST_CODE:COUNTERS], strict=True)
                ),
                *((status_class, None, n) for status_class, n in zip(CLASSES, classes, strict=True)),
            ]
            for status_class, status_code, count in counts:
                if count > 0:
                    item: dict[str, Any] = {
                        "minute": minute,
                        "route_id": int(route) if route.isdigit() else 0,
                        "consumer": consumer[:100],
                        "status_class": status_class,
                        "status_code": status_code,
                        "requests": count,
                        "bytes_in": grown[BYTES_IN] if first else 0,
                        "bytes_out": grown[BYTES_OUT] if first else 0,
                        # Every field, as sent: `_parts` measures the items by their JSON.
                        "latency_ms_buckets": grown[FIRST_LATENCY:FIRST_CODE]
                        if first and any(grown[FIRST_LATENCY:FIRST_CODE])
                        else [],
                    }
                    items.append(item)
                    first = False
            return not first

        kept: dict[str, list[int]] = {}
        for key, row in sorted(read.items()):
            values = row[:COUNTERS]
            before = base.get(key)
            if (
                before is None
                or len(before) != len(values)
                or any(v < b for v, b in zip(values, before, strict=True))
            ):
                before, failed[key] = [0] * len(values), 0  # new, or started again
            grown = [v - b for v, b in zip(values, before, strict=True)]
            classes = grown[:5]
            if len(row) > IN_USE:
                # At most `use` of the unanswered are live: the others were given up on (an
                # HTTP/2 stream reset, say) and will never be answered. Counted once, as 5xx.
                gone = values[SENT] - values[ANSWERED] - row[IN_USE]
                if gone > failed.get(key, 0):
                    classes[4] += gone - failed.get(key, 0)
                    failed[key] = gone
            if add(key, classes, grown):
                kept[key] = values
            else:
                # Bytes and latencies that grew without a call counted (a body still flowing):
                # left to the next item of the key.
                kept[key] = [*values[:BYTES_IN], *before[BYTES_IN:]]
        live = {_generation(key) for key in read}
        for key in sorted(base.keys() - read.keys()):
            # Its worker is gone (or the entry expired, unused): nothing it left unanswered can
            # be answered any more.
            values = base[key]
            if _generation(key) not in live:
                settled[_generation(key)] = now
            if len(values) > ANSWERED and (left := values[SENT] - values[ANSWERED] - failed.get(key, 0)) > 0:
                add(key, [0, 0, 0, 0, left], [0] * len(values))
        sequence = int(self.state["sequence"])
        batches = [
            UsageBatch.model_validate(
                {
                    "batch_id": _batch_id(instance_id, sequence, now, part),
                    "instance_id": instance_id,
                    "window_start": float(self.state.get("read_at") or now),
                    "window_end": now,
                    "items": chunk,
                }
            )
            for part, chunk in enumerate(_parts(items))
        ]
        state = {
            "counters": kept,
            "failed": {key: n for key, n in failed.items() if key in kept and n},
            "settled": settled,
            "sequence": sequence + 1,
            "read_at": now,
            "pending": [batch.model_dump_json() for batch in batches],
        }
        self._save(state)
        if batches:
            for batch in batches:
                self.spool.append(batch)
            self._save({**state, "pending": []})
        return batches
