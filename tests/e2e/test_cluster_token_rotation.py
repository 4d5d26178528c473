"""A cluster token rotated in the console, at a real gateway (agent and HAProxy): the old secret
keeps working for the grace period the owner chose, then the control plane refuses it, and a
gateway started with the new secret takes the latest config.

An hour's grace is not waited: the control plane runs with a clock the test moves forward
(tests/e2e/movable_clock.py), and so does the browser's, as a clock change would move both.
The gateways' agents and HAProxy run on the real clock."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from django.db import connections
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from saas.launcher.services import free_port
from tenants.roles import Role
from tests.control_plane import start_agent, start_echo_upstream, stop_gateway, wait_for
from tests.e2e.console_steps import (
    button,
    choose,
    control_plane_env,
    dialog,
    read_api,
    screenshots,
    sign_in_as_member,
)
from tests.e2e.movable_clock import move_clock, serving
from tests.factories import make_org_with_cluster

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HOUR = 3600


@pytest.fixture
def control_plane_with_a_clock(transactional_db: None, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The control plane's URL (its web process, as `make run` serves it) and the file that moves
    its clock (movable_clock.move_clock)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    clock = tmp_path / "clock"
    with serving(clock, port, control_plane_env(SAAS_PUBLIC_URL=url)):
        yield url, clock


def _instance_id(data_dir: Path) -> str:
    return str(json.loads((data_dir / "instance.json").read_text())["instance_id"])


def _reload_gateways(page: Page) -> None:
    """The Gateways tab, reloaded: the tokens' list is not live, the instances' is."""
    page.reload()
    page.get_by_role("tab", name="Gateways").click()


def _add_route(page: Page, name: str, path: str) -> None:
    """A route to the service `orders` at `path`, made in the catalog: a publish."""
    page.get_by_role("tab", name="Catalog").click()
    page.get_by_role("tab", name="Routes").click()
    button(page, "New route").click()
    form = dialog(page)
    form.get_by_label("Name").fill(name)
    choose(page, "Service", "orders")
    form.get_by_role("group", name="Path 1").get_by_role("textbox", name="Path").fill(path)
    button(form, "Create").click()
    expect(dialog(page)).to_have_count(0)
    expect(page.get_by_role("table", name="Routes").get_by_text(path, exact=True)).to_be_visible()
    page.get_by_role("tab", name="Gateways").click()


def test_a_rotated_cluster_token_works_through_its_grace_period_then_is_refused_at_the_gateway(
    page: Page, control_plane_with_a_clock: tuple[str, Path], tmp_path: Path
) -> None:
    from saas.catalog import services as catalog

    control_plane, clock = control_plane_with_a_clock
    control_port = int(control_plane.rsplit(":", 1)[1])
    upstream = start_echo_upstream()
    org, author, cluster = make_org_with_cluster("edge")
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author,
            cluster,
            {"name": "echo", "targets": [{"host": "127.0.0.1", "port": upstream.server_address[1]}]},
        )
        catalog.save_service(author, cluster, {"name": "orders", "upstream": "echo"})
        catalog.save_route(
            author, cluster, {"name": "orders", "service": "orders", "paths": [{"value": "/orders"}]}
        )
    connections.close_all()
    old_dir, new_dir = tmp_path / "gateway-old-token", tmp_path / "gateway-new-token"
    old_log, new_log = tmp_path / "agent-old-token.log", tmp_path / "agent-new-token.log"
    old_port, new_port = free_port(), free_port()
    old_gateway, new_gateway = f"http://127.0.0.1:{old_port}", f"http://127.0.0.1:{new_port}"
    agents: list[tuple[subprocess.Popen[bytes], Path]] = []

    def status(gateway: str, path: str) -> int:
        return httpx.get(f"{gateway}{path}", timeout=2).status_code

    def instances() -> dict[str, dict]:
        listed = read_api(page, f"{control_plane}/api/v1/orgs/{org.slug}/clusters/{cluster.id}/instances/")
        return {row["instance_id"]: row for row in listed["results"]}

    try:
        # The browser's clock, movable with the control plane's; it runs on meanwhile.
        page.clock.install()
        sign_in_as_member(page, control_plane, org, "ops@example.com", Role.OWNER)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        page.get_by_role("link", name="Clusters").click()
        page.get_by_role("link", name="edge", exact=True).click()
        page.get_by_role("tab", name="Gateways").click()

        # Token A, made in the console, shown once; a gateway connects with it.
        page.get_by_label("Token name").fill("eu-gateways")
        button(page, "Create cluster token").click()
        made = page.get_by_role("alert").filter(has_text="Your cluster token eu-gateways (shown once)")
        token_a = made.locator("code").inner_text()
        assert token_a.startswith(f"gct_{org.id}_"), token_a
        button(made, "Hide the secret").click()
        prefix = len(f"gct_{org.id}_") + 6  # tokens are listed by prefix
        agents.append(
            (
                start_agent(
                    control_port, token_a, old_dir, old_port, extra=("--heartbeat-interval", "1"), log=old_log
                ),
                old_dir,
            )
        )
        wait_for(lambda: status(old_gateway, "/orders/1") == 200, 30, what="the gateway on token A")
        old_id = _instance_id(old_dir)
        rows = page.get_by_role("table", name="Instances").get_by_role("row")
        old_row = rows.filter(has_text=old_id[:8])
        expect(old_row).to_contain_text("online")
        expect(old_row).to_contain_text("up to date")
        tokens = page.get_by_role("table", name="Cluster tokens")
        row_a = tokens.get_by_role("row").filter(has_text=token_a[:prefix])
        _reload_gateways(page)
        expect(row_a).to_contain_text("active")
        expect(row_a).to_contain_text(re.compile(r"\d+ s ago"))  # its last use: the gateway

        # Rotated with an hour's grace: the new secret B shown once, A listed as rotating.
        row_a.get_by_role("button", name=re.compile("^Rotate eu-gateways")).click()
        choose(page, "Grace period", "1 hour")
        button(dialog(page), "Rotate").click()
        expect(dialog(page)).to_have_count(0)
        rotated = page.get_by_role("alert").filter(has_text="The new secret of eu-gateways (shown once)")
        token_b = rotated.locator("code").inner_text()
        assert token_b.startswith(f"gct_{org.id}_") and token_b != token_a
        expect(row_a).to_contain_text("rotating")
        expect(row_a).to_contain_text(re.compile(r"\(in (60 min|1 h)\)"))
        row_b = tokens.get_by_role("row").filter(has_text=token_b[:prefix])
        expect(row_b).to_contain_text("active")
        expect(row_b).to_contain_text("never used")
        screenshots(page, "50-cluster-token-rotated")
        button(rotated, "Hide the secret").click()
        _reload_gateways(page)  # shown once: not on the page again, nor in what the API lists
        expect(row_b).to_contain_text("active")
        expect(page.get_by_text(token_b)).to_have_count(0)
        assert (
            token_b
            not in page.request.get(
                f"{control_plane}/api/v1/orgs/{org.slug}/clusters/{cluster.id}/tokens/"
            ).text()
        )

        # Half an hour on, in the grace period: A's heartbeats are taken, and a publish reaches it.
        move_clock(clock, HOUR / 2)
        page.clock.fast_forward(HOUR // 2 * 1000)
        moved = datetime.now(UTC) + timedelta(seconds=HOUR / 2)
        wait_for(
            lambda: _at(instances()[old_id]["last_heartbeat_at"]) > moved - timedelta(seconds=5),
            10,
            what="a heartbeat with token A taken in the grace period",
        )
        _reload_gateways(page)
        expect(old_row).to_contain_text("online")
        expect(row_a).to_contain_text("rotating")
        expect(row_a).to_contain_text(re.compile(r"\(in (2\d|30) min\)"))
        _add_route(page, "orders-v2", "/v2")
        wait_for(
            lambda: status(old_gateway, "/v2/1") == 200, 30, what="the publish at the gateway on token A"
        )
        expect(old_row).to_contain_text("up to date")
        applied = instances()[old_id]["applied_version"]
        with httpx.Client(base_url=control_plane, headers={"Authorization": f"Bearer {token_a}"}) as agent_a:
            beat = agent_a.post(
                "/agent/v1/heartbeat", json={"instance_id": old_id, "applied_version": applied}
            )
            assert beat.status_code == 204, beat.text
            assert agent_a.get("/agent/v1/config", params={"wait": 0}).status_code == 200

        # An hour and a minute on, the grace period over: A is refused, at the gateway too.
        move_clock(clock, HOUR + 60)
        page.clock.fast_forward((HOUR // 2 + 60) * 1000)
        # A publish, most likely while a long-poll of A's (30 s each) waits: it must not get it.
        _add_route(page, "orders-v3", "/v3")
        with httpx.Client(base_url=control_plane, headers={"Authorization": f"Bearer {token_a}"}) as agent_a:
            beat = agent_a.post(
                "/agent/v1/heartbeat", json={"instance_id": old_id, "applied_version": applied}
            )
            assert beat.status_code == 401, beat.text
            assert beat.json() == {"detail": "Invalid or revoked cluster token."}
            assert agent_a.get("/agent/v1/config", params={"wait": 0}).status_code == 401
            registered = agent_a.post("/agent/v1/register", json={"hostname": "gw", "agent_version": "0.1.0"})
            assert registered.status_code == 401
        # The gateway's log says so: its long-poll and heartbeats are refused.
        wait_for(
            lambda: "config: the control plane refuses this gateway's cluster token" in old_log.read_text(),
            40,
            what="the refusal in the log of the gateway on token A",
        )
        assert "heartbeat failed: heartbeat: the control plane refuses" in old_log.read_text()
        _reload_gateways(page)
        expect(row_a).to_contain_text("revoked")
        expect(old_row).to_contain_text("lost")
        expect(old_row).to_contain_text(f"Its cluster token {token_a[:prefix]}… is refused")
        assert instances()[old_id]["token"] == token_a[:prefix]

        # A gateway started with B connects and takes the latest config; A's keeps serving what
        # it had, without the route published after its token's end.
        agents.append(
            (
                start_agent(
                    control_port, token_b, new_dir, new_port, extra=("--heartbeat-interval", "1"), log=new_log
                ),
                new_dir,
            )
        )
        wait_for(lambda: status(new_gateway, "/v3/1") == 200, 30, what="the gateway on token B")
        new_id = _instance_id(new_dir)
        new_row = rows.filter(has_text=new_id[:8])
        expect(new_row).to_contain_text("online")
        expect(new_row).to_contain_text("up to date")
        _reload_gateways(page)
        expect(row_b).to_contain_text(re.compile(r"\d+ s ago"))
        expect(old_row).to_contain_text("lost")
        assert instances()[new_id]["token"] == token_b[:prefix]
        assert status(old_gateway, "/v2/2") == 200 and status(old_gateway, "/v3/2") == 404
        assert "refuses" not in new_log.read_text()
        screenshots(page, "51-cluster-token-refused-after-grace")
    finally:
        for agent, data_dir in agents:
            stop_gateway(agent, data_dir)
        upstream.shutdown()


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))
