"""POST /agent/v1/usage: an agent's batch of counted calls, checked against what the rollups can
hold (saas/metering/bounds.py; 400 naming each field otherwise) and answered 202 once it is
committed to the intake queue in PostgreSQL: the agent drops its spooled copy on the 202.

A raw ASGI endpoint beside Django, like the config long-poll: many agents posting at once hold
no thread each. The token check is cached; the queue insert runs on the shared bounded thread pool
(`in_pool`), never on the event loop: one INSERT for the batches that arrived together
(`core.api.coalescing`), so a busy process pays one round trip and one commit for many. The same batch id
counts once however often it is sent."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError
from pydantic import ValidationError

from core import clock
from core.api.coalescing import CoalescingWriter, PerLoop
from core.api.raw_asgi import (
    Response,
    bearer_secret,
    in_pool,
    json_response,
    read_body,
    request_headers,
    send_response,
)
from core.specs import invalid_input_from
from gateway_agent.protocol import UsageBatch
from saas.gateways import services as gateways
from saas.metering.bounds import batch_errors
from saas.metering.intake_queue import queue_usage_batches

logger = logging.getLogger(__name__)
PATH = "/agent/v1/usage"
MAX_BODY_BYTES = 4 * 1024 * 1024


async def _queue(rows: list[tuple[str, int, str]]) -> list[None]:
    await in_pool(queue_usage_batches)(rows)
    return [None] * len(rows)


# The batches that arrive together go into one INSERT: at most 200 rows or 8 MB, two inserts
# under way at once per process. Each POST is answered once the insert holding its batch has
# committed (or failed: then every batch in it is refused).
_queue_writers: PerLoop[tuple[str, int, str], None] = PerLoop(
    lambda: CoalescingWriter(_queue, max_items=200, max_size=8 * 1024 * 1024, size=lambda row: len(row[2]))
)


async def take_usage_batch(authorization: str, receive: Callable[..., Any]) -> Response:
    secret = bearer_secret(authorization)
    ctx = gateways.recently_authenticated(secret) or await in_pool(gateways.authenticate_agent_cached)(secret)
    if ctx is None:
        return json_response(
            401, {"detail": "Invalid or revoked cluster token."}, {"www-authenticate": "Bearer"}
        )
    body = await read_body(receive, MAX_BODY_BYTES)
    if body is None:
        return json_response(413, {"detail": f"A usage batch is at most {MAX_BODY_BYTES} bytes."})
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        detail = "The body must be JSON in UTF-8."
        return json_response(400, {"detail": detail, "errors": {"non_field_errors": [detail]}})
    try:
        batch = UsageBatch.model_validate_json(text)
    except ValidationError as exc:
        invalid = invalid_input_from(exc)
        return json_response(400, {"detail": invalid.detail, "errors": invalid.errors})
    if errors := batch_errors(batch, clock.now()):
        field, messages = next(iter(errors.items()))
        return json_response(400, {"detail": f"{field}: {messages[0]}", "errors": errors})
    try:
        await _queue_writers.writer().submit((ctx.schema_name, ctx.cluster_id, text))
    except DatabaseError:
        # Not committed, so not accepted: the agent keeps the batch and sends it again.
        logger.exception("usage batch %s could not be queued", batch.batch_id)
        return json_response(503, {"detail": "Usage cannot be taken right now; send it again later."})
    return json_response(202, {"batch_id": batch.batch_id})


async def usage_intake_app(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    if scope["method"] != "POST":
        response = json_response(
            405, {"detail": f'Method "{scope["method"]}" not allowed.'}, {"allow": "POST"}
        )
    else:
        response = await take_usage_batch(request_headers(scope).get("authorization", ""), receive)
    await send_response(send, response)
