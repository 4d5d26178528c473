"""UsageMeter: each call counted once, when it is answered, however long it takes and however
long the agent does not read; reads of any size; state files of earlier versions; old workers'
final counts from drain readers, merged with live reads."""

import json

import pytest

from gateway_agent.protocol import UsageBatch
from gateway_agent.usage import (
    COUNTERS,
    LATENCY_BUCKETS,
    MAX_BATCH_BYTES,
    MAX_BATCH_ITEMS,
    UsageMeter,
    UsageSpool,
    merge_reads,
    merged_row,
)


def row(ok=0, failed=0, sent=0, answered=0, bytes_in=0, bytes_out=0, latency=(), use=None) -> list[int]:
    """A `parse_usage_table` row: 2xx and 5xx, went upstream, answered, bytes, latency buckets,
    then HAProxy's `use` (left out: unknown)."""
    values = [0, ok, 0, 0, failed, sent, answered, bytes_in, bytes_out, *latency]
    values += [0] * (COUNTERS - len(values))
    return values if use is None else [*values, use]


def counted(batches: list[UsageBatch]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for batch in batches:
        for item in batch.items:
            totals[item.status_class] = totals.get(item.status_class, 0) + item.requests
    return totals


def spooled(spool: UsageSpool) -> list[UsageBatch]:
    return [UsageBatch.model_validate_json(path.read_bytes()) for path in spool.pending()]


@pytest.fixture
def spool(tmp_path) -> UsageSpool:
    return UsageSpool(tmp_path / "spool")


def test_a_call_in_flight_across_any_gap_counts_once_when_answered(tmp_path, spool):
    """A 20-minute call, read every 10 s, then the agent away for three hours (or a spool drain
    that long) while it is still waiting: it is counted once, when its answer is."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    made = meter.record({"g|1|": row(ok=10, sent=11, answered=10, use=1)}, "gw", 1_000)
    assert counted(made) == {"2xx": 10}
    now = 1_000
    for now in range(1_010, 1_000 + 1_200, 10):
        assert meter.record({"g|1|": row(ok=10, sent=11, answered=10, use=1)}, "gw", now) == []
    later = now + 3 * 3600  # the gap: nothing read
    assert meter.record({"g|1|": row(ok=10, sent=11, answered=10, use=1)}, "gw", later) == []
    answered = meter.record({"g|1|": row(ok=11, sent=11, answered=11, use=0)}, "gw", later + 10)
    assert counted(answered) == {"2xx": 1}
    assert meter.record({"g|1|": row(ok=11, sent=11, answered=11, use=0)}, "gw", later + 20) == []
    assert sum(counted(spooled(spool)).values()) == 11


def test_the_audits_gap_bills_what_was_served_exactly(tmp_path, spool):
    """5,000 calls, 10 in flight at every read, a read gap of 150 s in the middle: 5,000 billed
    (the unanswered window billed 5,010)."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    batches = []
    now = 0
    for done in range(0, 5_001, 250):
        now += 150 if done == 2_500 else 10
        in_flight = 10 if done < 5_000 else 0
        batches += meter.record(
            {"g|1|c": row(ok=done, sent=done + in_flight, answered=done, use=in_flight)}, "gw", now
        )
    assert counted(batches) == {"2xx": 5_000}


def test_rows_without_use_keep_their_unanswered_in_flight_until_the_worker_is_gone(tmp_path, spool):
    meter = UsageMeter(tmp_path / "state.json", spool)
    for now in range(0, 10_000, 600):
        assert counted(meter.record({"g1|1|": row(sent=1)}, "gw", now)) == {}
    # Its worker gone (a restart): what it left unanswered can no longer be answered.
    assert counted(meter.record({"g2|1|": row(ok=1, sent=1, answered=1)}, "gw", 10_000)) == {
        "2xx": 1,
        "5xx": 1,
    }


def test_what_haproxy_gave_up_on_is_counted_once_beside_what_is_still_in_flight(tmp_path, spool):
    """Three calls waiting and one HTTP/2 stream reset (never to be answered): `use` is 3 for 4
    unanswered. The reset one is a 5xx at once; the three count with their answers."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    assert counted(meter.record({"g|1|": row(sent=4, use=3)}, "gw", 10)) == {"5xx": 1}
    assert counted(meter.record({"g|1|": row(sent=4, use=3)}, "gw", 20)) == {}
    # Between two reads a new call goes upstream and is reset too, while two are answered.
    assert counted(meter.record({"g|1|": row(ok=2, sent=5, answered=2, use=1)}, "gw", 30)) == {
        "2xx": 2,
        "5xx": 1,
    }
    assert counted(meter.record({"g|1|": row(ok=3, sent=5, answered=3, use=0)}, "gw", 40)) == {"2xx": 1}
    # The worker gone: nothing is left unanswered that was not counted.
    assert counted(meter.record({"g2|1|": row()}, "gw", 50)) == {}


def _many(keys: int, ok: int = 1, consumer: str = "c") -> dict[str, list[int]]:
    return {f"g|{route}|{consumer}": row(ok=ok, sent=ok, answered=ok, use=0) for route in range(1, keys + 1)}


def test_a_read_of_more_than_a_batch_is_split_and_every_part_saved_with_the_state(tmp_path, spool):
    meter = UsageMeter(tmp_path / "state.json", spool)
    made = meter.record(_many(25_000), "gw", 1_000)
    assert len(made) >= 3 and all(len(batch.items) <= MAX_BATCH_ITEMS for batch in made)
    assert all(len(batch.model_dump_json()) <= MAX_BATCH_BYTES for batch in made)
    assert counted(made) == {"2xx": 25_000} and len({batch.batch_id for batch in made}) == len(made)
    assert {batch.batch_id for batch in spooled(spool)} == {batch.batch_id for batch in made}
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["pending"] == [] and len(state["counters"]) == 25_000
    # Counting goes on from there: the next read is one batch again.
    grown = {**_many(25_000), "g|7|c": row(ok=2, sent=2, answered=2, use=0)}
    assert counted(meter.record(grown, "gw", 1_010)) == {"2xx": 1}


def test_items_of_long_names_and_big_numbers_are_cut_by_size_too(tmp_path, spool):
    meter = UsageMeter(tmp_path / "state.json", spool)
    big = 10**12
    counters = {
        f"g|{route}|{'é' * 100}": row(
            ok=big, sent=big, answered=big, bytes_in=2**50, latency=[big] * LATENCY_BUCKETS
        )
        for route in range(1, 9_001)
    }
    made = meter.record(counters, "gw", 1_000)
    assert len(made) > 1 and all(len(batch.model_dump_json().encode()) <= MAX_BATCH_BYTES for batch in made)
    assert sum(len(batch.items) for batch in made) == 9_000


def test_a_crash_between_saving_and_spooling_loses_and_doubles_nothing(tmp_path, spool, monkeypatch):
    """The state and all the batches of a read are saved together; a crash while spooling them
    leaves some in the spool and all in the state. At restart the missing ones are spooled, under
    the same ids, once."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    meter.record(_many(10), "gw", 900)
    appended = 0
    real_append = UsageSpool.append

    def crash_on_the_second(self, batch):
        nonlocal appended
        appended += 1
        if appended == 2:
            raise OSError("killed")
        return real_append(self, batch)

    monkeypatch.setattr(UsageSpool, "append", crash_on_the_second)
    with pytest.raises(OSError, match="killed"):
        meter.record(_many(25_000, ok=2), "gw", 1_000)
    monkeypatch.setattr(UsageSpool, "append", real_append)
    state = json.loads((tmp_path / "state.json").read_text())
    ids = [UsageBatch.model_validate_json(text).batch_id for text in state["pending"]]
    assert len(ids) >= 3

    restarted = UsageMeter(tmp_path / "state.json", UsageSpool(tmp_path / "spool"))
    assert restarted.state["pending"] == []
    after = spooled(spool)
    assert sorted(batch.batch_id for batch in after if batch.window_end == 1_000) == sorted(ids)
    assert counted(after) == {"2xx": 10 + 10 + 24_990 * 2}  # the first read, then each key's growth
    assert restarted.record(_many(25_000, ok=2), "gw", 1_010) == []
    # A second restart finds nothing to spool again.
    UsageMeter(tmp_path / "state.json", UsageSpool(tmp_path / "spool"))
    assert len(spool.pending()) == len(after)


def test_a_reads_batch_ids_are_the_same_when_it_is_made_again(tmp_path):
    made = []
    for run in ("a", "b"):
        meter = UsageMeter(tmp_path / f"{run}.json", UsageSpool(tmp_path / run))
        made.append([batch.batch_id for batch in meter.record(_many(12_000), "gw", 1_000)])
    assert made[0] == made[1] and len(made[0]) == 2


def test_a_state_written_by_the_previous_version_loads(tmp_path, spool):
    """One `pending` batch (a string) and the unanswered window's history: the batch is spooled,
    the history dropped, the counts carry on without a double."""
    pending = UsageBatch.model_validate(
        {
            "batch_id": "ab" * 16,
            "instance_id": "gw",
            "window_start": 90,
            "window_end": 100,
            "items": [{"minute": 60, "route_id": 1, "status_class": "2xx", "requests": 7}],
        }
    )
    old = {
        "counters": {"g|1|": row(ok=7, sent=8, answered=7)},
        "failed": {"g|1|": 0},
        "unanswered": {"g|1|": [[95.0, 1], [100.0, 1]]},
        "settled": {"g0": 50.0},
        "sequence": 4,
        "read_at": 100,
        "pending": pending.model_dump_json(),
    }
    (tmp_path / "state.json").write_text(json.dumps(old))
    meter = UsageMeter(tmp_path / "state.json", spool)
    assert [batch.batch_id for batch in spooled(spool)] == [pending.batch_id]
    assert meter.state["pending"] == [] and "unanswered" not in meter.state
    assert counted(meter.record({"g|1|": row(ok=8, sent=8, answered=8, use=0)}, "gw", 110)) == {"2xx": 1}
    assert counted(meter.record({"g0|1|": row(ok=5, sent=5, answered=5)}, "gw", 120)) == {}  # settled
    saved = json.loads((tmp_path / "state.json").read_text())
    assert "unanswered" not in saved and saved["sequence"] == 6
    # A state with no pending batch at all, and one whose batch was null.
    nothing: list[list[str] | None] = [None, []]
    for value in nothing:
        (tmp_path / "other.json").write_text(json.dumps({**old, "pending": value}))
        assert UsageMeter(tmp_path / "other.json", spool).state["pending"] == []


def test_an_entry_expired_unused_does_not_settle_its_live_worker(tmp_path, spool):
    """A week without a call for one route: HAProxy drops its entry while the worker serves on.
    The worker's other keys keep counting, and the route's next call counts from a new entry."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    meter.record(
        {"g|1|": row(ok=3, sent=3, answered=3, use=0), "g|2|": row(ok=1, sent=1, answered=1, use=0)}, "gw", 0
    )
    week = 7 * 24 * 3600
    assert counted(meter.record({"g|2|": row(ok=4, sent=4, answered=4, use=0)}, "gw", week)) == {"2xx": 3}
    both = {"g|1|": row(ok=1, sent=1, answered=1, use=0), "g|2|": row(ok=5, sent=5, answered=5, use=0)}
    assert counted(meter.record(both, "gw", week + 10)) == {"2xx": 2}


def test_bytes_that_grow_between_calls_go_with_the_next_call(tmp_path, spool):
    """A body still flowing at a read adds bytes with no new call: they are billed with the key's
    next item, not dropped."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    meter.record({"g|1|": row(ok=1, sent=1, answered=1, bytes_out=100, use=1)}, "gw", 10)
    assert meter.record({"g|1|": row(ok=1, sent=1, answered=1, bytes_out=5_000, use=1)}, "gw", 20) == []
    [batch] = meter.record({"g|1|": row(ok=2, sent=2, answered=2, bytes_out=5_100, use=0)}, "gw", 30)
    assert [(item.requests, item.bytes_out) for item in batch.items] == [(1, 5_000)]


# --- old workers' final counts, from drain readers -------------------------------------------


def test_an_old_workers_final_counts_bill_what_it_answered_after_the_agents_last_read(tmp_path, spool):
    """The agent read the old worker `g1` with a call in flight, then died; the call was
    answered, the worker exited, and its drain reader's file is all that is left of it. Read
    after the live worker `g2`, the file bills the call once; the next read, without the file,
    settles `g1` with nothing left."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    live = {"g2|1|": row(ok=1, sent=1, answered=1, use=0)}
    meter.record({**live, "g1|1|": row(ok=4, sent=5, answered=4, use=1)}, "gw", 10)
    final = {"g1|1|": row(ok=5, sent=5, answered=5, use=0)}
    assert counted(meter.record(live, "gw", 20, drained=final)) == {"2xx": 1}
    # Read again (a crash before the file was deleted): equal to what is saved, it adds nothing.
    assert counted(meter.record(live, "gw", 30, drained=final)) == {}
    assert counted(meter.record(live, "gw", 40)) == {}
    assert "g1" in meter.state["settled"]
    # A file of a generation settled already (its worker was gone without one) counts nothing.
    late = {"g1|1|": row(ok=9, sent=9, answered=9, use=0)}
    assert counted(meter.record(live, "gw", 50, drained=late)) == {}


def test_without_its_file_a_gone_workers_unanswered_count_as_5xx(tmp_path, spool):
    """The fallback when no drain reader ran (the agent's whole process group killed)."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    meter.record({"g1|1|": row(ok=4, sent=5, answered=4, use=1)}, "gw", 10)
    assert counted(meter.record({"g2|1|": row()}, "gw", 20)) == {"5xx": 1}


def test_a_live_read_and_a_file_of_one_worker_merge_by_their_highest_counts(tmp_path, spool):
    """An old worker read through the master CLI just before its drain reader wrote its file,
    both in one read (or the other way round): the highest of each counter, once."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    meter.record({"g1|1|": row(ok=1, sent=3, answered=1, use=2)}, "gw", 10)
    older, newer = row(ok=2, sent=3, answered=2, use=1), row(ok=3, sent=3, answered=3, use=0)
    assert counted(meter.record({"g1|1|": older}, "gw", 20, drained={"g1|1|": newer})) == {"2xx": 2}
    assert counted(meter.record({"g1|1|": newer}, "gw", 30, drained={"g1|1|": older})) == {}
    # `use`: the highest, so that no request is taken as given up that may still be answered.
    assert merged_row(row(ok=1, sent=2, answered=1, use=0), row(ok=1, sent=3, answered=1, use=2)) == row(
        ok=1, sent=3, answered=1, use=2
    )
    assert merged_row(row(sent=2, use=1), row(sent=1)) == row(sent=2)  # unknown in one: unknown
    # Two files of one worker (two drain readers held it).
    assert merge_reads({"k": row(ok=1, use=0)}, {"k": row(ok=2, use=0), "j": row(ok=1, use=0)}) == {
        "k": row(ok=2, use=0),
        "j": row(ok=1, use=0),
    }


def test_a_file_older_than_the_agents_last_read_bills_nothing_twice(tmp_path, spool):
    """A drain reader that gave up at its limit wrote the worker's counts then; the worker served
    on, the agent read more of it, then the worker was gone. The older file is not an entry that
    started again (that would bill it all twice): the last read stands, and what it left
    unanswered is settled once."""
    meter = UsageMeter(tmp_path / "state.json", spool)
    meter.record({"g1|1|": row(ok=3, sent=5, answered=3, use=2)}, "gw", 10)
    assert counted(meter.record({"g1|1|": row(ok=5, sent=6, answered=5, use=1)}, "gw", 20)) == {"2xx": 2}
    stale = {"g1|1|": row(ok=3, sent=5, answered=3, use=0)}
    assert counted(meter.record({"g2|1|": row()}, "gw", 30, drained=stale)) == {}
    assert counted(meter.record({"g2|1|": row()}, "gw", 40)) == {"5xx": 1}
    assert sum(counted(spooled(spool)).values()) == 6


def test_status_codes_counted_one_by_one_are_sent_as_codes_and_billed_once(tmp_path, spool):
    """401, 404 and 503 have counters of their own; a 418 is only in its class's. Each request
    is in one counter, so the items add up to the calls, each code within its class."""
    from gateway_agent.protocol import STATUS_CODES
    from gateway_agent.usage import FIRST_CODE

    values = row(ok=5, sent=9, answered=9)
    values[3] = 1  # a 418: 4xx, not a code counted one by one
    for code, count in ((401, 2), (404, 1), (503, 1)):
        values[FIRST_CODE + STATUS_CODES.index(code)] = count
    meter = UsageMeter(tmp_path / "state.json", spool)
    [batch] = meter.record({"g|7|app": values}, "gw", 1_000)
    assert [(item.status_class, item.status_code, item.requests) for item in batch.items] == [
        ("4xx", 401, 2),
        ("4xx", 404, 1),
        ("5xx", 503, 1),
        ("2xx", None, 5),
        ("4xx", None, 1),
    ]
    values[FIRST_CODE + STATUS_CODES.index(401)] += 3
    [later] = meter.record({"g|7|app": values}, "gw", 1_010)
    assert [(item.status_code, item.requests) for item in later.items] == [(401, 3)]


def test_a_state_saved_by_an_agent_that_counted_classes_only_bills_nothing_twice(tmp_path, spool):
    """An agent upgraded beside a running worker: the state's rows have no code counters, the
    worker's table has none either (zeros): only what grew since is billed."""
    from gateway_agent.usage import FIRST_CODE

    old_row = row(ok=40, sent=40, answered=40)[:FIRST_CODE]
    (tmp_path / "state.json").write_text(
        json.dumps({"counters": {"g|1|": old_row}, "sequence": 3, "pending": [], "settled": {}})
    )
    meter = UsageMeter(tmp_path / "state.json", spool)
    made = meter.record({"g|1|": row(ok=42, sent=42, answered=42, use=0)}, "gw", 1_000)
    assert counted(made) == {"2xx": 2}
