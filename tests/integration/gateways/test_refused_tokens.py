"""A cluster token the control plane no longer accepts (revoked, or rotated and past its grace
period) gets nothing more: not a snapshot through a long-poll that was already waiting; the
console says why the gateway went quiet; the agent says so in its log and stops asking every
second."""

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django_tenants.utils import schema_context

from gateway_agent.agent import REFUSED_RETRY_S, Agent, AgentSettings
from gateway_agent.client import ControlPlane, TokenRefused
from gateway_agent.protocol import RegisterRequest
from saas.launcher.services import free_port
from tenants.roles import Role
from tests.agent_api import registered_instance, send_heartbeat
from tests.control_plane import env_sharing_test_database, start_control_plane, wait_until_up

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _world():
    from saas.catalog import services as catalog
    from saas.gateways.services import create_cluster_token
    from tests.factories import make_org_with_cluster

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog.save_upstream(author, cluster, {"name": "u", "targets": [{"host": "10.0.0.1", "port": 80}]})
        token, secret = create_cluster_token(author, cluster, name="gw")
    connections.close_all()
    return org, author, cluster, token, secret


def _publish(org, author, cluster, name: str) -> None:
    from saas.catalog import services as catalog

    try:
        with schema_context(org.schema_name):
            catalog.save_upstream(
                author, cluster, {"name": name, "targets": [{"host": "10.0.0.2", "port": 80}]}
            )
    finally:
        connections.close_all()  # this thread's own connection, before the database's teardown


def _poll_across(secrets: list[str], meanwhile) -> list[int]:
    """Each secret long-polls (from its cluster's latest version, up to 20 s) while `meanwhile`
    runs in a thread half a second in; the statuses answered."""
    from saas.asgi import application

    async def run() -> list[int]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as client:
            versions = []
            for secret in secrets:
                first = await client.get(
                    "/agent/v1/config?wait=0", headers={"Authorization": f"Bearer {secret}"}
                )
                assert first.status_code == 200, first.content
                versions.append(first.json()["version"])

            def later() -> None:
                time.sleep(0.5)
                meanwhile()

            threading.Thread(target=later).start()
            start = time.monotonic()
            answers = await asyncio.gather(
                *(
                    client.get(
                        f"/agent/v1/config?version={version}&wait=20",
                        headers={"Authorization": f"Bearer {secret}"},
                    )
                    for secret, version in zip(secrets, versions, strict=True)
                )
            )
            assert time.monotonic() - start < 10  # woken, not timed out
            await sync_to_async(connections.close_all)()
            return [answer.status_code for answer in answers]

    return asyncio.run(run())


def test_a_long_poll_waiting_when_its_token_is_revoked_is_refused_not_sent_the_next_snapshot():
    from saas.gateways.services import revoke_cluster_token

    org, author, cluster, token, secret = _world()

    def revoke_then_publish() -> None:
        with schema_context(org.schema_name):
            revoke_cluster_token(author, token)
        _publish(org, author, cluster, "v")

    assert _poll_across([secret], revoke_then_publish) == [401]


def test_a_revoked_token_is_refused_at_once_by_a_process_that_had_it_cached():
    """Polls, heartbeats and usage check tokens against a 30 s cache per web process; a
    revocation is announced to every process, which forgets the token at once."""
    from saas.asgi import application
    from saas.gateways import agents
    from saas.gateways.services import revoke_cluster_token

    org, author, _, token, secret = _world()
    auth = {"Authorization": f"Bearer {secret}"}

    async def run() -> tuple[int, list[int], float]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://testserver"
        ) as client:
            # The first poll starts the process's listener, which starts with an empty cache.
            for _ in range(2):
                first = (await client.get("/agent/v1/config?wait=0", headers=auth)).status_code
            assert agents.recently_authenticated(secret) is not None  # cached for 30 s

            def revoke() -> None:
                with schema_context(org.schema_name):
                    revoke_cluster_token(author, token)
                connections.close_all()

            await sync_to_async(revoke, thread_sensitive=False)()
            revoked_at = time.monotonic()
            answers = []
            while not answers or answers[-1] != 401:
                answers.append((await client.get("/agent/v1/config?wait=0", headers=auth)).status_code)
                assert time.monotonic() - revoked_at < 5, answers
                await asyncio.sleep(0.01)
            await sync_to_async(connections.close_all)()
            return first, answers, time.monotonic() - revoked_at

    first, answers, refused_after_s = asyncio.run(run())
    assert first == 200 and answers[-1] == 401
    assert refused_after_s < 1  # not the cache's 30 s
    assert agents.recently_authenticated(secret) is None


def test_a_long_poll_waiting_when_the_grace_period_ends_is_refused_and_the_new_secret_served(time_machine):
    from saas.gateways.services import rotate_cluster_token

    time_machine.move_to(NOW, tick=True)
    org, author, cluster, token, old_secret = _world()
    with schema_context(org.schema_name):
        _, new_secret = rotate_cluster_token(author, token, grace_seconds=600)
    connections.close_all()

    def grace_over_then_publish() -> None:
        time_machine.move_to(NOW + timedelta(seconds=601), tick=True)
        _publish(org, author, cluster, "v")

    assert _poll_across([old_secret, new_secret], grace_over_then_publish) == [401, 200]


def _beat(secret: str, instance_id: str, error: str | None = None) -> int:
    return send_heartbeat(secret, instance_id, 1, error)


def _instances(cw) -> dict[str, dict]:
    listed = cw.client(Role.VIEWER).get(cw.url("instances/"))
    assert listed.status_code == 200, listed.content
    return {row["hostname"]: row for row in listed.json()["results"]}


def test_the_console_shows_which_token_a_gateway_calls_with_and_that_it_is_refused(cw, time_machine):
    time_machine.move_to(NOW, tick=True)
    admin = cw.client(Role.ADMIN)
    made = admin.post(cw.url("tokens/"), {"name": "gw"}, format="json").json()
    rotated_gateway = registered_instance(made["token"])
    assert _beat(made["token"], rotated_gateway) == 204
    stale_id = registered_instance(made["token"], hostname="gw-2")
    assert _beat(made["token"], stale_id, "haproxy -c: unknown keyword") == 204
    new = admin.post(cw.url(f"tokens/{made['id']}/rotate/"), {"grace_seconds": 600}, format="json").json()

    # gw-1 is restarted with the new secret: same instance, no new registration, its heartbeats
    # carry the new token.
    assert _beat(new["token"], rotated_gateway) == 204
    rows = _instances(cw)
    assert rows["gw-1"]["token"] == new["prefix"] and rows["gw-1"]["last_error"] is None
    assert (
        rows["gw-2"]["token"] == made["prefix"]
        and rows["gw-2"]["last_error"] == "haproxy -c: unknown keyword"
    )

    time_machine.move_to(NOW + timedelta(seconds=601), tick=True)
    assert _beat(made["token"], stale_id) == 401
    assert _beat(new["token"], rotated_gateway) == 204
    rows = _instances(cw)
    assert rows["gw-1"]["last_error"] is None and rows["gw-1"]["status"] == "online"
    refused = rows["gw-2"]["last_error"]
    assert refused.startswith(f"Its cluster token {made['prefix']}… is refused since 2026-11-28 12:10 UTC"), (
        refused
    )
    assert refused.endswith("Its last reported error: haproxy -c: unknown keyword"), refused


def test_the_agent_logs_a_refused_token_as_such_and_asks_again_only_every_15_to_30_s(tmp_path, caplog):
    from saas.gateways.services import revoke_cluster_token

    org, author, _, token, secret = _world()
    with schema_context(org.schema_name):
        revoke_cluster_token(author, token)
    connections.close_all()
    port = free_port()
    server = start_control_plane(port, env_sharing_test_database())
    try:
        wait_until_up(port)
        _run_one_round_with_a_refused_token(f"http://127.0.0.1:{port}", secret, tmp_path, caplog)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _run_one_round_with_a_refused_token(url: str, secret: str, tmp_path, caplog) -> None:
    control_plane = ControlPlane(url, secret)
    with pytest.raises(TokenRefused, match="refuses this gateway's cluster token"):
        control_plane.register(RegisterRequest(hostname="gw-1", agent_version="0.3.1"))

    agent = Agent(AgentSettings(url, secret, tmp_path / "agent"), control_plane)
    waits: list[float] = []

    class _OneRound(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0.0)
            self.set()  # one round of the main loop
            return True

    agent._stop = _OneRound()
    agent._heartbeats = agent._send_usage = lambda interval_s: None  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="gateway_agent"):
        agent.run()
    control_plane.close()
    assert REFUSED_RETRY_S / 2 <= waits[-1] <= REFUSED_RETRY_S
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "register: the control plane refuses this gateway's cluster token" in record.getMessage()
    assert "unreachable" not in caplog.text
