"""What the agent API's raw ASGI endpoints share (the config long-poll, heartbeats, usage
intake): they run beside Django so that a request holds no thread of its own. Database work goes
to the shared, bounded thread pool on connections closed when stale, so a burst of agents can
neither hold a thread each nor open a database connection each."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections


def bearer_secret(header: str) -> str:
    """The secret of an `Authorization: Bearer <secret>` header; empty for any other scheme."""
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


T = TypeVar("T")
Response = tuple[int, dict[str, str], bytes]


def in_pool(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    def call(*args: Any) -> T:
        close_old_connections()
        try:
            return function(*args)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False)


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()


def request_headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def read_body(receive: Callable[..., Any], limit: int) -> bytes | None:
    """The request body, or None when it is larger than `limit` bytes."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body"):
            return body


async def send_response(send: Callable[..., Any], response: Response) -> None:
    status, headers, body = response
    if status != 204:  # a 204 has no body, and says so by sending no length
        headers = {**headers, "content-length": str(len(body))}
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": body})
