"""A thousand agents long-polling one web process: no thread each, and all woken by a publish."""

import asyncio
import time
from pathlib import Path

import httpx
import psutil
import pytest
from django.db import connections
from django_tenants.utils import schema_context

from saas.launcher.services import free_port
from tests.control_plane import env_sharing_test_database, start_control_plane, wait_until_up
from tests.factories import make_org_with_cluster

ROOT = Path(__file__).resolve().parents[3]
AGENTS = 1000


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_thousand_waiting_agents_on_one_web_process():
    from saas.catalog import services as catalog_services
    from saas.gateways.services import create_cluster_token

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog_services.save_upstream(
            author, cluster, {"name": "u", "targets": [{"host": "10.0.0.1", "port": 80}]}
        )
        _, token = create_cluster_token(author, cluster, name="gw")

    port = free_port()
    server = start_control_plane(port, env_sharing_test_database())
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(port)

        def publish() -> None:
            with schema_context(org.schema_name):
                catalog_services.save_upstream(
                    author, cluster, {"name": "v", "targets": [{"host": "10.0.0.2", "port": 80}]}
                )
            connections.close_all()  # this thread's connection, before the test database goes

        async def run() -> tuple[list[int], float, int]:
            limits = httpx.Limits(max_connections=AGENTS + 10, max_keepalive_connections=AGENTS + 10)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
                headers = {"Authorization": f"Bearer {token}"}
                polls = [
                    asyncio.create_task(client.get("/agent/v1/config?version=1&wait=45", headers=headers))
                    for _ in range(AGENTS)
                ]
                await asyncio.sleep(8)  # every poll is in and waiting
                assert not any(p.done() for p in polls), [p.result().status_code for p in polls if p.done()][
                    :5
                ]
                threads = psutil.Process(server.pid).num_threads()
                start = time.monotonic()
                await asyncio.to_thread(publish)
                responses = await asyncio.gather(*polls)
                return [r.status_code for r in responses], time.monotonic() - start, threads

        statuses, woken_in, threads = asyncio.run(run())
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert statuses == [200] * AGENTS
    assert threads < 60, f"{threads} threads for {AGENTS} waiting polls"
    assert woken_in < 20
