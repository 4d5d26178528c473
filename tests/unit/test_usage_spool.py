"""The agent's usage spool: nothing leaves it before the control plane took it, it survives a
restart, and its bounds drop the oldest batches loudly."""

import logging
import time
import uuid

import pytest

from gateway_agent.protocol import UsageBatch
from gateway_agent.usage import SpoolLimits, UsageRefused, UsageSpool, send_pending


def batch(requests: int = 1) -> UsageBatch:
    item = {"minute": 1_795_600_000, "route_id": 1, "status_class": "2xx", "requests": requests}
    return UsageBatch.model_validate(
        {
            "batch_id": uuid.uuid4().hex,
            "instance_id": "gw",
            "window_start": 0,
            "window_end": 10,
            "items": [item],
        }
    )


def test_batches_survive_a_restart_and_are_sent_oldest_first(tmp_path):
    made = [batch(n) for n in (1, 2, 3)]
    spool = UsageSpool(tmp_path)
    for one in made:
        spool.append(one)
    restarted = UsageSpool(tmp_path)
    sent: list[bytes] = []
    assert send_pending(restarted, lambda body: sent.append(body) or 202) == 3
    assert [UsageBatch.model_validate_json(body).batch_id for body in sent] == [b.batch_id for b in made]
    assert restarted.pending() == []


def test_a_failure_keeps_the_rest_and_a_refused_batch_is_set_aside(tmp_path):
    spool = UsageSpool(tmp_path)
    for n in (1, 2, 3):
        spool.append(batch(n))
    answers = iter([202, 503])
    with pytest.raises(UsageRefused, match="HTTP 503"):
        send_pending(spool, lambda body: next(answers))
    assert len(spool.pending()) == 2  # the first went; the one that failed and the next wait
    answers = iter([400, 202])
    assert send_pending(spool, lambda body: next(answers)) == 1
    assert spool.pending() == [] and len(list(spool.rejected.iterdir())) == 1


def test_a_batch_refused_as_too_big_is_set_aside_instead_of_holding_back_the_rest(tmp_path):
    spool = UsageSpool(tmp_path)
    for n in (1, 2):
        spool.append(batch(n))
    answers = iter([413, 202])
    assert send_pending(spool, lambda body: next(answers)) == 1
    assert spool.pending() == [] and len(list(spool.rejected.iterdir())) == 1


def test_the_bounds_drop_the_oldest_batches_loudly(tmp_path, caplog):
    size = len(batch().model_dump_json())
    spool = UsageSpool(tmp_path, SpoolLimits(max_bytes=size * 2 + 10, max_age_s=3600))
    kept = []
    with caplog.at_level(logging.ERROR, logger="gateway_agent.usage"):
        for _ in range(4):
            kept.append(spool.append(batch()))
    assert spool.pending() == kept[2:] and spool.dropped_batches == 2
    assert "dropped the 1 oldest batches, 2 in all" in caplog.text
    # Spooled two hours ago: the age is the time the batch's name carries.
    aged = kept[2].with_name(f"{time.time_ns() - 7200 * 10**9:020d}-{kept[2].name.partition('-')[2]}")
    kept[2].rename(aged)
    spool.enforce_limits()
    assert spool.pending() == kept[3:] and spool.dropped_batches == 3


def _row(classes=(0, 0, 0, 0, 0), forwarded=0, answered=0, bytes_in=0, bytes_out=0, latency=(), codes=()):
    from gateway_agent.protocol import STATUS_CODES
    from gateway_agent.usage import LATENCY_BUCKETS

    return [
        *classes,
        forwarded,
        answered,
        bytes_in,
        bytes_out,
        *latency,
        *[0] * (LATENCY_BUCKETS - len(latency)),
        *codes,
        *[0] * (len(STATUS_CODES) - len(codes)),
    ]


def test_the_meter_turns_counter_growth_into_batches_once(tmp_path):
    from gateway_agent.usage import UsageMeter, parse_usage_table

    table = (
        "# table: usage/counts, type: string, size:1048576, used:2\n"
        "0x1: key=g1|12|app use=1 exp=1 gpc0=0 gpc1=4 gpc2=0 gpc3=0 gpc4=0 gpc5=5 gpc6=4 "
        "gpc7=0 gpc8=0 gpc9=3 gpc10=1 bytes_in_cnt=100 bytes_out_cnt=900\n"
        "0x2: key=g1|0| use=0 exp=1 bytes_in_cnt=0 bytes_out_cnt=0 gpc0=0 gpc1=0 gpc2=0 gpc3=2 gpc4=0 gpc5=0 gpc6=0\n"
    )
    counters = parse_usage_table(table)
    assert counters["g1|12|app"] == [*_row((0, 4, 0, 0, 0), 5, 4, 100, 900, latency=(0, 0, 3, 1)), 1]
    spool = UsageSpool(tmp_path / "spool")
    meter = UsageMeter(tmp_path / "state.json", spool)
    [first] = meter.record(counters, instance_id="gw", now=1_795_600_030)
    items = {(i.route_id, i.consumer, i.status_class): i.requests for i in first.items}
    # The fifth request upstream has no answer yet (HAProxy's `use=1`: in flight): not counted
    # until it has one.
    assert items == {(12, "app", "2xx"): 4, (0, "", "4xx"): 2}
    assert all(i.minute == 1_795_600_020 for i in first.items)
    assert first.items[1].latency_ms_buckets[:4] == [0, 0, 3, 1]
    # Its answer arrives with three more: four more 2xx, once each.
    grown = {**counters, "g1|12|app": _row((0, 8, 0, 0, 0), 8, 8, 150, 1300, latency=(0, 0, 7, 1))}
    [second] = meter.record(grown, instance_id="gw", now=1_795_600_040)
    assert [(i.status_class, i.requests, i.bytes_in) for i in second.items] == [("2xx", 4, 50)]
    assert second.items[0].latency_ms_buckets[:4] == [0, 0, 4, 0]
    assert meter.record(grown, instance_id="gw", now=1_795_600_050) == []
    # A new worker (reload) counts under its own generation, from zero: all of its counts are new.
    [third] = meter.record(
        {**grown, "g2|12|app": _row((0, 1, 0, 0, 0), 1, 1)}, instance_id="gw", now=1_795_600_060
    )
    assert sum(i.requests for i in third.items) == 1
    assert len(spool.pending()) == 3
    assert len({first.batch_id, second.batch_id, third.batch_id}) == 3


def test_a_request_haproxy_shows_gone_unanswered_counts_as_5xx_once(tmp_path):
    """Went upstream, no answer, and no live request holds the entry any more (`use`): given up
    on (an HTTP/2 stream reset) and never to be answered. Counted once, as 5xx, at once."""
    from gateway_agent.usage import UsageMeter

    meter = UsageMeter(tmp_path / "state.json", UsageSpool(tmp_path / "spool"))
    failed = {"g|3|": [*_row(forwarded=2, answered=1, classes=(0, 1, 0, 0, 0)), 0]}
    counted = []
    for now in range(1000, 1100, 10):
        counted += [(i.status_class, i.requests) for b in meter.record(failed, "gw", now) for i in b.items]
    assert counted == [("2xx", 1), ("5xx", 1)]


def test_a_batch_written_before_a_crash_is_spooled_at_restart(tmp_path):
    import json

    from gateway_agent.usage import UsageMeter

    pending = batch(7)
    counters = {"g|1|": _row((0, 7, 0, 0, 0), 7, 7)}
    state = {
        "counters": counters,
        "sequence": 3,
        "read_at": 0,
        "pending": pending.model_dump_json(),
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    spool = UsageSpool(tmp_path / "spool")
    meter = UsageMeter(tmp_path / "state.json", spool)
    [path] = spool.pending()
    assert UsageBatch.model_validate_json(path.read_bytes()).batch_id == pending.batch_id
    assert meter.state["pending"] == [] and meter.state["counters"] == counters
    # The counts it carried are not counted again.
    assert meter.record(counters, instance_id="gw", now=100) == []


def test_damaged_state_sets_a_baseline_instead_of_billing_everything_again(tmp_path, caplog):
    from gateway_agent.usage import UsageMeter

    (tmp_path / "state.json").write_text("{not json")
    with caplog.at_level(logging.ERROR, logger="gateway_agent.usage"):
        meter = UsageMeter(tmp_path / "state.json", UsageSpool(tmp_path / "spool"))
    assert "not billed" in caplog.text
    counters = {"g|1|": _row((0, 9, 0, 0, 0), 9, 9)}
    assert meter.record(counters, instance_id="gw", now=100) == []
    grown = {"g|1|": _row((0, 10, 0, 0, 0), 10, 10)}
    [made] = meter.record(grown, instance_id="gw", now=110)
    assert [(i.status_class, i.requests) for i in made.items] == [("2xx", 1)]


def test_a_gone_worker_is_settled_once_and_never_counted_again(tmp_path):
    """A reload: the old worker's last read, then it exits (its keys are missing from the next
    read); what it left unanswered can no longer be answered and counts as 5xx. Its counts, met
    again (a table copied into a new worker), are not counted twice."""
    from gateway_agent.usage import UsageMeter

    meter = UsageMeter(tmp_path / "state.json", UsageSpool(tmp_path / "spool"))
    old = {"g1|5|app": _row((0, 10, 0, 0, 0), forwarded=11, answered=10)}
    assert sum(i.requests for b in meter.record(old, instance_id="gw", now=100) for i in b.items) == 10
    new = {"g2|5|app": _row((0, 3, 0, 0, 0), forwarded=3, answered=3)}
    [made] = meter.record(new, instance_id="gw", now=101)
    assert sorted((i.status_class, i.requests) for i in made.items) == [("2xx", 3), ("5xx", 1)]
    copied = {**new, "g1|5|app": _row((0, 10, 0, 0, 0), forwarded=11, answered=10)}
    assert meter.record(copied, instance_id="gw", now=102) == []
