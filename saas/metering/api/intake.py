"""POST /agent/v1/usage: an agent's batch of counted calls, checked against what the rollups can
hold (saas/metering/bounds.py; 400 naming each field otherwise) and answered 202 once it is
committed to the intake queue in PostgreSQL: the agent drops its spooled copy on the 202.

A raw ASGI endpoint beside Django, like the config long-poll: many agents posting at once hold
no thread each. The token check is cached; the queue insert runs on the shared bounded thread pool
(`in_pool`), never on the event loop: one INSERT for the batches that arrived together
(core.api.batched_writes), so a busy process pays one round trip and one commit for many. The
same batch id counts once however often it is sent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError

from core import clock
from core.api.batched_writes import BatchedWrites, PerLoop
from core.api.raw_asgi import (
    InvalidAgentBody,
    Response,
    bearer_secret,
    in_pool,
    json_response,
    read_agent_body,
    serve_post,
    token_refused,
)
from gateway_agent.protocol import UsageBatch
from saas.gateways import services as gateways
from saas.metering.bounds import batch_errors
from saas.metering.intake_queue import queue_usage_batches

logger = logging.getLogger(__name__)
PATH = "/agent/v1/usage"
MAX_BODY_BYTES = 4 * 1024 * 1024


async def _queue_rows(rows: list[tuple[str, int, str]]) -> list[None]:
    await in_pool(queue_usage_batches)(rows)
    return [None] * len(rows)


# One INSERT and one commit for the batches that arrive together; each POST is answered when
# the insert holding its batch has committed (or failed: then every batch in it is refused).
_queue_writes = PerLoop(
    lambda: BatchedWrites(
        _queue_rows, max_items=1000, max_in_flight=2, size=lambda row: len(row[2]), max_size=8 * 1024 * 1024
    )
)


async def take_usage_batch(
    headers: dict[str, str], peer: str | None, receive: Callable[..., Any]
) -> Response:
    ctx = await gateways.authenticated_agent(bearer_secret(headers.get("authorization", "")))
    if ctx is None:
        return token_refused()
    try:
        batch = await read_agent_body(receive, UsageBatch, MAX_BODY_BYTES, "A usage batch")
    except InvalidAgentBody as exc:
        return exc.response()
    refused = out_of_bounds(batch) or await queue_usage_batch(ctx, batch)
    return refused or json_response(202, {"batch_id": batch.batch_id})


def out_of_bounds(batch: UsageBatch, field_prefix: str = "") -> Response | None:
    """400 naming each field the rollups cannot hold (saas/metering/bounds.py), or None."""
    if errors := batch_errors(batch, clock.now()):
        errors = {f"{field_prefix}{field}": messages for field, messages in errors.items()}
        field, messages = next(iter(errors.items()))
        return json_response(400, {"detail": f"{field}: {messages[0]}", "errors": errors})
    return None


async def queue_usage_batch(ctx: gateways.AgentContext, batch: UsageBatch) -> Response | None:
    """Queue a checked batch, returning once it is committed; 503 when it cannot be: not
    committed, so not accepted, and the agent sends it again."""
    try:
        await _queue_writes.get().submit((ctx.schema_name, ctx.cluster_id, batch.model_dump_json()))
    except DatabaseError:
        logger.exception("usage batch %s could not be queued", batch.batch_id)
        return json_response(503, {"detail": "Usage cannot be taken right now; send it again later."})
    return None


async def usage_intake_app(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    await serve_post(take_usage_batch, scope, receive, send)
