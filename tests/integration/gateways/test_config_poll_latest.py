"""A web process answers config polls from the latest versions announced to it (issue 27): a
poll that finds nothing new asks the database nothing, and a publish reaches the waiting polls
through its announcement. What it heard never outweighs the database: a version the cluster
does not have is asked for again."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from saas.gateways import agents
from saas.gateways.notifier import snapshot_waiters
from saas.gateways.snapshots import snapshot_channel
from tenants.roles import Role
from tests.factories import CatalogWorld

pytestmark = pytest.mark.django_db(transaction=True)


def test_polls_take_the_latest_version_from_announcements_not_the_database(cw: CatalogWorld, monkeypatch):
    from saas.asgi import application

    token = cw.client(Role.ADMIN).post(cw.url("tokens/"), {"name": "gw"}, format="json").json()["token"]
    cw.client().post(
        cw.url("upstreams/"), {"name": "u", "targets": [{"host": "10.0.0.1", "port": 80}]}, format="json"
    )
    asked: list[int] = []
    read = agents.latest_snapshot

    def counted(ctx: agents.AgentContext) -> Any:
        asked.append(ctx.cluster_id)
        return read(ctx)

    monkeypatch.setattr(agents, "latest_snapshot", counted)
    cluster_id = cw.cluster_id
    channel = snapshot_channel(cw.world.a.org.schema_name, cluster_id)

    async def run() -> None:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            first = await client.get("/agent/v1/config?wait=0")
            version = first.json()["version"]
            assert first.status_code == 200 and asked == [cluster_id]

            for _ in range(3):  # nothing new: answered from what the process heard
                assert (await client.get(f"/agent/v1/config?wait=0&version={version}")).status_code == 304
            assert asked == [cluster_id]

            waiting = asyncio.ensure_future(client.get(f"/agent/v1/config?wait=20&version={version}"))
            await asyncio.sleep(0.5)
            await sync_to_async(publish_a_change, thread_sensitive=False)(cw)
            woken = await waiting
            assert woken.status_code == 200 and woken.json()["version"] == version + 1
            assert asked == [cluster_id]  # the announcement named the version
            assert snapshot_waiters.latest(channel) == (version + 1, woken.json()["sha256"])

            # Heard of a version the cluster lacks (an organization of the same schema name
            # deleted and made again): the database decides, and the agent is up to date.
            snapshot_waiters.remember_latest(channel, (version + 50, "f" * 64), snapshot_waiters.generation)
            again = await client.get(f"/agent/v1/config?wait=0&version={version + 1}")
            assert again.status_code == 304 and asked == [cluster_id, cluster_id]
            assert snapshot_waiters.latest(channel) == (version + 1, woken.json()["sha256"])

            # Another process served the agent a version this one has not heard of yet: the
            # database decides, and the agent is not sent back to the older one.
            snapshot_waiters.forget_latest(channel)
            snapshot_waiters.remember_latest(
                channel, (version, first.json()["sha256"]), snapshot_waiters.generation
            )
            ahead = await client.get(f"/agent/v1/config?wait=0&version={version + 1}")
            assert ahead.status_code == 304 and asked == [cluster_id] * 3
            assert snapshot_waiters.latest(channel) == (version + 1, woken.json()["sha256"])

            # A read that began before something was forgotten is not kept.
            generation = snapshot_waiters.generation
            snapshot_waiters.forget_latest(channel)
            snapshot_waiters.remember_latest(channel, (version, first.json()["sha256"]), generation)
            assert snapshot_waiters.latest(channel) is None
        await sync_to_async(connections.close_all)()

    asyncio.run(run())


def publish_a_change(cw: CatalogWorld) -> None:
    answer = cw.client().post(
        cw.url("upstreams/"), {"name": "v", "targets": [{"host": "10.0.0.2", "port": 80}]}, format="json"
    )
    assert answer.status_code == 201, answer.content
    connections.close_all()
