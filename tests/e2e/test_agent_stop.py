"""Stopping an agent. Told to stop while it starts HAProxy, it waits for the start to end, reads
the last counts, stops HAProxy and exits 0 (its SIGTERM handler once did that work on the main
thread that held the reload's lock: the agent hung until killed). A gateway stopped for good, its
data folder going with it as a pod's emptyDir does, finishes the calls in flight and bills every
call it served before it exits."""

import collections
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from django.db import connections
from django.utils.timezone import now as timezone_now
from django_tenants.utils import schema_context

from saas.launcher.services import free_port
from tests.control_plane import (
    env_sharing_test_database,
    start_agent,
    start_control_plane,
    start_echo_upstream,
    stop_haproxy,
    wait_for,
    wait_until_up,
)
from tests.factories import make_org_with_cluster
from tests.unit.test_agent_untrusted import body_of, served


def _slow_haproxy(folder: Path) -> tuple[Path, Path]:
    """An haproxy that, started as a master (-W), marks the file it returns and sleeps 3 s before
    it runs: long enough to signal the agent while it waits for the first worker."""
    marker = folder / "master-starting"
    wrapper = folder / "haproxy"
    wrapper.write_text(
        f'#!/bin/sh\ncase " $* " in *" -W "*) touch "{marker}"; sleep 3 ;; esac\n'
        f'exec "{shutil.which("haproxy")}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper, marker


@pytest.mark.slow
def test_a_stop_asked_while_haproxy_starts_ends_the_agent_and_haproxy(tmp_path: Path) -> None:
    data_dir = tmp_path / "agent"
    data_dir.mkdir()
    # A last good snapshot on disk: the agent serves it at start, without its control plane.
    (data_dir / "last_good.json").write_bytes(body_of(served(3, {"schema_version": 1, "cluster_id": 1})))
    haproxy, marker = _slow_haproxy(tmp_path)
    log = tmp_path / "agent.log"
    agent = start_agent(
        0,
        "gct_1_unused",
        data_dir,
        free_port(),
        control_url="http://127.0.0.1:9",  # nothing there
        extra=("--haproxy-bin", str(haproxy)),
        log=log,
    )
    try:
        wait_for(marker.exists, timeout=30, interval=0.05)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=60) == 0, log.read_text()
        # It finished serving the snapshot it was starting, then stopped HAProxy.
        assert "applied snapshot version 3" in log.read_text()
        master = int((data_dir / "run" / "haproxy.pid").read_text().split()[0])
        wait_for(lambda: not _alive(master), timeout=15)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        stop_haproxy(data_dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        # A zombie is gone for this purpose: its parent (the agent) has exited.
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_gateway_replaced_with_its_data_folder_bills_every_call_it_served(tmp_path: Path) -> None:
    """A pod replaced: SIGTERM while calls are in flight, then its emptyDir is gone. The calls in
    flight are answered, and every call is billed, each by its real status, though the agent
    reports usage only at start and at its stop here (a 60 s interval)."""
    from saas.catalog import services as catalog
    from saas.gateways.services import create_cluster_token
    from saas.metering.intake_queue import UsageConsumer
    from saas.metering.services import BillingPeriod, billable_calls, traffic

    upstream = start_echo_upstream()
    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        target = {"host": "127.0.0.1", "port": upstream.server_address[1]}
        catalog.save_upstream(author, cluster, {"name": "echo", "targets": [target]})
        catalog.save_service(
            author, cluster, {"name": "orders", "upstream": "echo", "plugins": {"key-auth": {}}}
        )
        catalog.save_route(
            author, cluster, {"name": "orders", "service": "orders", "paths": [{"value": "/orders"}]}
        )
        consumer = catalog.save_consumer(author, cluster, {"username": "app"})
        catalog.add_credential(author, consumer, {"type": "key-auth", "key": "a-very-secret-api-key-1"})
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()

    control_port, http_port = free_port(), free_port()
    control = start_control_plane(control_port, env_sharing_test_database())
    data_dir, log = tmp_path / "agent", tmp_path / "agent.log"
    agent = None
    gateway, key = f"http://127.0.0.1:{http_port}", {"apikey": "a-very-secret-api-key-1"}
    statuses: list[int] = []  # of every call the gateway answered
    try:
        wait_until_up(control_port)
        agent = start_agent(
            control_port, token, data_dir, http_port, extra=("--heartbeat-interval", "60"), log=log
        )

        def call(path: str, **headers: str) -> int:
            status = httpx.get(f"{gateway}{path}", headers=headers, timeout=30).status_code
            statuses.append(status)
            return status

        wait_for(lambda: call("/orders", **key) == 200, timeout=60)
        for i in range(40):
            assert call(f"/orders/{i}", **key) == 200
            if i % 4 == 0:
                assert call(f"/orders/{i}") == 401
        # Calls the upstream answers 1.5 s later, in flight when the stop comes.
        in_flight = [
            threading.Thread(target=call, args=(f"/orders/sleep/1500/{i}",), kwargs=key) for i in range(4)
        ]
        for thread in in_flight:
            thread.start()
        time.sleep(0.5)
        agent.send_signal(signal.SIGTERM)
        for thread in in_flight:
            thread.join(timeout=30)
        assert agent.wait(timeout=60) == 0, log.read_text()
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
            agent.wait()
        stop_haproxy(data_dir)
        control.terminate()
        control.wait(timeout=20)
        upstream.shutdown()
    shutil.rmtree(data_dir)  # the pod's emptyDir goes with it: no next start delivers anything

    assert statuses.count(200) == 1 + 40 + 4, statuses  # the calls in flight were answered
    period = BillingPeriod.containing(timezone_now())
    UsageConsumer("e2e").drain()
    assert billable_calls(org, period) == len(statuses)
    with schema_context(org.schema_name):
        [day] = traffic(cluster.id, period.start, period.end, "day")["series"]
    by_status = collections.Counter(f"{status // 100}xx" for status in statuses)
    assert day["by_status"] == dict(by_status)  # none taken as unanswered (5xx)
