"""A Free organization past its allowance gets 429 from its real gateway, with a JSON body
naming the quota and when it resets, and 200 again once it upgrades: both through snapshots."""

from __future__ import annotations

import json

import httpx
import pytest
from django.db import connections
from django.utils.timezone import now as time_now
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

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return 0


def test_a_free_organization_over_its_allowance_is_refused_until_it_upgrades(tmp_path, settings):
    from billing import services
    from saas.catalog import services as catalog
    from saas.gateways.services import create_cluster_token
    from saas.metering.intake_queue import UsageConsumer
    from saas.metering.services import BillingPeriod

    plans = json.loads((settings.BASE_DIR / "billing" / "plans.json").read_text())
    plans["free"]["included_calls"] = 5
    (tmp_path / "plans.json").write_text(json.dumps(plans))
    settings.BILLING_PLANS_FILE = str(tmp_path / "plans.json")

    upstream = start_echo_upstream()
    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        target = {"host": "127.0.0.1", "port": upstream.server_address[1]}
        catalog.save_upstream(author, cluster, {"name": "echo", "targets": [target]})
        catalog.save_service(author, cluster, {"name": "api", "upstream": "echo"})
        catalog.save_route(author, cluster, {"name": "api", "service": "api", "paths": [{"value": "/api"}]})
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()

    control_port, http_port = free_port(), free_port()
    control = start_control_plane(control_port, env_sharing_test_database())
    wait_until_up(control_port)
    data_dir = tmp_path / "agent"
    agent = start_agent(
        control_port, token, data_dir, http_port, extra=("--poll-wait", "5", "--heartbeat-interval", "1")
    )
    gateway = f"http://127.0.0.1:{http_port}/api/orders"
    try:
        wait_for(lambda: _status(gateway) == 200)
        for _ in range(4):
            assert _status(gateway) == 200
        consumer = UsageConsumer("quota")
        period = BillingPeriod.containing(time_now())

        def counted() -> bool:
            consumer.drain()
            return services.period_usage(org, services.account_for(org), time_now()).calls >= 5

        wait_for(counted)
        assert services.evaluate_quota(org) is True
        connections.close_all()
        wait_for(lambda: _status(gateway) == 429)
        refused = httpx.get(gateway, timeout=2)
        body = refused.json()
        assert body["error"] == "quota_exceeded"
        assert "Free plan" in body["message"] and "5 calls" in body["message"]
        assert refused.headers["X-Quota-Resets-At"] == period.end.strftime("%Y-%m-%dT%H:%M:%SZ")

        services.change_plan(author.actor, org, "pro")
        connections.close_all()
        wait_for(lambda: _status(gateway) == 200)
    finally:
        stop_gateway(agent, data_dir)
        control.terminate()
        control.wait(timeout=20)
        upstream.shutdown()
