"""GET /agent/v1/config: the long-poll for snapshots, as a raw ASGI endpoint beside Django.

Django's ASGI handler gives every request a thread of its own (for its sync signal receivers)
that lives as long as the request: a thousand waiting agents would hold a thousand threads.
Here a waiting agent is one coroutine; database lookups are short calls on the shared thread
pool, and wake-ups come from one Redis subscription per process (saas.gateways.notifier).

Answers: 200 with {"version", "sha256", "document"} and an ETag when the cluster's latest
snapshot differs from the agent's `version` (or If-None-Match); otherwise it waits up to `wait`
seconds (default 30, at most 60) for one, then answers 304. 401 for a bad token."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from saas.gateways import agents
from saas.gateways.notifier import snapshot_waiters
from saas.gateways.snapshots import snapshot_channel

from .agent_views import bearer_secret

PATH = "/agent/v1/config"
MAX_WAIT_S = 60.0
DEFAULT_WAIT_S = 30.0
T = TypeVar("T")
Response = tuple[int, dict[str, str], bytes]


def _in_pool(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    """A short database call on the shared thread pool, on a connection that is closed when
    stale, so waiting agents hold neither threads nor connections."""

    def call(*args: Any) -> T:
        close_old_connections()
        try:
            return function(*args)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()


async def poll_config(authorization: str, query: dict[str, str], if_none_match: str) -> Response:
    ctx = await _in_pool(agents.authenticate_agent)(bearer_secret(authorization))
    if ctx is None:
        return _json(401, {"detail": "Invalid or revoked cluster token."}, {"www-authenticate": "Bearer"})
    version = query.get("version", "")
    known = int(version) if version.isdigit() else None
    etag = if_none_match.strip().strip('"')
    try:
        wait = max(0.0, min(float(query.get("wait", DEFAULT_WAIT_S)), MAX_WAIT_S))
    except ValueError:
        return _json(
            400, {"detail": "wait: a number of seconds.", "errors": {"wait": ["A number of seconds."]}}
        )
    loop = asyncio.get_running_loop()
    channel = snapshot_channel(ctx.schema_name, ctx.cluster_id)
    # Listen before looking, so a snapshot published in between is not missed.
    event = await snapshot_waiters.subscribe(channel)
    try:
        deadline = loop.time() + wait
        while True:
            latest = await _in_pool(agents.latest_snapshot)(ctx)
            if latest is not None and latest[0] != known and latest[1] != etag:
                found = await _in_pool(agents.served_snapshot_json)(ctx, latest[1])
                if found is not None:
                    sha256, body = found
                    return 200, {"content-type": "application/json", "etag": f'"{sha256}"'}, body
            remaining = deadline - loop.time()
            if remaining <= 0:
                return 304, ({"etag": f'"{latest[1]}"'} if latest else {}), b""
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
    finally:
        snapshot_waiters.unsubscribe(channel, event)


async def config_poll_app(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    """The ASGI adapter: parse, answer, and give up early if the agent disconnects."""
    if scope["method"] != "GET":
        status, headers, body = _json(
            405, {"detail": f'Method "{scope["method"]}" not allowed.'}, {"allow": "GET"}
        )
    else:
        request_headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        work = asyncio.ensure_future(
            poll_config(
                request_headers.get("authorization", ""), query, request_headers.get("if-none-match", "")
            )
        )
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        done, _ = await asyncio.wait({work, disconnected}, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            return
        disconnected.cancel()
        status, headers, body = work.result()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (k.encode(), v.encode()) for k, v in {**headers, "content-length": str(len(body))}.items()
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _wait_for_disconnect(receive: Callable[..., Any]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
