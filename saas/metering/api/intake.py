"""POST /agent/v1/usage: an agent's batch of counted calls, queued at once (202). A raw ASGI
endpoint beside Django, like the config long-poll: many agents posting at once hold neither a
thread nor a database connection each (the token check is cached, the queue is Redis).
The same batch id counts once however often it is sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

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
from saas.metering.stream import enqueue_usage_batch

PATH = "/agent/v1/usage"
MAX_BODY_BYTES = 4 * 1024 * 1024


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
        batch = UsageBatch.model_validate_json(body)
    except ValidationError as exc:
        invalid = invalid_input_from(exc)
        return json_response(400, {"detail": invalid.detail, "errors": invalid.errors})
    await enqueue_usage_batch(ctx, body)
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
