"""The agent's usage spool: nothing leaves it before the control plane took it, it survives a
restart, and its bounds drop the oldest batches loudly."""

import logging
import os
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


def test_the_bounds_drop_the_oldest_batches_loudly(tmp_path, caplog):
    size = len(batch().model_dump_json())
    spool = UsageSpool(tmp_path, SpoolLimits(max_bytes=size * 2 + 10, max_age_s=3600))
    kept = []
    with caplog.at_level(logging.ERROR, logger="gateway_agent.usage"):
        for _ in range(4):
            kept.append(spool.append(batch()))
    assert spool.pending() == kept[2:] and spool.dropped_batches == 2
    assert "dropped the 1 oldest batches, 2 in all" in caplog.text
    old = time.time() - 7200
    os.utime(kept[2], (old, old))
    spool.enforce_limits()
    assert spool.pending() == kept[3:] and spool.dropped_batches == 3
