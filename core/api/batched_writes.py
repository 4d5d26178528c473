"""Writes that many concurrent requests of one event loop make, done many at a time: what arrives
while a write is under way goes into the next one, so a busy process pays one round trip for
many requests (the usage intake's INSERT, the heartbeats' Redis script) and a lone request is
written at once. Each caller gets its own item's result, or the write's exception."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatchedWrites(Generic[T, R]):
    """`write(items)` returns one result per item, in order. At most `max_items` items (and
    `max_size` by `size`, but at least one) go into one write, and at most `max_in_flight` writes
    are under way at once."""

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_items: int,
        max_in_flight: int,
        size: Callable[[T], int] = lambda _: 0,
        max_size: int = 0,
    ) -> None:
        self.write, self.size = write, size
        self.max_items, self.max_in_flight, self.max_size = max_items, max_in_flight, max_size
        self.waiting: list[tuple[T, asyncio.Future[R]]] = []
        self.in_flight = 0
        self.tasks: set[asyncio.Future[None]] = set()

    async def submit(self, item: T) -> R:
        return await self.enqueue(item)

    def enqueue(self, item: T) -> asyncio.Future[R]:
        """The item's result to come: a request can go on with other work meanwhile, without a
        task of its own. Await it, always (its exception is the write's)."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, done))
        if self.in_flight < self.max_in_flight:
            self.in_flight += 1
            self.tasks.add(task := asyncio.ensure_future(self._write()))
            task.add_done_callback(self.tasks.discard)
        return done

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The oldest waiting items, within max_items and max_size (at least one)."""
        size = count = 0
        for item, _done in self.waiting:
            size += self.size(item)
            if count and (count == self.max_items or (self.max_size and size > self.max_size)):
                break
            count += 1
        taken, self.waiting = self.waiting[:count], self.waiting[count:]
        return taken

    async def _write(self) -> None:
        try:
            while self.waiting:
                taken = self._take()
                try:
                    results = list(await self.write([item for item, _ in taken]))
                    if len(results) != len(taken):
                        raise RuntimeError(f"{len(taken)} items written, {len(results)} results")
                except BaseException as exc:
                    for _, done in taken:
                        if done.done():
                            continue
                        if isinstance(exc, Exception):
                            done.set_exception(exc)
                        else:
                            done.cancel()
                    if not isinstance(exc, Exception):
                        raise
                else:
                    for (_, done), result in zip(taken, results, strict=True):
                        if not done.done():
                            done.set_result(result)
        finally:
            self.in_flight -= 1


class PerLoop(Generic[T]):
    """One `make()` per event loop (a client, a BatchedWrites): what a loop's futures and
    connections belong to cannot serve another loop (tests run several, one after another)."""

    def __init__(self, make: Callable[[], T]) -> None:
        self.make = make
        self.made: dict[asyncio.AbstractEventLoop, T] = {}

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        made = self.made.get(loop)
        if made is None:
            for old in [old for old in self.made if old.is_closed()]:
                del self.made[old]
            made = self.made[loop] = self.make()
        return made
