"""Writes many requests make at once go out together, and each request learns its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from core.api.batched_writes import BatchedWrites


def test_what_arrives_during_a_write_goes_out_in_the_next_one_within_its_limits() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    async def scenario() -> list[int]:
        batched = BatchedWrites(write, max_items=3, max_in_flight=1)
        first = asyncio.ensure_future(batched.submit(0))
        await asyncio.sleep(0.001)  # its write is under way
        return [await first, *await asyncio.gather(*(batched.submit(item) for item in range(1, 6)))]

    assert asyncio.run(scenario()) == [0, 10, 20, 30, 40, 50]
    # The first alone (nothing else waited), then what came meanwhile, three at a time.
    assert writes == [[0], [1, 2, 3], [4, 5]]


def test_a_batch_stops_at_its_size_but_takes_at_least_one() -> None:
    writes: list[list[str]] = []

    async def write(items: list[str]) -> list[None]:
        writes.append(items)
        await asyncio.sleep(0)
        return [None] * len(items)

    async def scenario() -> None:
        batched = BatchedWrites(write, max_items=100, max_in_flight=1, size=len, max_size=5)
        await asyncio.gather(*(batched.submit(text) for text in ("a", "bbbbbbbb", "cc", "ddd", "e")))

    asyncio.run(scenario())
    assert writes == [["a"], ["bbbbbbbb"], ["cc", "ddd"], ["e"]]


def test_a_failed_write_fails_its_own_requests_only() -> None:
    async def write(items: list[int]) -> list[int]:
        await asyncio.sleep(0)
        if 1 in items:
            raise ConnectionError("the store is away")
        return items

    async def scenario() -> tuple[list[object], int]:
        batched = BatchedWrites(write, max_items=2, max_in_flight=1)
        outcomes = await asyncio.gather(*(batched.submit(item) for item in range(4)), return_exceptions=True)
        return outcomes, await batched.submit(7)

    outcomes, later = asyncio.run(scenario())
    # Two at a time: [0, 1] failed together, [2, 3] were written.
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes[:2])
    assert outcomes[2:] == [2, 3]
    assert later == 7  # the writer goes on after a failure


def test_a_write_answering_for_the_wrong_number_of_items_fails_its_requests() -> None:
    async def write(items: list[int]) -> list[int]:
        return []

    async def scenario() -> int:
        return await BatchedWrites(write, max_items=2, max_in_flight=1).submit(1)

    with pytest.raises(RuntimeError, match="1 items written, 0 results"):
        asyncio.run(scenario())
