"""Issue 27, past one machine: the control plane's processes share nothing but PostgreSQL and
Redis. Two web processes (uvicorn, each its own process and port, as two pods behind a load
balancer), two usage consumers, two Celery workers and one beat run against the test database
and Redis, and:

1. a config long-poll waiting on either web process answers the new version within a second of
   a publish made through the other one's REST API (and through its own);
2. usage batches posted alternately to both web processes, a fifth of them a second time to the
   other one (an agent retrying through the load balancer), are billed exactly once with two
   consumers taking them side by side;
3. a consumer SIGKILLed mid-batch (it has taken batches and is writing their rollups, held there
   by a lock on the rollup table, while batches keep arriving) loses and doubles nothing: once
   the first, once the second; the totals equal what the web processes accepted;
4. tasks sent to Celery are each run once, by one of the two workers, and beat's periodic task
   runs once per tick, not once per worker.

About a minute: some 10 to 20 s starting the seven processes on two cores, and the rest mostly
waiting for beat's first check-quotas, 30 s after it starts."""

from __future__ import annotations

import collections
import json
import logging
import random
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from django.db import connections
from django.db.models import Sum
from django_tenants.utils import schema_context

from saas.launcher.services import free_port
from tests.control_plane import (
    connect_to_test_database,
    env_sharing_test_database,
    start_celery_beat,
    start_celery_worker,
    start_control_plane,
    start_usage_consumer,
    stop_processes,
    wait_for,
    wait_until_up,
)
from tests.factories import make_org_with_cluster

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

POLL_WAIT_S = 30  # a poll answered much sooner than this was woken, not timed out
WAKE_WITHIN_S = 1.0
CHECK_QUOTAS_EVERY_S = 30  # beat's schedule (saas/settings/jobs.py)
WORKERS = ("scale-a", "scale-b")
CONSUMERS = ("scale-out-usage-1", "scale-out-usage-2")  # also their application_name in PostgreSQL

Key = tuple[int, str, str]  # route id, consumer, status class


# --- the processes -------------------------------------------------------------------------------


class ControlPlane:
    """Two of each (one beat), started as separate processes sharing the test database and Redis;
    each one's output in its own log under `logs`."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.env = env_sharing_test_database()
        self.ports = [free_port(), free_port()]
        self.webs = [start_control_plane(port, self.env) for port in self.ports]
        self.consumers = [self._consumer(name) for name in CONSUMERS]
        self.workers = [
            start_celery_worker(f"{name}@%h", self.env, log=logs / f"{name}.log") for name in WORKERS
        ]
        self.beat_log = logs / "beat.log"
        self.beat = start_celery_beat(logs / "celerybeat-schedule", self.env, log=self.beat_log)

    def _consumer(self, name: str) -> subprocess.Popen[bytes]:
        return start_usage_consumer(name, env_sharing_test_database(name), log=self.logs / f"{name}.log")

    def kill_consumer(self, index: int) -> None:
        self.consumers[index].send_signal(signal.SIGKILL)
        self.consumers[index].wait(timeout=10)

    def restart_consumer(self, index: int) -> None:
        """Started again, and waited for until it says it is taking batches: the next round
        counts on both consumers."""
        name = CONSUMERS[index]
        log = self.logs / f"{name}.log"
        started = f"usage consumer {name} started"
        before = log.read_text(errors="replace").count(started)
        self.consumers[index] = self._consumer(name)
        wait_for(
            lambda: log.read_text(errors="replace").count(started) > before, 60, what=f"{name} restarted"
        )

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def stop(self) -> None:
        stop_processes([*self.webs, *self.consumers, *self.workers, self.beat])
        for log in sorted(self.logs.glob("*.log")):
            print(f"--- {log.name} (end) ---\n{log.read_text(errors='replace')[-3000:]}")


# --- 1. long-polls -------------------------------------------------------------------------------


def _poll(url: str, token: str, version: int) -> tuple[int, int | None, float]:
    """One long-poll from `version`: the status, the version answered and when."""
    response = httpx.get(
        f"{url}/agent/v1/config",
        params={"version": version, "wait": POLL_WAIT_S},
        headers={"Authorization": f"Bearer {token}"},
        timeout=POLL_WAIT_S + 15,
    )
    answered = time.monotonic()
    return response.status_code, response.json()["version"] if response.status_code == 200 else None, answered


def _latest_version(org: Any, cluster: Any) -> int:
    from saas.gateways.models import ConfigSnapshot

    with schema_context(org.schema_name):
        return int(
            ConfigSnapshot.objects.filter(cluster=cluster)
            .order_by("-version")
            .values_list("version", flat=True)[0]
        )


def _polls_wake_on_a_publish_through(
    plane: ControlPlane, publisher: int, api_token: str, token: str, org: Any, cluster: Any
) -> list[float]:
    """Polls waiting on both web processes, then an upstream created through `publisher`'s REST
    API: each poll answers the new version, within WAKE_WITHIN_S of the API's answer."""
    known = _latest_version(org, cluster)
    with ThreadPoolExecutor(2) as pool:
        polls: list[Future[tuple[int, int | None, float]]] = [
            pool.submit(_poll, plane.url(index), token, known) for index in (0, 1)
        ]
        time.sleep(1.5)  # both are waiting now (they listen before they look)
        assert not any(poll.done() for poll in polls), [poll.result() for poll in polls if poll.done()]
        response = httpx.post(
            f"{plane.url(publisher)}/api/v1/orgs/{org.slug}/clusters/{cluster.id}/upstreams/",
            json={
                "name": f"through-{publisher}-{uuid.uuid4().hex[:6]}",
                "targets": [{"host": "127.0.0.1", "port": 9}],
            },
            headers={"Authorization": f"Bearer {api_token}"},
            timeout=30,
        )
        published = time.monotonic()
        assert response.status_code == 201, response.text
        answers = [poll.result(timeout=POLL_WAIT_S + 20) for poll in polls]
    new = _latest_version(org, cluster)
    assert new == known + 1
    assert [(status, version) for status, version, _ in answers] == [(200, new), (200, new)]
    delays = [max(0.0, answered - published) for _, _, answered in answers]
    assert max(delays) <= WAKE_WITHIN_S, delays
    return delays


# --- 2 and 3. usage ------------------------------------------------------------------------------


class UsageFlow:
    """Usage batches as agents send them, each to one web process in turn (a load balancer); every
    fifth sent again to the other one (an agent that did not hear the 202 and retried). `expected`:
    what the accepted batches hold, each batch once."""

    def __init__(self, plane: ControlPlane, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.clients = [httpx.Client(base_url=plane.url(i), headers=headers, timeout=30) for i in (0, 1)]
        self.expected: collections.Counter[Key] = collections.Counter()
        self.batch_ids: set[str] = set()
        self.posts = [0, 0]
        self.sent = 0
        self.random = random.Random(27)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def _batch(self) -> tuple[dict[str, Any], collections.Counter[Key]]:
        now = int(time.time())
        minute = now - now % 60
        items = []
        counted: collections.Counter[Key] = collections.Counter()
        for _ in range(20):
            key = (
                self.random.randint(1, 4),
                self.random.choice(["", "app-1", "app-2"]),
                self.random.choice(["2xx", "2xx", "4xx", "5xx"]),
            )
            requests = self.random.randint(1, 100)
            items.append(
                {
                    "minute": minute,
                    "route_id": key[0],
                    "consumer": key[1],
                    "status_class": key[2],
                    "requests": requests,
                }
            )
            counted[key] += requests
        body = {
            "batch_id": uuid.uuid4().hex,
            "instance_id": "gw-1",
            "window_start": now - 10,
            "window_end": now,
        }
        return {**body, "items": items}, counted

    def send_one(self) -> None:
        body, counted = self._batch()
        content = json.dumps(body)
        first = self.sent % 2
        targets = [first, 1 - first] if self.sent % 5 == 0 else [first]
        for index in targets:
            response = self.clients[index].post("/agent/v1/usage", content=content)
            assert response.status_code == 202, (index, response.status_code, response.text)
            self.posts[index] += 1
        self.expected += counted
        self.batch_ids.add(body["batch_id"])
        self.sent += 1

    def start(self) -> None:
        def run() -> None:
            try:
                while not self._stop.is_set():
                    self.send_one()
                    time.sleep(0.01)
            except BaseException as exc:
                self._failure = exc

        self._stop.clear()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)
        if self._failure is not None:
            raise self._failure


def _billed(org: Any) -> dict[Key, int]:
    from saas.metering.models import UsageRollup

    with schema_context(org.schema_name):
        rows = UsageRollup.objects.values("route_id", "consumer", "status_class").annotate(
            calls=Sum("requests")
        )
        return {(r["route_id"], r["consumer"], r["status_class"]): int(r["calls"]) for r in rows}


def _billed_exactly(org: Any, flow: UsageFlow) -> None:
    """Once the consumers have caught up: every accepted batch recorded once, the rollups exactly
    what they held, nothing left queued or set aside."""
    from saas.metering.models import UsageBatch, UsageDeadLetter, UsageIntake

    total = sum(flow.expected.values())
    billed = [0]

    def caught_up() -> bool:
        billed[0] = sum(_billed(org).values())
        return billed[0] >= total

    try:
        wait_for(caught_up, 60, interval=0.5, what=f"{total} calls billed")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {billed[0]} billed") from None
    wait_for(lambda: not UsageIntake.objects.exists(), 30, what="the intake queue to empty")
    assert _billed(org) == dict(flow.expected)
    with schema_context(org.schema_name):
        recorded = list(UsageBatch.objects.values_list("batch_id", flat=True))
    assert len(recorded) == len(set(recorded)) and set(recorded) == flow.batch_ids
    # The table is shared: what other tests set aside is theirs to look at.
    set_aside = list(
        UsageDeadLetter.objects.filter(schema_name=org.schema_name).values_list("reason", flat=True)
    )
    assert not set_aside, set_aside


_HOLDING = """
SELECT application_name FROM pg_stat_activity
WHERE application_name = ANY(%s) AND wait_event_type = 'Lock' AND query LIKE '%%metering_usagerollup%%'
"""


def _holding(watcher: psycopg.Connection) -> set[str]:
    """The consumers that have taken batches and wait to write their rollups."""
    return {row[0] for row in watcher.execute(_HOLDING, [list(CONSUMERS)]).fetchall()}


def _kill_a_consumer_mid_batch(plane: ControlPlane, victim: int, org: Any, flow: UsageFlow) -> set[str]:
    """With batches flowing: the rollup table locked, so that each consumer stops once it has
    taken batches (deleted from the queue in its open transaction) and writes them; `victim`
    SIGKILLed there; the lock released; the victim started again. Who was caught holding."""
    caught: set[str] = set()
    with connect_to_test_database() as locker, connect_to_test_database() as watcher:
        watcher.autocommit = True
        locker.execute(f'LOCK TABLE "{org.schema_name}".metering_usagerollup IN EXCLUSIVE MODE')
        try:
            # Both hold batches of their own at once: they share the queue without waiting on each other.
            def both_hold() -> bool:
                caught.update(_holding(watcher))
                return caught == set(CONSUMERS)

            wait_for(
                both_hold,
                60,  # 30 s ran out once in CI, with the long tests running beside this one
                interval=0.05,
                what="both consumers to hold batches",
            )
            assert CONSUMERS[victim] in _holding(watcher)
            sent_before = flow.sent
            plane.kill_consumer(victim)
        finally:
            locker.rollback()
    # Batches kept arriving meanwhile, through both web processes.
    wait_for(lambda: flow.sent > sent_before + 10, 30, what="more batches after the kill")
    plane.restart_consumer(victim)
    return caught


# --- 4. Celery -----------------------------------------------------------------------------------


def _runs(task: str) -> dict[str, int]:
    """How many times each worker has run `task`, from the workers themselves."""
    from core.celery import app

    stats = app.control.inspect(timeout=5, limit=len(WORKERS)).stats() or {}
    assert len(stats) == len(WORKERS), stats
    return {worker: int(stat.get("total", {}).get(task, 0)) for worker, stat in stats.items()}


def _beat_sent(plane: ControlPlane, entry: str) -> int:
    """How many times beat has sent its schedule's `entry`, from its log (written before it sends)."""
    return plane.beat_log.read_text(errors="replace").count(f"Sending due task {entry} ")


def _celery_runs_each_task_once(plane: ControlPlane) -> dict[str, dict[str, int]]:
    from core.celery import app

    app.conf.task_always_eager = False  # the tests' default: tasks inline
    try:

        def both_answer() -> list[dict[str, Any]] | None:
            pongs = app.control.ping(timeout=2) or []
            return pongs if len(pongs) == len(WORKERS) else None

        pongs = wait_for(both_answer, 60, what="both workers to answer a ping")
        assert {name.split("@")[0] for pong in pongs for name in pong} == set(WORKERS)  # type: ignore[attr-defined]
        # Tasks sent from here (as a web process sends them): each run once, by one worker.
        sent = [app.send_task("tenants.purge_stale_invitations") for _ in range(8)]
        assert [result.get(timeout=60) for result in sent] == [0] * 8
        purges = _runs("tenants.purge_stale_invitations")
        assert sum(purges.values()) == 8, purges

        # Beat's check-quotas, every 30 s from its start: each sending runs once, on one worker.
        # More runs than beat sent would be a second beat (or one in each worker), or a task run twice.
        def runs_match_sendings() -> bool:
            ran = sum(_runs("billing.check_quotas").values())  # before reading the log: ran <= sent
            sent = _beat_sent(plane, "check-quotas")
            assert ran <= sent, f"check-quotas ran {ran} times, beat sent it {sent}"
            return sent >= 1 and ran == sent

        wait_for(
            runs_match_sendings, CHECK_QUOTAS_EVERY_S + 60, interval=1, what="beat's check-quotas to run"
        )
        time.sleep(3)  # a second sending of the same tick would have been run by now
        wait_for(runs_match_sendings, 15, interval=1, what="check-quotas to run as often as beat sent it")
        return {
            "tenants.purge_stale_invitations": purges,
            "billing.check_quotas": _runs("billing.check_quotas"),
        }
    finally:
        app.conf.task_always_eager = True


# --- the test ------------------------------------------------------------------------------------


def test_two_of_each_process_share_only_postgresql_and_redis(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="httpx")  # a line per request otherwise
    from saas.catalog import services as catalog
    from saas.gateways.services import create_cluster_token
    from tenants import services as tenant_services
    from tenants.models import Membership
    from tenants.roles import Role

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author, cluster, {"name": "first", "targets": [{"host": "127.0.0.1", "port": 9}]}
        )
        _, token = create_cluster_token(author, cluster, name="gw")
    membership = Membership.objects.get(user=author.actor.user, organization=org)
    _, api_token = tenant_services.create_api_token(
        author.actor, org, membership, name="scale-out", role_ceiling=Role.ADMIN, expires_at=None
    )
    connections.close_all()

    started = time.monotonic()
    plane = ControlPlane(tmp_path)
    figures: dict[str, Any] = {}
    try:
        for port in plane.ports:
            wait_until_up(port, timeout=90)
        for index in (0, 1):  # each web process subscribes to Redis with its first poll
            assert _poll(plane.url(index), token, 0)[0] == 200
        figures["started_s"] = round(time.monotonic() - started, 1)

        # 1. Long-polls on both wake on a publish through B, then through A.
        figures["wake_s"] = [
            [
                round(delay, 3)
                for delay in _polls_wake_on_a_publish_through(
                    plane, publisher, api_token, token, org, cluster
                )
            ]
            for publisher in (1, 0)
        ]

        # 2. Usage through both web processes, two consumers: billed exactly once.
        flow = UsageFlow(plane, token)
        for _ in range(150):
            flow.send_one()
        _billed_exactly(org, flow)

        # 3. A consumer SIGKILLed mid-batch, the first then the second, batches still flowing.
        flow.start()
        try:
            caught = [_kill_a_consumer_mid_batch(plane, victim, org, flow) for victim in (0, 1)]
            time.sleep(1)
        finally:
            flow.stop()
        assert caught == [set(CONSUMERS), set(CONSUMERS)]
        _billed_exactly(org, flow)
        assert all(posts > 100 for posts in flow.posts), flow.posts
        figures.update(batches=flow.sent, posts=flow.posts, calls=sum(flow.expected.values()))

        # 4. Celery: each task once, on one of the two workers; one beat.
        figures["celery_runs"] = _celery_runs_each_task_once(plane)
        figures["total_s"] = round(time.monotonic() - started, 1)
        print(json.dumps(figures))
    finally:
        plane.stop()
