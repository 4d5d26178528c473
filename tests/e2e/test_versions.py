"""End to end, versions as a team lives them: a rollback to an earlier state and an edit undone
are each applied once by every gateway, which then waits quietly on its long-poll and shows up to
date; and a gateway hears a control plane back from an outage within two seconds."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from django.db import connections
from django_tenants.utils import schema_context

from saas.launcher.services import free_port
from tests.control_plane import (
    env_sharing_test_database,
    start_agent,
    start_control_plane,
    start_echo_upstream,
    stop_gateway,
    wait_for,
    wait_until_up,
)
from tests.factories import make_org_with_cluster
from tests.fakes.proxy import ForwardingProxy

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

POLL_WAIT_S = 10
APPLIED = re.compile(r"applied snapshot version (\d+)")


def _catalog(upstream_port: int) -> tuple:
    from saas.catalog import services as catalog
    from saas.gateways.services import create_cluster_token

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author, cluster, {"name": "echo", "targets": [{"host": "127.0.0.1", "port": upstream_port}]}
        )
        catalog.save_service(author, cluster, {"name": "orders", "upstream": "echo"})
        catalog.save_route(
            author, cluster, {"name": "orders", "service": "orders", "paths": [{"value": "/orders"}]}
        )
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()
    return org, author, cluster, token


def _statuses(org, cluster) -> list[dict]:
    from saas.gateways.agents import instance_statuses

    with schema_context(org.schema_name):
        found = instance_statuses(org.schema_name, cluster.id, org.id)
    connections.close_all()
    return found


def _all_up_to_date(org, cluster, count: int) -> list[dict] | None:
    statuses = _statuses(org, cluster)
    done = len(statuses) == count and all(
        s["status"] == "online" and s["applied_version"] == s["latest_version"] for s in statuses
    )
    return statuses if done else None


def _change(org, work) -> int:
    """Run a catalog change in the organization's schema; the cluster's latest version after it."""
    from saas.gateways.models import ConfigSnapshot

    with schema_context(org.schema_name):
        work()
        latest = ConfigSnapshot.objects.order_by("-version").first()
    connections.close_all()
    assert latest is not None
    return latest.version


def test_a_rollback_and_an_undone_edit_are_applied_once_and_the_gateways_then_wait(tmp_path: Path) -> None:
    from saas.catalog import services as catalog
    from saas.catalog.models import Route
    from saas.gateways.models import ConfigSnapshot
    from saas.gateways.publishing import roll_back

    upstream = start_echo_upstream()
    org, author, cluster, token = _catalog(upstream.server_address[1])
    control_port = free_port()
    control = start_control_plane(control_port, env_sharing_test_database())
    wait_until_up(control_port)
    # Each gateway talks to the control plane through a proxy of its own that counts its requests.
    proxies = [ForwardingProxy(f"http://127.0.0.1:{control_port}") for _ in range(2)]
    gateways = [(f"http://127.0.0.1:{free_port()}", tmp_path / f"agent{i}") for i in range(2)]
    agents: list[subprocess.Popen[bytes]] = []
    try:
        for (url, data_dir), proxy in zip(gateways, proxies, strict=True):
            data_dir.mkdir()
            agents.append(
                start_agent(
                    0,
                    token,
                    data_dir,
                    int(url.rsplit(":", 1)[1]),
                    control_url=proxy.url,
                    extra=("--poll-wait", str(POLL_WAIT_S), "--heartbeat-interval", "1"),
                    log=data_dir / "agent.log",
                )
            )
        wait_for(lambda: _all_up_to_date(org, cluster, 2), timeout=30, what="both gateways up to date")

        def serving(path: str) -> list[int]:
            return [httpx.get(f"{url}{path}", timeout=2).status_code for url, _ in gateways]

        # A route added (v+1), then the cluster rolled back to before it: v+2 has v's content.
        first = _change(org, lambda: None)
        added = _change(
            org,
            lambda: catalog.save_route(
                author, cluster, {"name": "shop", "service": "orders", "paths": [{"value": "/shop"}]}
            ),
        )
        wait_for(lambda: serving("/shop") == [200, 200], what="the new route served")
        rolled = _change(
            org,
            lambda: roll_back(author, cluster, ConfigSnapshot.objects.get(cluster=cluster, version=first)),
        )
        # An edit, then the same edit undone: the last version has the content of the first again.
        edited = _change(
            org,
            lambda: catalog.save_route(
                author,
                cluster,
                {"name": "orders", "service": "orders", "paths": [{"value": "/orders"}], "priority": 3},
                Route.objects.get(name="orders"),
            ),
        )
        undone = _change(
            org,
            lambda: catalog.save_route(
                author,
                cluster,
                {"name": "orders", "service": "orders", "paths": [{"value": "/orders"}]},
                Route.objects.get(name="orders"),
            ),
        )
        assert first < added < rolled < edited < undone
        with schema_context(org.schema_name):
            shas = dict(ConfigSnapshot.objects.values_list("version", "sha256"))
        connections.close_all()
        assert shas[rolled] == shas[first] == shas[undone] and shas[edited] != shas[first]
        statuses = wait_for(lambda: _all_up_to_date(org, cluster, 2), timeout=15, what="up to date again")
        assert {s["applied_version"] for s in statuses} == {undone}  # type: ignore[union-attr]
        assert serving("/shop") == [404, 404] and serving("/orders") == [200, 200]

        # The next minute: each gateway makes no more than its usual long-polls, and applies nothing.
        polls_before = [len([s for s in p.sent if s.path.startswith("/agent/v1/config")]) for p in proxies]
        time.sleep(60)
        polls = [
            len([s for s in p.sent if s.path.startswith("/agent/v1/config")]) - before
            for p, before in zip(proxies, polls_before, strict=True)
        ]
        assert all(count <= 60 / POLL_WAIT_S + 1 for count in polls), polls
        assert _all_up_to_date(org, cluster, 2)

        # Every gateway applied each version at most once (versions published faster than a
        # gateway polls may be skipped), and the last one exactly once.
        for _, data_dir in gateways:
            applied = Counter(int(v) for v in APPLIED.findall((data_dir / "agent.log").read_text()))
            assert applied[undone] == 1 and max(applied.values()) == 1, applied
    finally:
        for process, (_, data_dir) in zip(agents, gateways, strict=False):
            stop_gateway(process, data_dir)
        for proxy in proxies:
            proxy.close()
        control.terminate()
        control.wait(timeout=20)
        upstream.shutdown()


def test_a_gateway_hears_a_control_plane_back_from_an_outage_within_two_seconds(tmp_path: Path) -> None:
    from saas.catalog import services as catalog

    upstream = start_echo_upstream()
    org, author, cluster, token = _catalog(upstream.server_address[1])
    control_port, http_port = free_port(), free_port()
    gateway = f"http://127.0.0.1:{http_port}"
    control = start_control_plane(control_port, env_sharing_test_database())
    wait_until_up(control_port)
    data_dir = tmp_path / "agent"
    agent = start_agent(control_port, token, data_dir, http_port, extra=("--poll-wait", "30"))
    try:
        wait_for(lambda: httpx.get(f"{gateway}/orders", timeout=2).status_code == 200, what="served")

        # A minute without the control plane (gone at once, as in a crash, with the agent's
        # long-poll open): the agent's retries have long reached their cap.
        control.kill()
        control.wait(timeout=20)
        time.sleep(60)
        assert httpx.get(f"{gateway}/orders", timeout=2).status_code == 200  # still serving
        control = start_control_plane(control_port, env_sharing_test_database())
        wait_until_up(control_port)

        # A change published right after the return is served within two seconds.
        published = time.monotonic()
        _change(
            org,
            lambda: catalog.save_route(
                author, cluster, {"name": "shop", "service": "orders", "paths": [{"value": "/shop"}]}
            ),
        )
        wait_for(
            lambda: httpx.get(f"{gateway}/shop", timeout=1).status_code == 200,
            timeout=10,
            interval=0.05,
            what="the change served",
        )
        took = time.monotonic() - published
        assert took < 2.0, took
    finally:
        stop_gateway(agent, data_dir)
        control.terminate()
        control.wait(timeout=20)
        upstream.shutdown()
