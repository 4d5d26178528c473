"""The usage stream: agents' batches go into a Redis Stream as they arrive (the API answers 202
at once), and consumers in one consumer group write them to PostgreSQL.

A consumer acknowledges (and deletes) an entry only after its transaction committed; if it dies
in between, the entry stays pending and another consumer takes it over with XAUTOCLAIM once it
has been idle long enough. Writing it again changes nothing, because the batch id was recorded in
the same transaction as the rollups. An entry that can never be written (not valid JSON, an
organization that no longer exists) is moved to a dead-letter stream and logged, never dropped
silently."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any

from django.conf import settings
from django_redis import get_redis_connection
from pydantic import ValidationError
from redis.exceptions import ResponseError

from gateway_agent.protocol import UsageBatch
from saas.gateways.services import AgentContext

from .services import record_usage_batches

logger = logging.getLogger(__name__)
STREAM = "usage:batches"
DEAD_LETTERS = "usage:dead-letters"
GROUP = "rollups"


def _redis() -> Any:
    return get_redis_connection("default")


_async_client: tuple[Any, Any] | None = None  # (event loop, client): a client is bound to its loop


async def enqueue_usage_batch(ctx: AgentContext, batch_json: bytes) -> None:
    """Queue a batch for the consumers: `batch_json` as received, already validated."""
    import asyncio

    from redis.asyncio import Redis

    global _async_client
    loop = asyncio.get_running_loop()
    if _async_client is None or _async_client[0] is not loop:
        _async_client = (loop, Redis.from_url(settings.REDIS_URL))
    entry = {"schema": ctx.schema_name, "cluster": str(ctx.cluster_id), "batch": batch_json}
    await _async_client[1].xadd(STREAM, entry)


def ensure_group() -> None:
    try:
        _redis().xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class UsageConsumer:
    """One member of the consumer group. `run_once` handles what is due: stale entries of dead
    consumers first, then new ones."""

    def __init__(
        self, name: str, *, claim_idle_ms: int = 30_000, count: int = 100, block_ms: int = 1000
    ) -> None:
        self.name = name
        self.claim_idle_ms = claim_idle_ms
        self.count = count
        self.block_ms = block_ms
        self.redis = _redis()
        ensure_group()

    def run_once(self, block: bool = True) -> int:
        claimed = self.redis.xautoclaim(
            STREAM, GROUP, self.name, min_idle_time=self.claim_idle_ms, start_id="0-0", count=self.count
        )[1]
        entries = [entry for entry in claimed if entry[1]]
        if len(entries) < self.count:
            read = self.redis.xreadgroup(
                GROUP,
                self.name,
                {STREAM: ">"},
                count=self.count - len(entries),
                block=self.block_ms if block and not entries else None,
            )
            for _, stream_entries in read or []:
                entries += stream_entries
        self._handle(entries)
        return len(entries)

    def _handle(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Write the entries, one transaction per organization, then acknowledge them all."""
        by_schema: dict[str, list[tuple[int, UsageBatch]]] = defaultdict(list)
        for entry_id, fields in entries:
            try:
                by_schema[fields[b"schema"].decode()].append(
                    (int(fields[b"cluster"]), UsageBatch.model_validate_json(fields[b"batch"]))
                )
            except (KeyError, ValueError, ValidationError, UnicodeDecodeError) as exc:
                logger.error("usage entry %s cannot be counted, moved to %s: %s", entry_id, DEAD_LETTERS, exc)
                self.redis.xadd(DEAD_LETTERS, {**fields, b"error": str(exc)[:1000].encode()})
        for schema, batches in by_schema.items():
            record_usage_batches(schema, batches)
        if entries:
            ids = [entry_id for entry_id, _ in entries]
            pipe = self.redis.pipeline()
            pipe.xack(STREAM, GROUP, *ids)
            pipe.xdel(STREAM, *ids)
            pipe.execute()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:  # a database or Redis outage: keep the entries pending, retry
                logger.exception("usage consumer %s failed; retrying", self.name)
                stop.wait(1)
