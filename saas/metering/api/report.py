"""POST /agent/v1/report: a gateway's heartbeat and the oldest batch of its usage spool in one
request, where /agent/v1/heartbeat and /agent/v1/usage took two: every gateway sends one every
10 s, so a fleet's requests halve (docs/gateway.md, "Reports").

The batch is checked and queued as /agent/v1/usage does it (400 naming `usage.<field>`, nothing
kept; 503 when it cannot be committed), while the heartbeat is stored. 200 with what became of
each (gateway_agent.protocol.ReportAnswer): a batch accepted is committed, whatever happened to
the heartbeat, and an unknown instance still has its usage counted (a batch belongs to its
cluster). A raw ASGI endpoint beside Django, like the others."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from core.api.raw_asgi import (
    InvalidAgentBody,
    Response,
    bearer_secret,
    read_agent_body,
    serve_post,
    token_refused,
)
from gateway_agent.protocol import Report, ReportAnswer
from saas.gateways import services as gateways
from saas.metering.api.intake import MAX_BODY_BYTES, out_of_bounds, queue_usage_batch

logger = logging.getLogger(__name__)
PATH = "/agent/v1/report"
MAX_REPORT_BYTES = MAX_BODY_BYTES + 64 * 1024  # a batch and a heartbeat


async def take_report(headers: dict[str, str], peer: str | None, receive: Callable[..., Any]) -> Response:
    ctx = await gateways.authenticated_agent(bearer_secret(headers.get("authorization", "")))
    if ctx is None:
        return token_refused()
    try:
        report = await read_agent_body(receive, Report, MAX_REPORT_BYTES, "A report")
    except InvalidAgentBody as exc:
        return exc.response()
    batch = report.usage
    if batch is not None and (refused := out_of_bounds(batch, "usage.")) is not None:
        return refused
    # Both at once: the answer waits for the slower of the two, not for their sum.
    heartbeat = _heartbeat_stored(gateways.store_heartbeat(ctx, report.heartbeat, headers, peer))
    try:
        queued = None if batch is None else await queue_usage_batch(ctx, batch)
    finally:
        stored = await heartbeat
    if queued is not None:
        return queued
    return 200, {"content-type": "application/json"}, _answer("accepted" if batch else None, stored)


async def _heartbeat_stored(storing: asyncio.Future[bool]) -> str:
    try:
        known = await storing
    except RedisError:
        logger.exception("heartbeat of a report not stored")
        return "not stored"
    return "stored" if known else "unknown instance"


@functools.cache
def _answer(usage: str | None, heartbeat: str) -> bytes:
    """One of the six answers, made once."""
    return ReportAnswer.model_validate({"usage": usage, "heartbeat": heartbeat}).model_dump_json().encode()


async def report_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    await serve_post(take_report, scope, receive, send)
