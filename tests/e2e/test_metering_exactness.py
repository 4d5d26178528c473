"""Issue 6's acceptance: over 100,000 calls through a real gateway, to a mix of routes and
consumers, with the agent killed and restarted, the control plane unreachable for 30 s, a
HAProxy reload, and every usage POST delivered twice, the bill counts each call exactly once, in
total and per route and consumer, and the analytics agree."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.db import connections
from django.db.models import Sum
from django.utils.timezone import now as timezone_now
from django_tenants.utils import schema_context

from saas.launcher.services import free_port
from tests.control_plane import (
    env_sharing_test_database,
    serving_worker_pid,
    start_agent,
    start_control_plane,
    stop_haproxy,
    wait_for,
    wait_until_up,
)
from tests.factories import add_reloading_route, make_org_with_cluster
from tests.fakes.proxy import ForwardingProxy

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CALLS = int(os.environ.get("EXACTNESS_CALLS", "100000"))
KEYS = {"alice": "alice-secret-api-key-0001", "bob": "bob-secret-api-key-00002"}
# (path, api key's consumer or "", what the gateway does): proxied, refused, mocked, unmatched.
MIX = [
    ("/orders/1", "alice", "proxied"),
    ("/orders/2", "bob", "proxied"),
    ("/orders/3", "", "refused"),
    ("/open/1", "", "proxied"),
    ("/open/2", "alice", "proxied"),  # no auth on /open: billed to no consumer
    ("/mock", "", "mocked"),
    ("/nowhere", "", "unmatched"),
    ("/orders/4", "alice", "proxied"),
]


def _upstream(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """HAProxy answering 200 itself: an upstream fast enough not to be the bottleneck."""
    port = free_port()
    config = work / "upstream.cfg"
    config.write_text(
        "defaults\n    mode http\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n"
        f"frontend f\n    bind 127.0.0.1:{port}\n"
        "    http-request return status 200 content-type text/plain string ok\n"
    )
    return subprocess.Popen(["haproxy", "-db", "-f", str(config)]), port


class Traffic:
    """Keep-alive HTTP/1.1 clients on their own thread, cycling through MIX until `total`
    answers have come back; `answered` counts them by (mix entry, status)."""

    def __init__(self, port: int, total: int, connections: int = 16) -> None:
        self.port = port
        self.total = total
        self.connections = connections
        self.answered: collections.Counter[tuple[int, int]] = collections.Counter()
        self.count = 0
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.connections)))

    async def _client(self, offset: int) -> None:
        requests = []
        for path, consumer, _ in MIX:
            key = f"apikey: {KEYS[consumer]}\r\n" if consumer else ""
            requests.append(f"GET {path} HTTP/1.1\r\nHost: gw\r\n{key}\r\n".encode())
        turn = offset
        writer = None
        while self.count < self.total:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
            index = turn % len(MIX)
            try:
                writer.write(requests[index])
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().lower().split("\r\n")
                length = next((int(x.split(":")[1]) for x in lines if x.startswith("content-length:")), 0)
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                # Closed before any answer (an old worker closing an idle connection): the
                # gateway never read this request; it is sent again on a new connection.
                writer.close()
                writer = None
                continue
            self.answered[(index, int(lines[0].split()[1]))] += 1
            self.count += 1
            turn += 1
            if "connection: close" in lines:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    def wait_for(self, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count:
            assert self.thread.is_alive() and time.monotonic() < deadline, f"traffic stalled at {self.count}"
            time.sleep(0.05)


def _catalog(org, author, cluster, upstream_port: int) -> dict[str, int]:
    from saas.catalog import services as catalog
    from saas.catalog.models import Route

    with schema_context(org.schema_name):
        catalog.save_upstream(
            author, cluster, {"name": "app", "targets": [{"host": "127.0.0.1", "port": upstream_port}]}
        )
        catalog.save_service(
            author, cluster, {"name": "orders", "upstream": "app", "plugins": {"key-auth": {}}}
        )
        catalog.save_service(author, cluster, {"name": "open", "upstream": "app"})
        for name, service, path, plugins in (
            ("orders", "orders", "/orders", {}),
            ("open", "open", "/open", {}),
            ("mock", "open", "/mock", {"mocking": {"status_code": 200, "body": "{}"}}),
        ):
            catalog.save_route(
                author,
                cluster,
                {"name": name, "service": service, "paths": [{"value": path}], "plugins": plugins},
            )
        for username, key in KEYS.items():
            consumer = catalog.save_consumer(author, cluster, {"username": username})
            catalog.add_credential(author, consumer, {"type": "key-auth", "key": key})
        return {route.name: route.id for route in Route.objects.all()}


def _expected(traffic: Traffic, routes: dict[str, int]) -> dict[tuple[int, str], int]:
    """Calls per (route id, consumer) as the clients saw them answered."""
    expected: collections.Counter[tuple[int, str]] = collections.Counter()
    for (index, status), count in traffic.answered.items():
        path, consumer, kind = MIX[index]
        assert (kind, status) in {("proxied", 200), ("refused", 401), ("mocked", 200), ("unmatched", 404)}
        route = 0 if kind == "unmatched" else routes[path.split("/")[1]]
        identified = kind == "proxied" and path.startswith("/orders")
        expected[(route, consumer if identified else "")] += count
    return dict(expected)


def _serving(port: int, answers: list[int]) -> bool:
    """Whether the gateway serves /open yet; each answer it gave is in `answers`: billed too."""
    try:
        answers.append(httpx.get(f"http://127.0.0.1:{port}/open/0", timeout=1).status_code)
    except httpx.ConnectError:
        return False
    return answers[-1] == 200


def test_every_call_is_billed_exactly_once_through_kills_outages_reloads_and_replays(tmp_path):
    from saas.gateways.services import create_cluster_token
    from saas.metering.intake_queue import UsageConsumer
    from saas.metering.models import UsageRollup
    from saas.metering.services import BillingPeriod, billable_calls, traffic

    upstream, upstream_port = _upstream(tmp_path)
    org, author, cluster = make_org_with_cluster()
    routes = _catalog(org, author, cluster, upstream_port)
    with schema_context(org.schema_name):
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()

    control_port, http_port = free_port(), free_port()
    control = start_control_plane(control_port, env_sharing_test_database())
    wait_until_up(control_port)
    proxy = ForwardingProxy(f"http://127.0.0.1:{control_port}", replay_paths=["/agent/v1/usage"])
    data_dir = tmp_path / "agent"
    extra = ("--poll-wait", "5", "--heartbeat-interval", "1")

    def agent() -> subprocess.Popen[bytes]:
        # It talks to the control plane through the replaying proxy only.
        return start_agent(control_port, token, data_dir, http_port, extra=extra, control_url=proxy.url)

    processes = [upstream, control]
    try:
        processes.append(agent())
        probes: list[int] = []
        wait_for(lambda: _serving(http_port, probes), 60, what="the gateway to serve")
        assert probes == [200]
        traffic_run = Traffic(http_port, CALLS)
        traffic_run.thread.start()

        # 1. A reload while serving: a new plugin setting cannot be applied at runtime.
        traffic_run.wait_for(CALLS // 10)
        before = serving_worker_pid(data_dir)
        add_reloading_route(org, author, cluster, "open")
        wait_for(lambda: serving_worker_pid(data_dir) not in (None, before), 60, what="the reload")

        # 2. The control plane unreachable for 30 s; meanwhile the agent is killed and restarted.
        traffic_run.wait_for(CALLS * 3 // 10)
        proxy.down.set()
        outage_ends = time.monotonic() + 30
        traffic_run.wait_for(CALLS * 5 // 10)
        # Whether or not an old worker still drains: its drain reader outlives the agent.
        processes[-1].send_signal(signal.SIGKILL)
        processes[-1].wait()
        time.sleep(1)
        processes.append(agent())
        time.sleep(max(0.0, outage_ends - time.monotonic()))
        proxy.down.clear()

        traffic_run.thread.join(timeout=600)
        assert not traffic_run.thread.is_alive()
        calls = traffic_run.count + len(probes)
        expected = _expected(traffic_run, {**routes, "nowhere": 0})
        expected[(routes["open"], "")] += len(probes)

        period = BillingPeriod.containing(timezone_now())
        consumer = UsageConsumer("exactness")

        def billed() -> int:
            consumer.drain()
            return billable_calls(org, period)

        last_billed = [0]

        def caught_up() -> bool:
            last_billed[0] = billed()
            return last_billed[0] >= calls

        try:
            wait_for(caught_up, 90, what=f"the bill to reach {calls} calls")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {last_billed[0]} billed") from None
        time.sleep(3)  # more rounds of counting, replays included: nothing more arrives
        assert billed() == calls
        assert proxy.replayed > 0
        with schema_context(org.schema_name):
            rows = UsageRollup.objects.values("route_id", "consumer").annotate(calls=Sum("requests"))
            assert {(r["route_id"], r["consumer"]): r["calls"] for r in rows} == expected
            seen = traffic(cluster.id, period.start, period.end, "day")
        assert seen["totals"]["requests"] == calls
        by_route = collections.Counter()
        for (route, _), count in expected.items():
            by_route[route] += count
        assert {r["route_id"]: r["requests"] for r in seen["top_routes"]} == dict(by_route)
        statuses = collections.Counter({"2xx": len(probes)})
        for (_, status), count in traffic_run.answered.items():
            statuses[f"{status // 100}xx"] += count
        assert seen["series"][0]["by_status"] == dict(statuses)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
        stop_haproxy(data_dir)
        proxy.close()
