"""What the agent API's raw ASGI endpoints share (the config long-poll, heartbeats, usage
intake): they run beside Django so that a request holds no thread of its own. Database work goes
to the shared, bounded thread pool on connections closed when stale, so a burst of agents can
neither hold a thread each nor open a database connection each."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from pydantic import BaseModel, ValidationError

from core.specs import invalid_input_from


def bearer_secret(header: str) -> str:
    """The secret of an `Authorization: Bearer <secret>` header; empty for any other scheme."""
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Response = tuple[int, dict[str, str], bytes]


def in_pool(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    def call(*args: Any) -> T:
        close_old_connections()
        try:
            return function(*args)
        finally:
            close_old_connections()

    return sync_to_async(call, thread_sensitive=False)


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


class InvalidAgentBody(ValueError):
    """A body the agent API refuses: 400 (413 when too large) with `detail` and the fields'
    `errors`."""

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None, status: int = 400) -> None:
        super().__init__(detail)
        self.detail, self.errors, self.status = detail, errors, status

    def as_dict(self) -> dict[str, Any]:
        return {"detail": self.detail, **({"errors": self.errors} if self.errors else {})}

    def response(self) -> Response:
        return json_response(self.status, self.as_dict())


def parse_agent_body(raw: bytes, model: type[M]) -> M:
    """The JSON body `raw` validated against `model`; raises InvalidAgentBody. Read by
    pydantic's own JSON parser when no string in it can hold a NUL (what every gateway sends all
    the time); otherwise, or when refused, parsed again to name the field of a NUL or of any
    other refusal."""
    if b"\\u0000" not in raw:
        with contextlib.suppress(ValidationError):
            return model.model_validate_json(raw)
    try:
        data = json.loads(raw or b"null")
        where = _nul_at(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise InvalidAgentBody("Expected a JSON body.") from exc
    if where is not None:  # PostgreSQL stores no NUL character: refused here, not a 500 there
        message = "NUL characters are not allowed."
        raise InvalidAgentBody(f"{where}: {message}", {where: [message]})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        invalid = invalid_input_from(exc)
        raise InvalidAgentBody(invalid.detail, invalid.errors) from exc


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps(body).encode()


def request_headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def read_agent_body(receive: Callable[..., Any], model: type[M], limit: int, what: str) -> M:
    """The request body validated against `model`; raises InvalidAgentBody, with 413 when it is
    larger than `limit` bytes (`what` names it: "A heartbeat")."""
    body = await read_body(receive, limit)
    if body is None:
        raise InvalidAgentBody(f"{what} is at most {limit} bytes.", status=413)
    return parse_agent_body(body, model)


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


TakePost = Callable[[dict[str, str], str | None, Callable[..., Any]], Awaitable[Response]]


def token_refused() -> Response:
    return json_response(401, {"detail": "Invalid or revoked cluster token."}, {"www-authenticate": "Bearer"})


async def serve_post(
    take: TakePost, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    """An agent endpoint that takes POST only (405 otherwise): `take(headers, peer, receive)`."""
    if scope["method"] != "POST":
        response = json_response(
            405, {"detail": f'Method "{scope["method"]}" not allowed.'}, {"allow": "POST"}
        )
    else:
        client = scope.get("client")
        response = await take(request_headers(scope), client[0] if client else None, receive)
    await send_response(send, response)
