"""Writes of many concurrent requests coalesced into few: the usage batches the agent API takes
arrive from thousands of gateways at once, and one INSERT and one commit for many cost a busy
process far less than one each."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class CoalescingWriter(Generic[Item, Result]):
    """Hands the items of one event loop to `write` in lists: what arrives while a write is under
    way goes into the next one, so a lone item is written at once and a burst in a few writes.
    `write` returns one result per item, in order; each `submit` returns its item's result, or
    raises what the write holding it raised."""

    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[list[Result]]],
        *,
        max_items: int,
        max_size: int | None = None,
        size: Callable[[Item], int] = lambda item: 0,
        max_in_flight: int = 2,
    ) -> None:
        self._write_items = write
        self.max_items, self.max_size, self._size = max_items, max_size, size
        self.max_in_flight = max_in_flight
        self.waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self.in_flight = 0
        self.tasks: set[asyncio.Future[None]] = set()

    async def submit(self, item: Item) -> Result:
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, done))
        if self.in_flight < self.max_in_flight:
            self.in_flight += 1
            self.tasks.add(task := asyncio.ensure_future(self._write()))
            task.add_done_callback(self.tasks.discard)
        return await done

    def _take(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        """The oldest waiting items, within max_items and max_size (at least one)."""
        size = count = 0
        for item, _done in self.waiting:
            size += self._size(item)
            if count and (count == self.max_items or (self.max_size is not None and size > self.max_size)):
                break
            count += 1
        taken, self.waiting = self.waiting[:count], self.waiting[count:]
        return taken

    async def _write(self) -> None:
        try:
            while self.waiting:
                taken = self._take()
                try:
                    results = await self._write_items([item for item, _ in taken])
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


class PerLoop(Generic[Item, Result]):
    """One CoalescingWriter per event loop (a test runs several loops in one process)."""

    def __init__(self, make: Callable[[], CoalescingWriter[Item, Result]]) -> None:
        self._make = make
        self._writers: dict[asyncio.AbstractEventLoop, CoalescingWriter[Item, Result]] = {}

    def writer(self) -> CoalescingWriter[Item, Result]:
        loop = asyncio.get_running_loop()
        writer = self._writers.get(loop)
        if writer is None:
            for old in [old for old in self._writers if old.is_closed()]:
                del self._writers[old]
            writer = self._writers[loop] = self._make()
        return writer
