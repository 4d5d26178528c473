"""What a usage batch may hold beyond its wire shape (gateway_agent.protocol.UsageBatch): values
the rollups can store and sum, and minutes the control plane takes.

The intake refuses a batch outside these bounds (400, each field named) so that no accepted batch
can fail in the consumer. The consumer checks the storage bounds again (`now=None`): a batch queued
before a bound was added, or replayed from the dead letters, goes back to the dead letters with
the reason instead of failing the write of others.

- minute: the start of a minute (a multiple of 60), not older than SAAS_USAGE_MAX_AGE_DAYS, not
  more than FUTURE_SKEW ahead of the control plane's clock;
- requests at most 10^12 per item, bytes at most 2^62 per item and per batch (summed into bigint
  columns), latency bucket counts at most 10^12;
- route ids fit a bigint; 0 is "no route". An id the catalog no longer has is kept as it is:
  usage outlives a deleted route;
- consumer and instance ids are text PostgreSQL can store (no NUL, no lone surrogate); the
  consumer at most 100 characters, "" for anonymous;
- window_end not before window_start, and not in the future. window_start may be old: it is the
  agent's previous read, however long ago the gateway last ran."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings

from gateway_agent.protocol import UsageBatch, UsageItem

MAX_REQUESTS = 10**12
MAX_BYTES = 2**62
MAX_ID = 2**63 - 1
FUTURE_SKEW = timedelta(minutes=5)
# The latest instant a datetime (and so a rollup's minute) can hold.
_LAST_STORABLE = datetime(9999, 12, 31, 23, 59, tzinfo=UTC).timestamp()


def max_age() -> timedelta:
    return timedelta(days=settings.SAAS_USAGE_MAX_AGE_DAYS)


def _storable_text(value: str) -> bool:
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _items_within(items: list[UsageItem], first_minute: float, last_minute: float) -> bool:
    """Whether every item is within bounds: whole columns at a time, about ten times quicker than
    checking item by item (the intake runs this for every batch)."""
    if not items:
        return True
    minutes = [item.minute for item in items]
    bytes_in = [item.bytes_in for item in items]
    bytes_out = [item.bytes_out for item in items]
    latency = [answers for item in items for answers in item.latency_ms_buckets]
    return (
        first_minute <= min(minutes)
        and max(minutes) <= last_minute
        and not any(minute % 60 for minute in minutes)
        and max(item.route_id for item in items) <= MAX_ID
        and max(item.requests for item in items) <= MAX_REQUESTS
        and sum(bytes_in) <= MAX_BYTES  # counts are never negative: the sums bound each one too
        and sum(bytes_out) <= MAX_BYTES
        and (not latency or max(latency) <= MAX_REQUESTS)
        and _storable_text("".join(item.consumer for item in items))
    )


def batch_errors(batch: UsageBatch, now: datetime | None) -> dict[str, list[str]]:
    """Every bound `batch` breaks, as {field path: [message]} (empty: none). With `now`, the
    minutes and window are also held to the accepted time range; without, only to what the
    database can store."""
    errors: dict[str, list[str]] = {}

    def error(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if now is not None:
        earliest = now - max_age()
        first_minute = int(earliest.timestamp()) // 60 * 60  # the minute the window starts in
        last_minute = (now + FUTURE_SKEW).timestamp()
        too_old = (
            f"Before the {max_age().days}-day window usage is accepted for: the earliest minute "
            f"taken now is {datetime.fromtimestamp(first_minute, UTC):%Y-%m-%dT%H:%M:%SZ}."
        )
        too_new = (
            f"In the future: at most {FUTURE_SKEW.seconds // 60} minutes ahead of the control "
            f"plane's clock ({now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}). Check the gateway's clock."
        )
    else:
        first_minute, last_minute = 0, _LAST_STORABLE
        too_old = too_new = "Out of the range a time can be stored in."

    items = batch.items
    if _items_within(items, first_minute, last_minute):
        items = []  # nothing to name: skip the loop below, which is for naming what is out
    if not batch.window_start <= batch.window_end:
        error("window_end", "Must not be before window_start.")
    if not batch.window_end <= last_minute:
        error("window_end", too_new)
    if not _storable_text(batch.instance_id):
        error("instance_id", "Must be UTF-8 text without NUL characters.")
    bytes_in = bytes_out = 0
    for index, item in enumerate(items):
        at = f"items.{index}"
        if item.minute % 60:
            error(f"{at}.minute", "Must be the start of a minute (Unix time, a multiple of 60).")
        if item.minute < first_minute:
            error(f"{at}.minute", too_old)
        elif item.minute > last_minute:
            error(f"{at}.minute", too_new)
        if item.route_id > MAX_ID:
            error(f"{at}.route_id", f"At most {MAX_ID} (0: no route).")
        if not _storable_text(item.consumer):
            error(f"{at}.consumer", "Must be UTF-8 text without NUL characters.")
        if item.requests > MAX_REQUESTS:
            error(f"{at}.requests", f"At most {MAX_REQUESTS} (10^12) per item.")
        for field, value in (("bytes_in", item.bytes_in), ("bytes_out", item.bytes_out)):
            if value > MAX_BYTES:
                error(f"{at}.{field}", f"At most {MAX_BYTES} (2^62) per item.")
        for bucket, answers in enumerate(item.latency_ms_buckets):
            if answers > MAX_REQUESTS:
                error(f"{at}.latency_ms_buckets.{bucket}", f"At most {MAX_REQUESTS} (10^12).")
        bytes_in += item.bytes_in
        bytes_out += item.bytes_out
    for field, total in (("bytes_in", bytes_in), ("bytes_out", bytes_out)):
        if total > MAX_BYTES:
            error(f"items.{field}", f"The batch's items sum to more than {MAX_BYTES} (2^62).")
    return errors
