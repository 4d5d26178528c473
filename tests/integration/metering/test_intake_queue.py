"""The usage intake queue (issue 23): the intake refuses what the rollups cannot hold and answers
202 only once the batch is committed in PostgreSQL; consumers record every batch once, whoever
dies midway, however many run; one organization's bad batch stops neither its other batches nor
anyone else's billing, and waits in the dead letters with its reason."""

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from core import clock
from saas.metering.intake_queue import UsageConsumer
from saas.metering.models import UsageBatch, UsageDeadLetter, UsageIntake, UsageRollup
from tests.control_plane import ROOT, connect_to_test_database, env_sharing_test_database, wait_for

from .usage import NOW, batch, billed, post, queued, this_minute, token

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.time_machine(NOW, tick=True),
]


def _queue_directly(schema_name: str, cluster_id: int, text: str) -> None:
    """A row as an intake without today's checks queued it (an older release, a hand-made row)."""
    UsageIntake.objects.create(schema_name=schema_name, cluster_id=cluster_id, batch=text)


# --- the intake's bounds -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        # Unix time 10^12 is in the year 33658: the minute the audit sent.
        (lambda b: b["items"][0].update(minute=10**12 - 10**12 % 60), "items.0.minute"),
        (lambda b: b["items"][0].update(minute=this_minute() + 600), "items.0.minute"),
        (lambda b: b["items"][0].update(minute=this_minute() - 36 * 86400), "items.0.minute"),
        (lambda b: b["items"][0].update(minute=this_minute() + 30), "items.0.minute"),
        (lambda b: b["items"][0].update(requests=10**13), "items.0.requests"),
        (lambda b: b["items"][0].update(bytes_out=2**62 + 1), "items.0.bytes_out"),
        (lambda b: b["items"][0].update(route_id=2**63), "items.0.route_id"),
        (lambda b: b["items"][0].update(consumer="app\x00"), "items.0.consumer"),
        (lambda b: b["items"][0].update(latency_ms_buckets=[0, 10**13]), "items.0.latency_ms_buckets.1"),
        (lambda b: b.update(window_start=b["window_end"] + 1), "window_end"),
        (lambda b: b.update(window_end=b["window_end"] + 3600), "window_end"),
    ],
    ids=[
        "year-33658",
        "future",
        "too-old",
        "not-a-minute",
        "requests-1e13",
        "bytes-over-2^62",
        "route-over-bigint",
        "consumer-nul",
        "latency-over-1e12",
        "window-reversed",
        "window-in-future",
    ],
)
def test_the_intake_refuses_what_cannot_be_stored_naming_the_field(cw, change, field):
    body = batch((this_minute(), 1, "app", "2xx", 5))
    change(body)
    answer = post(token(cw), body)
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["errors"], answer.json()
    assert answer.json()["detail"].startswith(field)
    assert queued() == 0


def test_the_bounds_hold_for_a_batch_as_a_whole_and_leave_unknown_routes_alone(cw):
    secret = token(cw)
    minute = this_minute()
    body = batch((minute, 1, "app", "2xx", 1), (minute, 2, "app", "2xx", 1))
    for item in body["items"]:
        item["bytes_in"] = 2**61 + 1  # each within bounds, their sum not
    answer = post(secret, body)
    assert answer.status_code == 400 and "items.bytes_in" in answer.json()["errors"], answer.json()
    # A route the catalog does not have (deleted since the call) is usage all the same.
    assert post(secret, batch((minute, 987654, "", "2xx", 3))).status_code == 202
    # The oldest minute still taken and one a little ahead of the clock (a gateway's skew).
    oldest = int((clock.now() - timedelta(days=35)).timestamp()) // 60 * 60 + 60
    assert (
        post(secret, batch((oldest, 1, "app", "2xx", 1), (minute + 240, 1, "app", "2xx", 1))).status_code
        == 202
    )
    assert queued() == 2
    # Text PostgreSQL could not store is refused too (a lone surrogate: by the JSON parser).
    assert post(secret, {**batch((minute, 1, "app", "2xx", 1)), "instance_id": "gw\ud800"}).status_code == 400
    assert queued() == 2


def test_a_202_means_the_batch_is_committed(cw):
    """The intake answers only once its row is committed: while another transaction holds the
    queue table locked the POST waits, and what it answered 202 to is there for any connection."""
    secret = token(cw)
    body = batch((this_minute(), 1, "app", "2xx", 7))
    answers: list[int] = []
    with connect_to_test_database() as locker:
        locker.execute("LOCK TABLE metering_usageintake IN EXCLUSIVE MODE")
        poster = threading.Thread(target=lambda: answers.append(post(secret, body).status_code))
        poster.start()
        poster.join(timeout=1.0)
        assert poster.is_alive() and answers == []  # not answered before its insert can commit
        locker.rollback()
    poster.join(timeout=10)
    assert answers == [202]
    with connect_to_test_database() as reader:
        rows = reader.execute("SELECT schema_name, cluster_id, batch FROM metering_usageintake").fetchall()
    assert [(schema, cluster) for schema, cluster, _ in rows] == [(cw.world.a.org.schema_name, cw.cluster_id)]
    assert body["batch_id"] in rows[0][2]


def test_batches_posted_together_are_each_committed_and_answered(cw):
    """Batches arriving at once share inserts; each is answered 202 for its own row, committed."""
    import asyncio
    import json

    import httpx
    from asgiref.sync import sync_to_async

    from saas.asgi import application

    secret = token(cw)
    bodies = [batch((this_minute(), 1 + i % 4, "app", "2xx", 1 + i)) for i in range(60)]

    async def post_all() -> list[int]:
        transport = httpx.ASGITransport(app=application)
        headers = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            answers = await asyncio.gather(
                *(client.post("/agent/v1/usage", content=json.dumps(b), headers=headers) for b in bodies)
            )
        await sync_to_async(connections.close_all)()
        return [answer.status_code for answer in answers]

    assert asyncio.run(post_all()) == [202] * 60
    with connect_to_test_database() as reader:
        stored = [row[0] for row in reader.execute("SELECT batch FROM metering_usageintake ORDER BY id")]
    assert sorted(json.loads(text)["batch_id"] for text in stored) == sorted(b["batch_id"] for b in bodies)
    assert UsageConsumer("c").drain() == 60
    assert billed(cw, NOW.strftime("%Y-%m")) == sum(range(1, 61))


def test_redis_flushed_after_the_202_loses_no_usage(cw):
    """Redis (shared with the cache and Celery) is no part of the usage path."""
    from django_redis import get_redis_connection

    assert post(token(cw), batch((this_minute(), 1, "app", "2xx", 9))).status_code == 202
    get_redis_connection("default").flushdb()
    assert UsageConsumer("c").drain() == 1
    assert billed(cw, NOW.strftime("%Y-%m")) == 9


def test_the_queue_lives_in_the_public_schema_only(cw):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name IN ('metering_usageintake', 'metering_usagedeadletter') ORDER BY 1"
        )
        assert [row[0] for row in cursor.fetchall()] == ["public", "public"]


# --- one bad batch blocks nothing ---------------------------------------------------------------


def test_a_bad_batch_of_one_organization_stops_no_billing_and_waits_in_the_dead_letters(cw):
    """Between organization A's good batches: organization B's batch whose bytes overflow its
    rollup, an entry from the year 33658, one of an organization gone, one that is not JSON. A is
    billed exactly; B's other batches are too; each bad entry is a dead letter with its reason."""
    a, b = token(cw), token(cw, side="b")
    b_schema = cw.world.b.org.schema_name
    minute = this_minute()
    # Batch ids in this order: batches are recorded sorted by id, so `huge` is the one recorded.
    huge = batch((minute, 5, "big", "2xx", 1), batch_id="0" * 32)
    huge["items"][0]["bytes_in"] = 2**62  # within bounds, twice no longer fits the rollup's bigint
    overflow = batch((minute, 5, "big", "2xx", 2), batch_id="f" * 32)
    overflow["items"][0]["bytes_in"] = 2**62
    assert post(a, batch((minute, 1, "app", "2xx", 40))).status_code == 202
    assert post(b, huge).status_code == 202
    assert post(b, overflow).status_code == 202
    _queue_directly(b_schema, cw.other_cluster_id, _text(batch((10**12 - 10**12 % 60, 1, "x", "2xx", 9))))
    _queue_directly("org_vanished", 1, _text(batch((minute, 1, "app", "2xx", 4))))
    _queue_directly(b_schema, cw.other_cluster_id, "not json")
    assert post(b, batch((minute, 6, "", "4xx", 3))).status_code == 202
    assert post(a, batch((minute, 2, "", "4xx", 2))).status_code == 202

    assert UsageConsumer("c1").drain() == 8
    period = NOW.strftime("%Y-%m")
    assert billed(cw, period) == 42
    assert billed(cw, period, side="b") == 1 + 3
    assert queued() == 0
    reasons = {
        (letter.schema_name, letter.reason.split(":")[0]): letter.reason
        for letter in UsageDeadLetter.objects.order_by("id")
    }
    assert set(reasons) == {
        (b_schema, "NumericValueOutOfRange"),
        (b_schema, "Cannot be stored"),
        ("org_vanished", "Organization org_vanished no longer exists."),
        (b_schema, "Not a usage batch"),
    }, reasons
    assert "out of range" in reasons[(b_schema, "NumericValueOutOfRange")]
    assert "items.0.minute" in reasons[(b_schema, "Cannot be stored")]

    # The operator fixes B's rollup; the replayed batch counts once, however often replayed.
    with schema_context(b_schema):
        UsageRollup.objects.filter(route_id=5).update(bytes_in=0)
    [stuck] = UsageDeadLetter.objects.filter(reason__startswith="NumericValueOutOfRange")
    assert post(b, overflow).status_code == 202  # the agent's own retry got there first
    from saas.metering.dead_letters import replay_dead_letters

    assert replay_dead_letters([stuck.id]) == 1
    assert UsageConsumer("c1").drain() == 2
    assert billed(cw, period, side="b") == 1 + 3 + 2
    assert not UsageDeadLetter.objects.filter(id=stuck.id).exists()
    with schema_context(b_schema):
        assert UsageRollup.objects.get(route_id=5).bytes_in == 2**62
        assert UsageBatch.objects.filter(batch_id=overflow["batch_id"]).count() == 1


def _text(body: dict) -> str:
    import json

    return json.dumps(body)


# --- consumers that die, consumers side by side --------------------------------------------------


def test_a_consumer_killed_holding_batches_loses_and_doubles_nothing(cw):
    """A consumer process takes a batch and is SIGKILLed while it writes; its transaction rolls
    back, and the next consumer records the batch, once."""
    secret = token(cw)
    schema = cw.world.a.org.schema_name
    minute = this_minute()
    assert post(secret, batch((minute, 1, "app", "2xx", 5))).status_code == 202
    UsageConsumer("first").drain()
    later = batch((minute, 1, "app", "2xx", 7))
    assert post(secret, later).status_code == 202
    connections.close_all()

    with connect_to_test_database() as locker:
        # Hold the rollup row the consumer must update, so that it stops there, mid-transaction.
        locker.execute(f'SELECT 1 FROM "{schema}".metering_usagerollup WHERE route_id = 1 FOR UPDATE')
        doomed = subprocess.Popen(
            [sys.executable, "manage.py", "consume_usage", "--name", "doomed"],
            cwd=ROOT,
            env={**env_sharing_test_database(), "DJANGO_SETTINGS_MODULE": "saas.settings"},
            stdout=subprocess.DEVNULL,
        )
        try:
            # Watched from a connection of its own: pg_stat_activity holds still within a transaction.
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> %s"
            with connect_to_test_database() as watcher:
                watcher.autocommit = True
                wait_for(
                    lambda: watcher.execute(waiting, [locker.info.backend_pid]).fetchone()[0] > 0,
                    timeout=30,
                    what="the consumer to block on the held rollup row",
                )
            # It holds the batch: another consumer skips it instead of waiting.
            assert UsageConsumer("other").run_once() == 0
            assert billed(cw, NOW.strftime("%Y-%m")) == 5
        finally:
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=10)
        locker.rollback()  # the row free: the dead consumer's session finds its client gone

    survivor = UsageConsumer("survivor")
    wait_for(lambda: survivor.drain() or queued() == 0, timeout=30, what="the batch back in the queue")
    assert billed(cw, NOW.strftime("%Y-%m")) == 12
    with schema_context(schema):
        assert UsageBatch.objects.filter(batch_id=later["batch_id"]).count() == 1
    assert UsageDeadLetter.objects.count() == 0


def test_consumers_side_by_side_count_every_batch_once(cw):
    """Four consumers drain 400 batches of two organizations (a tenth of them delivered twice),
    all into the same few rollup rows: no batch is lost, none counted twice, none deadlocks."""
    tokens = {"a": token(cw), "b": token(cw, side="b")}
    minute = this_minute()
    expected = {"a": 0, "b": 0}
    sent = 0
    for i in range(400):
        side = "ab"[i % 2]
        body = batch((minute, 1 + i % 3, f"c{i % 2}", "2xx", 1 + i % 5), (minute - 60, 9, "", "5xx", 1))
        for _ in range(2 if i % 10 == 0 else 1):
            assert post(tokens[side], body).status_code == 202
            sent += 1
        expected[side] += 1 + i % 5 + 1
    connections.close_all()

    taken: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def consume(name: str) -> None:
        try:
            consumer = UsageConsumer(name, count=7)
            start.wait()
            taken.append(consumer.drain())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=consume, args=(f"c{n}",)) for n in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sum(taken) == sent and all(taken), (taken, time.monotonic() - started)
    period = NOW.strftime("%Y-%m")
    assert billed(cw, period) == expected["a"]
    assert billed(cw, period, side="b") == expected["b"]
    assert queued() == 0 and UsageDeadLetter.objects.count() == 0


def test_a_batch_sent_again_beside_new_ones_counts_once(cw, caplog):
    """A consumer takes, at once, a batch recorded before (an agent's retry) beside new batches of
    the same and of another organization: each new one counts, the old one does not, and nothing
    fails on the way (the consumer writes them organization by organization, in order)."""
    tokens = {"a": token(cw), "b": token(cw, side="b")}
    minute = this_minute()
    again = batch((minute, 1, "app", "2xx", 5))
    assert post(tokens["a"], again).status_code == 202
    assert UsageConsumer("first").drain() == 1
    assert post(tokens["a"], again).status_code == 202
    assert (
        post(tokens["a"], batch((minute, 1, "app", "2xx", 7), (minute - 60, 2, "", "5xx", 1))).status_code
        == 202
    )
    assert post(tokens["b"], batch((minute, 1, "app", "2xx", 11))).status_code == 202
    with caplog.at_level("INFO", logger="saas.metering.intake_queue"):
        assert UsageConsumer("second").run_once() == 3
    assert not [
        r for r in caplog.records if r.name == "saas.metering.intake_queue" and r.levelname != "INFO"
    ], caplog.text
    period = NOW.strftime("%Y-%m")
    assert (billed(cw, period), billed(cw, period, side="b")) == (5 + 7 + 1, 11)
    with schema_context(cw.world.a.org.schema_name):
        assert UsageBatch.objects.count() == 2
        assert sorted(UsageRollup.objects.values_list("route_id", "requests")) == [(1, 12), (2, 1)]


@contextlib.contextmanager
def _running(consumer: UsageConsumer) -> Iterator[None]:
    """`consumer.run` on a thread of its own (what `manage.py consume_usage` does), stopped when
    the block ends."""
    stop = threading.Event()

    def run() -> None:
        try:
            consumer.run(stop)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_running_consumer_polls_the_queue_and_stops_when_told(cw):
    """`run` sleeps a moment while the queue is empty and records a batch queued meanwhile; an
    empty queue answers at once, waiting for nothing."""
    secret = token(cw)
    started = time.monotonic()
    assert UsageConsumer("idle").run_once() == 0
    assert time.monotonic() - started < 1
    with _running(UsageConsumer("loop", idle_sleep_s=0.05)):
        time.sleep(0.2)
        assert post(secret, batch((this_minute(), 1, "app", "2xx", 3))).status_code == 202
        wait_for(lambda: billed(cw, NOW.strftime("%Y-%m")) == 3, timeout=10, what="the running consumer")


def test_a_running_consumer_takes_a_backlog_at_once_and_then_lets_batches_gather(cw):
    """While the queue holds more than a take, `run` takes again at once; after a take of less, it
    waits `gather_s`, so a fleet's batches of those seconds are counted together."""
    secret = token(cw)
    for requests in range(1, 6):
        assert post(secret, batch((this_minute(), 1, "app", "2xx", requests))).status_code == 202
    period = NOW.strftime("%Y-%m")
    with _running(UsageConsumer("gathering", count=2, idle_sleep_s=0.05, gather_s=30)):
        # Takes of 2, 2 and 1, one after the other: not 30 s after each.
        wait_for(lambda: billed(cw, period) == 1 + 2 + 3 + 4 + 5, timeout=10, what="the backlog")
        assert post(secret, batch((this_minute(), 1, "app", "2xx", 100))).status_code == 202
        time.sleep(1)
        assert (billed(cw, period), queued()) == (15, 1)  # gathering for 30 s after a take of 1
