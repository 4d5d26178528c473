"""Issue 23's acceptance: billed equals answered, per route, consumer and status class, through
the faults test_metering_exactness.py avoids, all in one run against a real gateway:

- calls answered after 130 s and after 20 minutes, on a route whose upstream allows it;
- a reload while those calls are in flight, the agent SIGKILLed right after it (the old worker
  still draining them) and left down 5 minutes while HAProxy serves;
- a burst of more than 10,000 distinct route/consumer/status items within one reading interval;
- two usage consumers, one SIGKILLed mid-stream again and again;
- Redis losing its data mid-run (FLUSHALL, every client cut off);
- poison batches of another organization in the queue (a minute in the year 33658, an
  organization that no longer exists): dead letters with their reasons, nobody else's bill held.

It runs about 23 minutes, mostly waiting for the slow calls: `make test` runs it beside the rest
of the suite (marker `long`). FAULTS_LONG_CALL_S and FAULTS_AGENT_DOWN_S shorten it by hand."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connections, transaction
from django.db.models import Sum
from django.utils.timezone import now as timezone_now
from django_tenants.utils import schema_context

from saas.launcher.services import free_port
from tests.control_plane import (
    ROOT,
    env_sharing_test_database,
    serving_worker_pid,
    start_agent,
    start_control_plane,
    stop_haproxy,
    wait_for,
    wait_until_up,
)
from tests.e2e.test_metering_exactness import MIX, Traffic, _catalog, _serving, _upstream
from tests.factories import add_reloading_route, make_org_with_cluster

LONG_CALL_S = int(os.environ.get("FAULTS_LONG_CALL_S", "1200"))
SLOW_CALL_S = min(130, LONG_CALL_S)
AGENT_DOWN_S = int(os.environ.get("FAULTS_AGENT_DOWN_S", "300"))
BURST_CONSUMERS = 10_500
PHASE_CALLS = 5_000

pytestmark = [
    pytest.mark.slow,
    pytest.mark.long,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(LONG_CALL_S + AGENT_DOWN_S + 1200),
]

Key = tuple[int, str, str]  # route id, consumer, status class


class _Slow(BaseHTTPRequestHandler):
    """GET /slow/<seconds>: answers 200 after that long."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        time.sleep(float(self.path.rsplit("/", 1)[-1]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


class _SlowServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # HAProxy closing a kept connection to the upstream is no error here


class SlowCalls:
    """Calls that take `seconds` each, on threads of their own; `answered` by status."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.answered: collections.Counter[int] = collections.Counter()
        self.threads: list[threading.Thread] = []

    def start(self, seconds: int) -> None:
        def call() -> None:
            response = httpx.get(f"http://127.0.0.1:{self.port}/slow/{seconds}", timeout=seconds + 600)
            self.answered[response.status_code] += 1

        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), "a slow call was never answered"


def _burst(port: int, keys: list[str]) -> collections.Counter[tuple[str, int]]:
    """One call per key to /orders/b, on 16 keep-alive connections: what each key was answered."""
    answered: collections.Counter[tuple[str, int]] = collections.Counter()

    async def client(mine: list[str]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for key in mine:
            writer.write(f"GET /orders/b HTTP/1.1\r\nHost: gw\r\napikey: {key}\r\n\r\n".encode())
            head = (await reader.readuntil(b"\r\n\r\n")).decode().lower().split("\r\n")
            length = next((int(x.split(":")[1]) for x in head if x.startswith("content-length:")), 0)
            await reader.readexactly(length)
            answered[(key, int(head[0].split()[1]))] += 1
        writer.close()

    async def run() -> None:
        await asyncio.gather(*(client(keys[i::16]) for i in range(16)))

    asyncio.run(run())
    return answered


def _burst_consumers(org: Any, cluster: Any) -> dict[str, str]:
    """BURST_CONSUMERS consumers with a key each, written in bulk and published once: key ->
    username."""
    from saas.catalog.key_material import key_hmac_hex
    from saas.catalog.models import Consumer, Credential
    from saas.catalog.services import key_auth_secret
    from saas.gateways.publishing import publish

    keys = {f"burst-key-{i:06d}-padding": f"burst-{i:06d}" for i in range(BURST_CONSUMERS)}
    with schema_context(org.schema_name), transaction.atomic():
        secret = key_auth_secret(cluster)
        consumers = Consumer.objects.bulk_create(
            Consumer(cluster=cluster, username=username) for username in keys.values()
        )
        by_username = {consumer.username: consumer for consumer in consumers}
        Credential.objects.bulk_create(
            Credential(
                cluster=cluster,
                consumer=by_username[username],
                type=Credential.KEY_AUTH,
                key_sha256=key_hmac_hex(secret, key),
                key_scheme=Credential.KEY_HMAC_SHA256,
            )
            for key, username in keys.items()
        )
        publish(cluster, author="test", reason="burst consumers", sections=["consumers", "key_auth"])
    return keys


def _slow_route(org: Any, author: Any, cluster: Any, port: int) -> int:
    from saas.catalog import services as catalog

    with schema_context(org.schema_name):
        catalog.save_upstream(
            author,
            cluster,
            {
                "name": "slow-app",
                "targets": [{"host": "127.0.0.1", "port": port}],
                "timeouts": {"read_s": LONG_CALL_S + 300},
            },
        )
        catalog.save_service(author, cluster, {"name": "slow", "upstream": "slow-app"})
        return int(
            catalog.save_route(
                author, cluster, {"name": "slow", "service": "slow", "paths": [{"value": "/slow"}]}
            ).id
        )


def _consumer_process(name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", "consume_usage", "--name", name, "--count", "20"],
        cwd=ROOT,
        env=env_sharing_test_database(),
        stdout=subprocess.DEVNULL,
    )


class Consumers:
    """Two usage consumers; `kill_one` SIGKILLs the first mid-stream and starts it again."""

    def __init__(self) -> None:
        self.processes = [_consumer_process("faults-1"), _consumer_process("faults-2")]
        self.kills = 0

    def kill_one(self) -> None:
        self.processes[0].send_signal(signal.SIGKILL)
        self.processes[0].wait()
        self.kills += 1
        self.processes[0] = _consumer_process("faults-1")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(timeout=20)


def _killing_consumers_while(consumers: Consumers, work: threading.Thread, at_least: int = 3) -> None:
    """SIGKILL the first consumer every second while `work` runs, `at_least` times in all."""
    kills = 0
    while work.is_alive() or kills < at_least:
        time.sleep(1)
        consumers.kill_one()
        kills += 1


def _traffic_expected(traffic: Traffic, routes: dict[str, int]) -> collections.Counter[Key]:
    expected: collections.Counter[Key] = collections.Counter()
    for (index, status), count in traffic.answered.items():
        path, consumer, kind = MIX[index]
        route = 0 if kind == "unmatched" else routes[path.split("/")[1]]
        identified = kind == "proxied" and path.startswith("/orders")
        expected[(route, consumer if identified else "", f"{status // 100}xx")] += count
    return expected


def _poison(org_b: Any, cluster_b: Any) -> None:
    """What an intake before issue 23 let in, straight into the queue: a minute in the year 33658
    for organization B, and a batch of an organization that no longer exists."""
    from saas.metering.models import UsageIntake

    batch = {
        "batch_id": "f" * 32,
        "instance_id": "poison",
        "window_start": 0,
        "window_end": 0,
        "items": [{"minute": 1_000_000_000_020, "route_id": 1, "status_class": "2xx", "requests": 42}],
    }
    gone = {**batch, "batch_id": "e" * 32, "items": [{**batch["items"][0], "minute": 60}]}
    UsageIntake.objects.create(
        schema_name=org_b.schema_name, cluster_id=cluster_b.id, batch=json.dumps(batch)
    )
    UsageIntake.objects.create(schema_name="org_that_was_deleted", cluster_id=1, batch=json.dumps(gone))


def test_billed_equals_answered_through_slow_calls_kills_bursts_lost_redis_and_poison(tmp_path: Path) -> None:
    from django_redis import get_redis_connection

    from saas.gateways.services import create_cluster_token
    from saas.metering.models import UsageDeadLetter, UsageRollup
    from saas.metering.services import BillingPeriod, billable_calls

    upstream, upstream_port = _upstream(tmp_path)
    slow_server = _SlowServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=slow_server.serve_forever, daemon=True).start()
    org, author, cluster = make_org_with_cluster()
    org_b, _, cluster_b = make_org_with_cluster()
    routes = _catalog(org, author, cluster, upstream_port)
    slow_route = _slow_route(org, author, cluster, slow_server.server_address[1])
    burst_keys = _burst_consumers(org, cluster)
    with schema_context(org.schema_name):
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()

    control_port, http_port = free_port(), free_port()
    control = start_control_plane(control_port, env_sharing_test_database())
    wait_until_up(control_port)
    data_dir = tmp_path / "agent"
    log = tmp_path / "agent.log"

    def agent() -> subprocess.Popen[bytes]:
        extra = ("--poll-wait", "5", "--heartbeat-interval", "1")
        return start_agent(control_port, token, data_dir, http_port, extra=extra, log=log)

    processes = [upstream, control, agent()]
    consumers = Consumers()
    expected: collections.Counter[Key] = collections.Counter()
    slow = SlowCalls(http_port)
    started = time.monotonic()
    try:
        probes: list[int] = []
        wait_for(lambda: _serving(http_port, probes), 120, what="the gateway to serve")
        assert probes == [200]
        expected[(routes["open"], "", "2xx")] += 1

        # 1. Calls of 130 s and of 20 minutes, then ordinary traffic with a consumer SIGKILLed
        # every 2 s, and poison in the queue.
        for seconds in (SLOW_CALL_S, SLOW_CALL_S, LONG_CALL_S, LONG_CALL_S):
            slow.start(seconds)
        time.sleep(1)
        _poison(org_b, cluster_b)
        traffic = Traffic(http_port, PHASE_CALLS)
        traffic.thread.start()
        _killing_consumers_while(consumers, traffic.thread)
        expected += _traffic_expected(traffic, {**routes, "nowhere": 0})

        # 2. A reload with the slow calls in flight, and the agent SIGKILLed while the old worker
        # drains them; down for AGENT_DOWN_S while HAProxy serves a burst of 10,500 consumers and
        # more traffic. Redis loses everything meanwhile.
        before = serving_worker_pid(data_dir)
        add_reloading_route(org, author, cluster, "open")
        wait_for(lambda: serving_worker_pid(data_dir) not in (None, before), 60, what="the reload")
        processes[-1].send_signal(signal.SIGKILL)
        processes[-1].wait()
        down_until = time.monotonic() + AGENT_DOWN_S
        answered = _burst(http_port, list(burst_keys))
        assert {status for _, status in answered} == {200}
        for key, _status in answered:
            expected[(routes["orders"], burst_keys[key], "2xx")] += 1
        redis = get_redis_connection("default")
        redis.flushall()
        redis.client_kill_filter(_type="normal", skipme=True)
        traffic = Traffic(http_port, PHASE_CALLS)
        traffic.thread.start()
        traffic.thread.join(600)
        expected += _traffic_expected(traffic, {**routes, "nowhere": 0})
        time.sleep(max(0.0, down_until - time.monotonic()))
        processes.append(agent())

        # 3. More traffic, consumers still being killed; then the slow calls' answers.
        traffic = Traffic(http_port, PHASE_CALLS)
        traffic.thread.start()
        _killing_consumers_while(consumers, traffic.thread)
        expected += _traffic_expected(traffic, {**routes, "nowhere": 0})
        slow.join(LONG_CALL_S + 600 - (time.monotonic() - started))
        assert slow.answered == {200: 4}
        expected[(slow_route, "", "2xx")] += 4

        period = BillingPeriod.containing(timezone_now())
        calls = sum(expected.values())
        seen = [0]

        def caught_up() -> bool:
            seen[0] = billable_calls(org, period)
            return seen[0] >= calls

        try:
            wait_for(caught_up, 180, interval=1, what=f"the bill to reach {calls} calls")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {seen[0]} billed") from None
        time.sleep(5)  # more readings and consumers' rounds: nothing more arrives
        assert billable_calls(org, period) == calls
        with schema_context(org.schema_name):
            rows = UsageRollup.objects.values("route_id", "consumer", "status_class").annotate(
                calls=Sum("requests")
            )
            billed = {(r["route_id"], r["consumer"], r["status_class"]): r["calls"] for r in rows}
        assert billed == dict(expected)
        assert consumers.kills >= 6

        # The poison is set aside, with its reason; B's bill holds nothing of it.
        reasons = dict(UsageDeadLetter.objects.values_list("schema_name", "reason"))
        assert set(reasons) >= {org_b.schema_name, "org_that_was_deleted"}, reasons
        assert all(reasons.values())
        assert billable_calls(org_b, period) == 0
    finally:
        consumers.stop()
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
        stop_haproxy(data_dir)
        slow_server.shutdown()
        print(log.read_text()[-5000:] if log.exists() else "")
