"""The agent API, /agent/v1/: what gateway agents call with their cluster token. Register and
heartbeat are plain views; the config long-poll (saas.gateways.api.config_poll) and usage intake
(saas.metering.api.intake) are served beside Django, so that they hold no thread per request."""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from core.api.client import client_ip
from core.api.raw_asgi import bearer_secret
from core.specs import invalid_input_from
from gateway_agent.protocol import Heartbeat, RegisterRequest, RegisterResponse
from saas.gateways import agents


def _error(status: int, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def _bearer(request: HttpRequest) -> str:
    return bearer_secret(request.headers.get("Authorization", ""))


def _nul_at(data: Any, path: str = "") -> str | None:
    """The path of the first key or string holding a NUL character, if any."""
    if isinstance(data, str):
        return (path or "non_field_errors") if "\x00" in data else None
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return where
        found = _nul_at(value, where)
        if found is not None:
            return found
    return None


def _body(request: HttpRequest, model: type[Any]) -> Any:
    try:
        data = json.loads(request.body or b"null")
        where = _nul_at(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        return _error(400, "Expected a JSON body.")
    if where is not None:  # PostgreSQL stores no NUL character: refused here, not a 500 there
        message = "NUL characters are not allowed."
        return _error(400, f"{where}: {message}", errors={where: [message]})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        invalid = invalid_input_from(exc)
        return _error(400, invalid.detail, errors=invalid.errors)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _address(request: HttpRequest) -> str | None:
    """The caller's address as the control plane sees it, when it is an IP address (a forwarded
    header may hold anything)."""
    address = client_ip(request)
    try:
        parsed = ipaddress.ip_address(address) if address else None
        return str(parsed) if parsed and "%" not in str(parsed) else None
    except ValueError:
        return None


def _unauthorized() -> JsonResponse:
    response = _error(401, "Invalid or revoked cluster token.")
    response["WWW-Authenticate"] = "Bearer"
    return response


M = TypeVar("M", bound=BaseModel)
AgentHandler = Callable[[agents.AgentContext, Any, HttpRequest], HttpResponse]


def agent_endpoint(model: type[M]) -> Callable[[AgentHandler], Callable[[HttpRequest], HttpResponse]]:
    """A POST of the agent API: the cluster token authenticated (401), the JSON body validated
    against `model` (400 naming the fields), then the handler with (context, parsed body,
    request)."""

    def decorate(handler: AgentHandler) -> Callable[[HttpRequest], HttpResponse]:
        @csrf_exempt
        @wraps(handler)
        def view(request: HttpRequest) -> HttpResponse:
            if request.method != "POST":
                response = _error(405, f'Method "{request.method}" not allowed.')
                response["Allow"] = "POST"
                return response
            ctx = agents.authenticate_agent(_bearer(request))
            if ctx is None:
                return _unauthorized()
            parsed = _body(request, model)
            if isinstance(parsed, HttpResponse):
                return parsed
            return handler(ctx, parsed, request)

        return view

    return decorate


@agent_endpoint(RegisterRequest)
def register(ctx: agents.AgentContext, request: RegisterRequest, http: HttpRequest) -> HttpResponse:
    if request.instance_id and not _is_uuid(request.instance_id):
        message = "A UUID, as this endpoint answered it before."
        return _error(400, f"instance_id: {message}", errors={"instance_id": [message]})
    instance = agents.register_instance(ctx, request, address=_address(http))
    answer = RegisterResponse(
        instance_id=str(instance.instance_id),
        cluster_id=ctx.cluster_id,
        heartbeat_interval_s=agents.HEARTBEAT_INTERVAL_S,
    )
    return JsonResponse(answer.model_dump(), status=201)


@agent_endpoint(Heartbeat)
def heartbeat(ctx: agents.AgentContext, beat: Heartbeat, http: HttpRequest) -> HttpResponse:
    if not agents.record_heartbeat(ctx, beat, address=_address(http)):
        return _error(404, "Unknown instance: register again.")
    return HttpResponse(status=204)
