"""The agent API as gateways reach it: through saas.asgi, as uvicorn calls it, so the endpoints
served beside Django (the config long-poll, reports, heartbeats, usage intake, registration)
answer as in production. They read the database on threads of their own: what a test wrote must
be committed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from asgiref.sync import sync_to_async
from django.db import connections


def call_agent_api(
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    *,
    headers: dict[str, str | bytes] | None = None,
    peer: str = "127.0.0.1",
) -> httpx.Response:
    """One request; `body` is sent as it is when bytes, else as JSON; `peer` is the address the
    server sees the request come from."""
    from saas.asgi import application

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=application, client=(peer, 50000))
        content = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.request(
                method, path, content=content, headers={**auth, **(headers or {})}
            )
        await sync_to_async(connections.close_all)()
        return response

    return asyncio.run(send())


def send_heartbeat(
    token: str, instance_id: str, version: int | None = None, error: str | None = None, **extra: Any
) -> int:
    """POST /agent/v1/heartbeat; the status answered."""
    body = {"instance_id": instance_id, "applied_version": version, "last_error": error}
    return call_agent_api("POST", "/agent/v1/heartbeat", token, body, **extra).status_code


GATEWAY = {"hostname": "gw-1", "agent_version": "0.3.1", "haproxy_version": "2.8.5"}


def register_gateway(
    token: str | None, body: Any = None, path: str = "/agent/v1/register", **extra: Any
) -> httpx.Response:
    """POST /agent/v1/register as a gateway starting (`GATEWAY` unless `body` says otherwise)."""
    return call_agent_api("POST", path, token, GATEWAY if body is None else body, **extra)


def registered_instance(token: str, **fields: Any) -> str:
    """A gateway registered with `fields` over `GATEWAY`: its instance id."""
    response = register_gateway(token, {**GATEWAY, **fields})
    assert response.status_code == 201, response.content
    return str(response.json()["instance_id"])
