"""Waiting for new snapshots without holding a thread: one Redis pattern subscription per web
process fans notifications out to every waiting long-poll as asyncio events. A thousand waiting
agents cost a thousand small coroutines and one Redis connection.

The same connection hears which cluster tokens were revoked or rotated, so every process drops
them from its cache of accepted tokens at once (saas.gateways.agents): while it listens, the
cache is as good as the database."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import redis.asyncio as redis_asyncio
from django.conf import settings
from django_redis import get_redis_connection

from saas.gateways.agents import forget_authenticated, hear_token_announcements

logger = logging.getLogger(__name__)
TOKEN_CHANGES_CHANNEL = "cluster-tokens:changed"


def announce_token_change(*token_hashes: str) -> None:
    """Tell every web process to forget these tokens (call once the change is committed)."""
    try:
        redis = get_redis_connection("default")
        for token_hash in token_hashes:
            redis.publish(TOKEN_CHANGES_CHANNEL, token_hash)
    except Exception:
        # The caches hold a token 30 s at most: a lost announcement delays the refusal that long.
        logger.exception("Could not announce a change of cluster token")


class SnapshotWaiters:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None

    @property
    def listening(self) -> bool:
        """Whether this process hears token changes now, on the running event loop."""
        return (
            self._task is not None
            and not self._task.done()
            and self._ready is not None
            and self._ready.is_set()
            and self._loop is asyncio.get_running_loop()
        )

    async def _ensure_listener(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop:
            assert self._ready is not None
            await self._ready.wait()
            return
        self._loop = loop
        self._ready = asyncio.Event()
        self._task = loop.create_task(self._listen(self._ready))
        await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def _listen(self, ready: asyncio.Event) -> None:
        while True:
            client = redis_asyncio.from_url(settings.REDIS_URL)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe("snapshots:*")
                    await pubsub.subscribe(TOKEN_CHANGES_CHANNEL)
                    # What changed while nobody listened is unknown: every cached token goes.
                    forget_authenticated(None)
                    hear_token_announcements(True)
                    ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            forget_authenticated(message["data"].decode())
                            continue
                        if message.get("type") != "pmessage":
                            continue
                        channel = message["channel"].decode()
                        for event in list(self._waiters.get(channel, ())):
                            event.set()
            except asyncio.CancelledError:
                hear_token_announcements(False)  # the loop is closing: nobody listens any more
                raise
            except Exception:
                # Redis restarted or the connection dropped: wake everyone (they re-check the
                # database), then subscribe again.
                ready.clear()
                hear_token_announcements(False)
                logger.exception("Snapshot notifications interrupted; resubscribing")
                for events in self._waiters.values():
                    for event in events:
                        event.set()
                await asyncio.sleep(1)
            finally:
                await client.aclose()  # type: ignore[attr-defined]  # redis>=5; the stubs lag

    async def wait(self, channel: str, timeout: float) -> bool:
        """Wait until `channel` is notified; False when `timeout` passes first."""
        event = await self.subscribe(channel)
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.unsubscribe(channel, event)

    async def subscribe(self, channel: str) -> asyncio.Event:
        await self._ensure_listener()
        event = asyncio.Event()
        self._waiters[channel].add(event)
        return event

    def unsubscribe(self, channel: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(channel)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(channel, None)

    @property
    def waiting(self) -> int:
        return sum(len(events) for events in self._waiters.values())


snapshot_waiters = SnapshotWaiters()
