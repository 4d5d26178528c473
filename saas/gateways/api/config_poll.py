"""GET /agent/v1/config: the long-poll for snapshots, as a raw ASGI endpoint beside Django.

Django's ASGI handler gives every request a thread of its own (for its sync signal receivers)
that lives as long as the request: a thousand waiting agents would hold a thousand threads.
Here a waiting agent is one coroutine; database lookups are short calls on the shared thread
pool, and wake-ups come from one Redis subscription per process (saas.gateways.notifier).

Answers: 200 with {"version", "sha256", "document"} and an ETag when the cluster's latest
version differs from the agent's `version` (or from the version named by If-None-Match);
otherwise it waits up to `wait` seconds (default 30, at most 60) for one, then answers 304.
With `shards=1` the consumers come as shards, and with `have=N` only those that differ from
version N's (docs/gateway.md, "Sharded snapshots"); 400 for another `shards` or a `have` that is
not a version number.
Versions, not contents, are compared: every publish is its own version, even one whose content
equals an earlier one (a rollback), and the answer is always the version it names. 401 for a
bad token, and for one revoked (or whose grace period ended) while the poll waited."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from core.api.raw_asgi import (
    Response,
    bearer_secret,
    in_pool,
    json_response,
    request_headers,
    send_response,
    token_refused,
)
from core.api.validation import parse_id
from saas.gateways import agents
from saas.gateways.notifier import snapshot_waiters
from saas.gateways.snapshots import snapshot_channel

PATH = "/agent/v1/config"
MAX_WAIT_S = 60.0
DEFAULT_WAIT_S = 30.0


async def _accepted(secret: str) -> agents.AgentContext | None:
    """The token's context while it is accepted: from this process's cache while it hears token
    changes (a revoked token is forgotten at once), from the database otherwise."""
    if snapshot_waiters.listening:
        known = agents.recently_authenticated(secret)
        if known is not None:
            return known
    return await in_pool(agents.authenticate_agent_cached)(secret)


async def _latest(ctx: agents.AgentContext, channel: str, known: int | None) -> tuple[int, str] | None:
    """The cluster's latest (version, sha256): as announced to this process while it listens,
    or read from the database (and remembered). Read from the database too when the agent has a
    newer version than this process heard of (another process served it first)."""
    latest = snapshot_waiters.latest(channel)
    if latest is not None and (known is None or known <= latest[0]):
        return latest
    generation = snapshot_waiters.generation
    latest = await in_pool(agents.latest_snapshot)(ctx)
    if latest is not None:
        snapshot_waiters.remember_latest(channel, latest, generation)
    return latest


async def _latest_unless(
    known: int | None,
    ctx: agents.AgentContext,
    channel: str,
    serve: Callable[[agents.AgentContext, int], tuple[int, bytes] | None],
) -> tuple[tuple[int, str] | None, bytes | None]:
    """The cluster's latest (version, sha256) and, when it is not version `known`, its body."""
    for _ in range(2):
        latest = await _latest(ctx, channel, known)
        if latest is None or latest[0] == known:
            return latest, None
        found = await in_pool(serve)(ctx, latest[0])
        if found is not None:
            return latest, found[1]
        # A version heard of that the cluster lacks (an organization deleted and made again
        # under the same schema name): the database decides, once.
        snapshot_waiters.forget_latest(channel)
    return latest, None


async def poll_config(authorization: str, query: dict[str, str], if_none_match: str) -> Response:
    secret = bearer_secret(authorization)
    ctx = await _accepted(secret)
    if ctx is None:
        return token_refused()
    version = query.get("version", "")
    # The version the agent has: named in the query, or by the ETag it last received.
    known = parse_id(version) or parse_id(if_none_match.strip().strip('"').partition("-")[0])
    try:
        wait = max(0.0, min(float(query.get("wait", DEFAULT_WAIT_S)), MAX_WAIT_S))
    except ValueError:
        return json_response(
            400, {"detail": "wait: a number of seconds.", "errors": {"wait": ["A number of seconds."]}}
        )
    if query.get("shards", "0") not in ("0", "1"):
        return json_response(400, {"detail": "shards: 0 or 1.", "errors": {"shards": ["0 or 1."]}})
    have = parse_id(query["have"]) if "have" in query else None
    if "have" in query and have is None:
        return json_response(
            400, {"detail": "have: a version number.", "errors": {"have": ["A version number."]}}
        )
    served_snapshot_json = functools.partial(
        agents.served_snapshot_json, shards=query.get("shards") == "1", have=have
    )
    loop = asyncio.get_running_loop()
    channel = snapshot_channel(ctx.schema_name, ctx.cluster_id)
    # Listen before looking, so a snapshot published in between is not missed.
    event = await snapshot_waiters.subscribe(channel)
    try:
        deadline = loop.time() + wait
        waited = False
        while True:
            # Cleared before looking, never after: a notification that arrives while the
            # database is read must wake the wait that follows, not be wiped out by it.
            event.clear()
            # The token may have been revoked, or its grace period ended, while the poll
            # waited: what comes after a wait goes only to a token still accepted.
            if waited and await _accepted(secret) is None:
                return token_refused()
            latest, body = await _latest_unless(known, ctx, channel, served_snapshot_json)
            if latest is not None and body is not None:
                etag_value = agents.served_etag(latest[0], latest[1])
                return 200, {"content-type": "application/json", "etag": f'"{etag_value}"'}, body
            not_modified = 304, ({"etag": f'"{agents.served_etag(*latest)}"'} if latest else {}), b""
            remaining = deadline - loop.time()
            if remaining <= 0:
                return not_modified
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                # Nothing announced for the cluster: while this process hears announcements
                # (a lost connection wakes every poll), nothing was published, and the answer
                # needs no database visit.
                if snapshot_waiters.listening:
                    return not_modified if await _accepted(secret) is not None else token_refused()
            waited = True
    finally:
        snapshot_waiters.unsubscribe(channel, event)


async def config_poll_app(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    """The ASGI adapter: parse, answer, and give up early if the agent disconnects."""
    if scope["method"] != "GET":
        response = json_response(
            405, {"detail": f'Method "{scope["method"]}" not allowed.'}, {"allow": "GET"}
        )
    else:
        headers = request_headers(scope)
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        work = asyncio.ensure_future(
            poll_config(headers.get("authorization", ""), query, headers.get("if-none-match", ""))
        )
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        done, _ = await asyncio.wait({work, disconnected}, return_when=asyncio.FIRST_COMPLETED)
        if work not in done:
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            return
        disconnected.cancel()
        response = work.result()
    await send_response(send, response)


async def _wait_for_disconnect(receive: Callable[..., Any]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
