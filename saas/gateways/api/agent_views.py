"""The agent API, /agent/v1/: what gateway agents call with their cluster token. Register is a
plain view: each gateway calls it once a start. What every gateway calls all the time is served
beside Django, holding no thread per request: the config long-poll (saas.gateways.api.config_poll),
heartbeats (saas.gateways.api.heartbeat) and usage intake (saas.metering.api.intake)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel

from core.api.client import client_ip, ip_address_or_none
from core.api.raw_asgi import InvalidAgentBody, bearer_secret, parse_agent_body
from gateway_agent.protocol import RegisterRequest, RegisterResponse
from saas.gateways import agents

M = TypeVar("M", bound=BaseModel)


def _error(status: int, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"detail": detail, **extra}, status=status)


def _bearer(request: HttpRequest) -> str:
    return bearer_secret(request.headers.get("Authorization", ""))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _address(request: HttpRequest) -> str | None:
    """The caller's address as the control plane sees it, when it is an IP address."""
    return ip_address_or_none(client_ip(request))


def _unauthorized() -> JsonResponse:
    response = _error(401, "Invalid or revoked cluster token.")
    response["WWW-Authenticate"] = "Bearer"
    return response


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
            try:
                parsed = parse_agent_body(request.body, model)
            except InvalidAgentBody as exc:
                return JsonResponse(exc.as_dict(), status=400)
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
