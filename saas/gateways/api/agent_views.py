"""The agent API, /agent/v1/: what gateway agents call with their cluster token.

The config long-poll is an async view: while it waits for a new snapshot it holds no thread,
only a coroutine (see saas.gateways.notifier)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from pydantic import ValidationError

from gateway_agent.protocol import Heartbeat, RegisterRequest, RegisterResponse
from saas.gateways import agents
from saas.gateways.notifier import snapshot_waiters
from saas.gateways.snapshots import snapshot_channel
from saas.specs import invalid_input_from

MAX_WAIT_S = 60.0
DEFAULT_WAIT_S = 30.0


def _error(status: int, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def _bearer(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _body(request: HttpRequest, model: type[Any]) -> Any:
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return _error(400, "Expected a JSON body.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        invalid = invalid_input_from(exc)
        return _error(400, invalid.detail, errors=invalid.errors)


def _unauthorized() -> JsonResponse:
    response = _error(401, "Invalid or revoked cluster token.")
    response["WWW-Authenticate"] = "Bearer"
    return response


@csrf_exempt
@require_POST
def register(request: HttpRequest) -> HttpResponse:
    ctx = agents.authenticate_agent(_bearer(request))
    if ctx is None:
        return _unauthorized()
    parsed = _body(request, RegisterRequest)
    if isinstance(parsed, HttpResponse):
        return parsed
    instance = agents.register_instance(ctx, parsed)
    answer = RegisterResponse(
        instance_id=str(instance.instance_id),
        cluster_id=ctx.cluster_id,
        heartbeat_interval_s=agents.HEARTBEAT_INTERVAL_S,
    )
    return JsonResponse(answer.model_dump(), status=201)


@csrf_exempt
@require_POST
def heartbeat(request: HttpRequest) -> HttpResponse:
    ctx = agents.authenticate_agent(_bearer(request))
    if ctx is None:
        return _unauthorized()
    parsed = _body(request, Heartbeat)
    if isinstance(parsed, HttpResponse):
        return parsed
    if not agents.record_heartbeat(ctx, parsed):
        return _error(404, "Unknown instance: register again.")
    return HttpResponse(status=204)


def _known_version(request: HttpRequest) -> int | None:
    value = request.GET.get("version", "")
    return int(value) if value.isdigit() else None


@require_GET
async def config(request: HttpRequest) -> HttpResponse:
    """The cluster's latest snapshot when it differs from the agent's `version` (or its
    If-None-Match ETag); otherwise wait up to `wait` seconds for a new one, then 304."""
    ctx = await sync_to_async(agents.authenticate_agent)(_bearer(request))
    if ctx is None:
        return _unauthorized()
    known = _known_version(request)
    etag = request.headers.get("If-None-Match", "").strip('"')
    try:
        wait = min(float(request.GET.get("wait", DEFAULT_WAIT_S)), MAX_WAIT_S)
    except ValueError:
        return _error(400, "wait: a number of seconds.")
    channel = snapshot_channel(ctx.schema_name, ctx.cluster_id)
    # Listen before looking, so a snapshot published in between is not missed.
    event = await snapshot_waiters.subscribe(channel)
    try:
        deadline = asyncio.get_running_loop().time() + max(wait, 0)
        while True:
            latest = await sync_to_async(agents.latest_snapshot)(ctx)
            if latest is not None and latest[0] != known and latest[1] != etag:
                served = await sync_to_async(agents.served_snapshot)(ctx)
                if served is not None:
                    found = JsonResponse(served)
                    found["ETag"] = f'"{served["sha256"]}"'
                    return found
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                response = HttpResponse(status=304)
                if latest is not None:
                    response["ETag"] = f'"{latest[1]}"'
                return response
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
    finally:
        snapshot_waiters.unsubscribe(channel, event)
