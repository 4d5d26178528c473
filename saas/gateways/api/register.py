"""POST /agent/v1/register: a gateway says who it is when it starts; 201 with its instance id,
the same one again when it names the id it was given before.

Each gateway calls it once a start, but a fleet starts at once: after a control plane upgrade,
or a region coming back, thousands of agents register within a minute. As a Django view each
call held a thread and a database connection of its own, and PostgreSQL refused the
connections past its limit (4,000 answers of 500 while 10,000 agents connected in
`make bench-fleet`). Served beside Django like the other agent endpoints, registrations queue
for the shared, bounded thread pool instead; 503 when the database cannot take one (the agent
tries again)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError
from redis.exceptions import RedisError

from core.api.client import caller_address
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
from gateway_agent.protocol import RegisterRequest, RegisterResponse
from saas.gateways import agents

logger = logging.getLogger(__name__)
PATH = "/agent/v1/register"
MAX_BODY_BYTES = 64 * 1024


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def take_registration(
    headers: dict[str, str], peer: str | None, receive: Callable[..., Any]
) -> Response:
    # Checked in the database, not this process's cache: a registration is rare, and records the
    # token's last use.
    try:
        ctx = await in_pool(agents.authenticate_agent)(bearer_secret(headers.get("authorization", "")))
    except DatabaseError:
        logger.exception("a gateway's registration could not be authenticated")
        return _not_taken()
    if ctx is None:
        return token_refused()
    try:
        request = await read_agent_body(receive, RegisterRequest, MAX_BODY_BYTES, "A registration")
    except InvalidAgentBody as exc:
        return exc.response()
    if request.instance_id and not _is_uuid(request.instance_id):
        message = "A UUID, as this endpoint answered it before."
        return json_response(400, {"detail": f"instance_id: {message}", "errors": {"instance_id": [message]}})
    # The address the control plane sees it call from.
    address = caller_address(peer, headers)
    try:
        instance = await in_pool(agents.register_instance)(ctx, request, address)
    except (DatabaseError, RedisError):
        logger.exception("registration of a gateway of cluster %s not taken", ctx.cluster_id)
        return _not_taken()
    answer = RegisterResponse(
        instance_id=str(instance.instance_id),
        cluster_id=ctx.cluster_id,
        heartbeat_interval_s=agents.HEARTBEAT_INTERVAL_S,
    )
    return json_response(201, answer.model_dump())


def _not_taken() -> Response:
    return json_response(503, {"detail": "Registrations cannot be taken right now; try again."})


async def register_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    await serve_post(take_registration, scope, receive, send)
