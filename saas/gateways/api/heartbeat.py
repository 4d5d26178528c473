"""POST /agent/v1/heartbeat: a gateway's applied version and last error, every 10 s. 204; 404
when the instance is not registered with the token's cluster (the agent registers again).

Every gateway calls it all the time, so it runs beside Django like the long-poll and usage
intake: no thread per request and no database on the way. The token check is the usage
intake's, cached per process (saas.gateways.agents); the status goes to Redis from the event
loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis_asyncio
from django.conf import settings
from redis.exceptions import RedisError

from core.api.batched_writes import BatchedWrites, PerLoop
from core.api.client import caller_address
from core.api.raw_asgi import (
    InvalidAgentBody,
    Response,
    bearer_secret,
    json_response,
    read_agent_body,
    serve_post,
    token_refused,
)
from gateway_agent.protocol import Heartbeat
from saas.gateways import agents

logger = logging.getLogger(__name__)
PATH = "/agent/v1/heartbeat"
MAX_BODY_BYTES = 64 * 1024  # a last error is at most 4,000 characters


def _redis() -> redis_asyncio.Redis:
    """An event loop's Redis client: the status is written from the loop, not from the thread
    pool that database work queues on. Its writes are batched, so a few connections serve
    thousands of heartbeats; a call waits up to 10 s (a busy loop reads answers late)."""
    pool: redis_asyncio.BlockingConnectionPool = redis_asyncio.BlockingConnectionPool.from_url(
        settings.REDIS_URL, max_connections=4, timeout=10, socket_timeout=10
    )
    return redis_asyncio.Redis(connection_pool=pool)


# Called by its SHA1 (EVALSHA), loaded again when Redis has forgotten it.
_store_script = PerLoop(lambda: _redis().register_script(agents.STORE_HEARTBEATS))


async def _store(heartbeats: list[agents.StoredHeartbeat]) -> list[bool]:
    keys, values = agents.store_heartbeats_arguments(heartbeats)
    stored = await _store_script.get()(keys=keys, args=values)
    return [bool(one) for one in stored]


# The heartbeats that arrive together go to Redis in one script call.
_heartbeat_writes = PerLoop(lambda: BatchedWrites(_store, max_items=500, max_in_flight=2))


def store_heartbeat(
    ctx: agents.AgentContext, beat: Heartbeat, headers: dict[str, str], peer: str | None
) -> asyncio.Future[bool]:
    """Store the status a heartbeat (or a report) brings, from the event loop: a future, False
    when the instance is not registered with the token's cluster. Raises RedisError."""
    address = caller_address(peer, headers)
    return _heartbeat_writes.get().enqueue(agents.stored_heartbeat(ctx, beat, address))


async def take_heartbeat(headers: dict[str, str], peer: str | None, receive: Callable[..., Any]) -> Response:
    ctx = await agents.authenticated_agent(bearer_secret(headers.get("authorization", "")))
    if ctx is None:
        return token_refused()
    try:
        beat = await read_agent_body(receive, Heartbeat, MAX_BODY_BYTES, "A heartbeat")
    except InvalidAgentBody as exc:
        return exc.response()
    try:
        known = await store_heartbeat(ctx, beat, headers, peer)
    except RedisError:
        logger.exception("heartbeat not stored")
        return json_response(503, {"detail": "Heartbeats cannot be taken right now; send the next one."})
    if not known:
        return json_response(404, {"detail": "Unknown instance: register again."})
    return 204, {}, b""


async def heartbeat_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    await serve_post(take_heartbeat, scope, receive, send)
