"""Waiting for new snapshots without holding a thread: one Redis pattern subscription per web
process fans notifications out to every waiting long-poll as asyncio events. A thousand waiting
agents cost a thousand small coroutines and one Redis connection.

The same connection hears which cluster tokens were revoked or rotated, so every process drops
them from its cache of accepted tokens at once (saas.gateways.agents): while it listens, the
cache is as good as the database."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import defaultdict

import redis.asyncio as redis_asyncio
from django.conf import settings
from django_redis import get_redis_connection

from saas.gateways.agents import forget_authenticated, hear_token_announcements

logger = logging.getLogger(__name__)
TOKEN_CHANGES_CHANNEL = "cluster-tokens:changed"
# As long as a poll's longest wait: an announcement Redis lost delays a change by at most this and
# one poll's wait (a poll that read the entry just before it ran out waits on it).
LATEST_FOR_S = 60.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
        # Each cluster's latest (version, sha256, when learned) as announced, or read from the
        # database while this process listened: a poll finds nothing new without a query. Kept
        # LATEST_FOR_S at most; emptied whenever the subscription is (re)made, since what was
        # announced in between is unknown. `_generation` grows with every forgetting, so a database read that
        # began before it is not kept.
        self._latest: dict[str, tuple[int, str, float]] = {}
        self._generation = 0

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
                    # What changed while nobody listened is unknown: every cached token goes,
                    # and every latest version heard.
                    forget_authenticated(None)
                    self._forget_every_latest()
                    hear_token_announcements(True)
                    ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            forget_authenticated(message["data"].decode())
                            continue
                        if message.get("type") != "pmessage":
                            continue
                        channel = message["channel"].decode()
                        self._hear_latest(channel, message["data"])
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
                self._forget_every_latest()
                logger.exception("Snapshot notifications interrupted; resubscribing")
                for events in self._waiters.values():
                    for event in events:
                        event.set()
                await asyncio.sleep(1)
            finally:
                await client.aclose()  # type: ignore[attr-defined]  # redis>=5; the stubs lag

    def _hear_latest(self, channel: str, data: bytes) -> None:
        version, _, sha256 = data.decode("ascii", "replace").partition(":")
        if version.isascii() and version.isdigit() and _SHA256.fullmatch(sha256):
            self._keep_latest(channel, (int(version), sha256))
        else:  # an announcement without its hash (an older process): ask the database again
            self.forget_latest(channel)

    def _keep_latest(self, channel: str, latest: tuple[int, str]) -> None:
        known = self._latest.get(channel)
        now = time.monotonic()
        # Versions only grow: an older read loses to what was heard, unless that has expired.
        if known is None or known[0] <= latest[0] or now - known[2] > LATEST_FOR_S:
            self._latest[channel] = (*latest, now)

    def _forget_every_latest(self) -> None:
        self._latest.clear()
        self._generation += 1

    def latest(self, channel: str) -> tuple[int, str] | None:
        """The cluster's latest (version, sha256) as this process knows it while it listens;
        None when it must ask the database."""
        known = self._latest.get(channel) if self.listening else None
        if known is None or time.monotonic() - known[2] > LATEST_FOR_S:
            return None
        return known[0], known[1]

    def forget_latest(self, channel: str) -> None:
        """What this process holds for the cluster is in doubt: the database decides next."""
        self._latest.pop(channel, None)
        self._generation += 1

    @property
    def generation(self) -> int:
        """Read before a database read of a latest version, and handed to remember_latest."""
        return self._generation

    def remember_latest(self, channel: str, latest: tuple[int, str], generation: int) -> None:
        """A latest version read from the database, kept while this process listens, unless
        something was forgotten since the read began (`generation`), or a newer one was heard."""
        if self.listening and generation == self._generation:
            self._keep_latest(channel, latest)

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
