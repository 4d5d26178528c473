"""What the metering tests share: agent tokens, usage batches, posting them through the ASGI
application as uvicorn would, and reading the bill back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx

from core import clock
from tenants.roles import Role
from tests.agent_api import call_agent_api

# Every test here runs at this instant (time_machine, ticking): the minutes it reports are then
# within the window the intake accepts, whatever today's date is.
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def token(cw, side: str = "a") -> str:
    client = cw.client(Role.ADMIN, side=side)
    return client.post(cw.url("tokens/", side=side), {"name": "gw"}, format="json").json()["token"]


def minute(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def this_minute() -> int:
    return int(clock.now().timestamp()) // 60 * 60


def batch(*items: tuple[str | int, int, str, str, int], batch_id: str | None = None) -> dict:
    """Items as (minute: ISO text or Unix time, route id, consumer, status class, requests)."""
    minutes = [minute(m) if isinstance(m, str) else m for m, *_ in items]
    return {
        "batch_id": batch_id or uuid.uuid4().hex,
        "instance_id": "gw-1",
        "window_start": minutes[0] if items else 0,
        "window_end": (minutes[-1] + 60) if items else 0,
        "items": [
            {
                "minute": at,
                "route_id": route,
                "consumer": consumer,
                "status_class": status,
                "requests": requests,
                "bytes_in": requests * 100,
                "bytes_out": requests * 1000,
            }
            for at, (_, route, consumer, status, requests) in zip(minutes, items, strict=True)
        ],
    }


def post(token: str, body: object, method: str = "POST") -> httpx.Response:
    """POST /agent/v1/usage through the ASGI application, as uvicorn would call it."""
    return call_agent_api(method, "/agent/v1/usage", token, body)


def billed(cw, period: str, side: str = "a") -> int:
    org = getattr(cw.world, side).org
    response = cw.client(Role.BILLING, side=side).get(f"/api/v1/orgs/{org.slug}/usage/?period={period}")
    assert response.status_code == 200, response.content
    return int(response.json()["billable_calls"])


def queued() -> int:
    from saas.metering.models import UsageIntake

    return UsageIntake.objects.count()
