"""The gateway image `make images` built, run as a customer runs it (its entrypoint, its user, its
environment) with buildah's chroot isolation on the host's network, against a live control plane:
it registers, applies the cluster's snapshot and serves a key-auth route through the HAProxy
inside it, reports usage billed once per call (rolled up by the control plane image's usage
consumer command), and is replaced by the next version of the image,
two instances one at a time behind a balancer, without losing a request.

Each instance keeps its data folder on a volume of its own, as `docker run -v
gateway-data:/var/lib/gateway-agent` does: what a stopping agent counted last is spooled there
(gateway_agent.agent.Agent.stop) and delivered by the next agent started on that volume, here
the next version's."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from django.db import connections
from django.utils.timezone import now as timezone_now
from django_tenants.utils import schema_context

from infra.images import gateway_image
from saas.launcher.services import free_port
from tests.control_plane import (
    env_sharing_test_database,
    start_control_plane,
    start_echo_upstream,
    wait_for,
    wait_until_up,
)
from tests.factories import make_org_with_cluster
from tests.images.containers import (
    Container,
    create,
    health,
    image_exists,
    sbom_of,
    sbom_versions,
    start_control_plane_command,
    wait_healthy,
)

pytestmark = [pytest.mark.images, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

IMAGE = gateway_image()
NEXT_TAG = f"{IMAGE.tag}-next"
NEXT = f"localhost/gateway-agent:{NEXT_TAG}"
KEY = "a-very-secret-api-key-1"


class Balancer(socketserver.ThreadingTCPServer):
    """What a Service does in front of the gateway's pods: each new connection goes to the one
    backend port in `backend`; connections already made stay where they are."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, backend: int) -> None:
        self.backend = backend
        super().__init__(("127.0.0.1", 0), _Pipe)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Pipe(socketserver.BaseRequestHandler):
    server: Balancer

    def handle(self) -> None:
        client: socket.socket = self.request
        try:
            upstream = socket.create_connection(("127.0.0.1", self.server.backend), timeout=5)
        except OSError:
            return
        with upstream, selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            open_ends = 2
            while open_ends:
                for key, _ in selector.select(timeout=30):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:
                        selector.unregister(source)
                        with contextlib.suppress(OSError):
                            key.data.shutdown(socket.SHUT_WR)
                        open_ends -= 1
                    else:
                        key.data.sendall(data)


@pytest.fixture(scope="module")
def next_image() -> Iterator[str]:
    """The next version of the gateway image, as a release tags it: the image built, with its
    version moved on (org.opencontainers.image.version)."""
    if not image_exists(IMAGE.reference):
        pytest.fail(f"{IMAGE.reference} is not built: `make test-images` builds it (make images).")
    name = f"gateway-next-{os.getpid()}"
    subprocess.run(
        ["buildah", "from", "--pull-never", "--quiet", "--name", name, IMAGE.reference], check=True
    )
    try:
        subprocess.run(
            ["buildah", "config", "--label", f"org.opencontainers.image.version={NEXT_TAG}", name], check=True
        )
        subprocess.run(["buildah", "commit", "--quiet", "--format", "docker", name, NEXT], check=True)
    finally:
        subprocess.run(["buildah", "rm", name], check=False, capture_output=True)
    yield NEXT
    subprocess.run(["buildah", "rmi", NEXT], check=False, capture_output=True)


def _catalog(upstream_port: int) -> tuple:
    from saas.catalog import services as catalog
    from saas.gateways.services import create_cluster_token

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author, cluster, {"name": "echo", "targets": [{"host": "127.0.0.1", "port": upstream_port}]}
        )
        catalog.save_service(
            author, cluster, {"name": "orders", "upstream": "echo", "plugins": {"key-auth": {}}}
        )
        catalog.save_route(
            author, cluster, {"name": "orders", "service": "orders", "paths": [{"value": "/orders"}]}
        )
        consumer = catalog.save_consumer(author, cluster, {"username": "app"})
        catalog.add_credential(author, consumer, {"type": "key-auth", "key": KEY})
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()
    return org, cluster, token


def _statuses(org, cluster) -> list[dict]:
    from saas.gateways.agents import instance_statuses

    with schema_context(org.schema_name):
        found = instance_statuses(org.schema_name, cluster.id, org.id)
    connections.close_all()
    return found


def _gateway_env(control_port: int, token: str, http_port: int, metrics_port: int) -> dict[str, str]:
    """What `docker run -e` gives the container: the control plane, the token, its ports."""
    return {
        "GATEWAY_CONTROL_PLANE": f"http://127.0.0.1:{control_port}",
        "GATEWAY_TOKEN": token,
        "GATEWAY_BIND": "127.0.0.1",  # the host's network: not every interface
        "GATEWAY_HTTP_PORT": str(http_port),
        "GATEWAY_HTTPS_PORT": "0",
        "GATEWAY_METRICS_PORT": str(metrics_port),
        "GATEWAY_POLL_WAIT_S": "5",
        "GATEWAY_HEARTBEAT_S": "1",
    }


def _users_in(container: Container) -> set[int]:
    """The real user ids of the started command and everything it started (HAProxy)."""
    assert container.process is not None
    found = set()
    for child in psutil.Process(container.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if "buildah" not in child.name():
                found.add(child.uids().real)
    return found


def test_the_gateway_image_serves_reports_usage_and_is_replaced_without_losing_a_request(
    tmp_path: Path, next_image: str
) -> None:
    from saas.metering.services import BillingPeriod, billable_calls

    config = create(IMAGE.reference, f"gateway-probe-{os.getpid()}")
    config.remove()
    labels = config.config["Labels"]
    assert labels["org.opencontainers.image.version"] == IMAGE.tag
    assert labels["org.opencontainers.image.ref.name"] == IMAGE.reference
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert len(labels["org.opencontainers.image.revision"].removesuffix("-dirty")) == 40
    assert labels["org.gateway-saas.debian.snapshot"] and labels["org.gateway-saas.debian.release-dates"]
    assert config.config["User"] == "10001"
    assert config.config["Entrypoint"] == ["/opt/gateway-agent/bin/gateway-agent"]
    # Its SBOM describes this image: HAProxy from Debian, the agent at its version.
    sbom = sbom_of(IMAGE.reference)
    assert sbom_versions(sbom, "deb")["haproxy"].startswith("2.6.")
    assert sbom_versions(sbom, "pypi")["gateway-agent"] == IMAGE.tag

    upstream = start_echo_upstream()
    org, cluster, token = _catalog(upstream.server_address[1])
    control_port = free_port()
    control = start_control_plane(control_port, env_sharing_test_database())
    made: list[Container] = []  # removed at the end, whatever happens
    volume_a, volume_b = tmp_path / "data-a", tmp_path / "data-b"
    for volume in (volume_a, volume_b):
        volume.mkdir()
        os.chown(volume, 10001, -1)  # the image's user
    calls = 0  # every request the gateway answered (what billing must count)
    try:
        # The usage consumer: the control plane image's `consumer` command.
        made.append(
            start_control_plane_command("consumer", f"consumer-{os.getpid()}", tmp_path / "consumer.log")
        )
        first, second, third = (
            create(reference, f"gateway-{name}-{os.getpid()}")
            for name, reference in (("a", IMAGE.reference), ("b", next_image), ("c", next_image))
        )
        made += [first, second, third]
        wait_until_up(control_port)

        # --- the image as released: it registers, applies the snapshot, serves with key-auth.
        port_a, port_b = free_port(), free_port()
        first.start(
            None,
            _gateway_env(control_port, token, port_a, free_port()),
            volumes=[f"{volume_a}:/var/lib/gateway-agent"],
            log=tmp_path / "a.log",
        )
        gateway_a = f"http://127.0.0.1:{port_a}"
        answered = wait_for(
            lambda: httpx.get(f"{gateway_a}/orders/1", headers={"apikey": KEY}, timeout=2), timeout=90
        )
        calls += 1
        assert answered.status_code == 200, answered.text  # type: ignore[attr-defined]
        assert answered.json()["path"] == "/orders/1"  # type: ignore[attr-defined]
        refused = httpx.get(f"{gateway_a}/orders/1", timeout=2)
        calls += 1
        assert refused.status_code == 401 and refused.json()["message"] == "Missing API key"
        wrong = httpx.get(f"{gateway_a}/orders/1", headers={"apikey": "not-the-key-at-all"}, timeout=2)
        calls += 1
        assert wrong.status_code == 401
        [status] = wait_for(
            lambda: [s for s in _statuses(org, cluster) if s["applied_version"] == s["latest_version"]]
        )  # type: ignore[misc]
        assert status["status"] == "online" and status["haproxy_version"].startswith("2.6")
        assert _users_in(first) == {10001}  # the agent and HAProxy, never root
        assert health(first) == 0  # the image's HEALTHCHECK

        # --- the next version replaces it, one instance at a time, traffic running throughout.
        balancer = Balancer(port_a)
        results: list[int] = []
        stop = threading.Event()

        def traffic() -> None:
            while not stop.is_set():
                try:
                    # A new connection each time: the balancer sends it where it sends them now.
                    code = httpx.get(
                        f"http://127.0.0.1:{balancer.port}/orders/{len(results)}",
                        headers={"apikey": KEY, "Connection": "close"},
                        timeout=10,
                    ).status_code
                except httpx.TransportError as exc:
                    code = -1
                    print("lost:", repr(exc))
                results.append(code)
                time.sleep(0.01)

        runner = threading.Thread(target=traffic)
        runner.start()
        try:
            wait_for(lambda: len(results) >= 50, timeout=30)
            second.start(
                None,
                _gateway_env(control_port, token, port_b, free_port()),
                volumes=[f"{volume_b}:/var/lib/gateway-agent"],
                log=tmp_path / "b.log",
            )
            wait_healthy(second, timeout=90)
            ready = wait_for(
                lambda: httpx.get(
                    f"http://127.0.0.1:{port_b}/orders/ready", headers={"apikey": KEY}, timeout=2
                )
            )
            calls += 1
            assert ready.status_code == 200  # type: ignore[attr-defined]
            wait_for(
                lambda: (
                    len(online := [s for s in _statuses(org, cluster) if s["status"] == "online"]) == 2
                    and all(s["applied_version"] == s["latest_version"] for s in online)
                ),
                timeout=30,
            )
            balancer.backend = port_b  # the new pod is ready: the Service sends new connections there
            before_stop = len(results)
            wait_for(lambda: len(results) >= before_stop + 20, timeout=30)
            assert first.stop(timeout=60) == 0  # as `docker stop`: SIGTERM, then a clean exit
            first.remove()  # and nothing of it left running
            after_stop = len(results)
            wait_for(lambda: len(results) >= after_stop + 50, timeout=30)
        finally:
            stop.set()
            runner.join(timeout=30)
            balancer.shutdown()
            balancer.server_close()
        calls += len(results)
        assert results and set(results) == {200}, {code: results.count(code) for code in set(results)}
        assert httpx.get(f"http://127.0.0.1:{port_b}/orders/x", headers={"apikey": KEY}).status_code == 200
        calls += 1
        assert health(second) == 0

        # --- usage: every call billed once, from both instances. What the first one counted at
        # its stop waits in its volume's spool: the next version started on that volume (as
        # `docker run -v` of the new image) delivers it.
        third.start(
            None,
            _gateway_env(control_port, token, free_port(), free_port()),
            volumes=[f"{volume_a}:/var/lib/gateway-agent"],
            log=tmp_path / "c.log",
        )
        period = BillingPeriod.containing(timezone_now())

        def billed() -> int:
            value = billable_calls(org, period)
            connections.close_all()
            return value

        wait_for(lambda: billed() >= calls, timeout=60, interval=0.5, what=f"{calls} calls billed")
        time.sleep(3)  # more rounds of the agent's counting: nothing more arrives
        assert billed() == calls
        assert second.stop(timeout=60) == 0
        assert third.stop(timeout=60) == 0
    finally:
        for container in made:
            container.remove()
        if control.poll() is None:
            control.terminate()
            control.wait(timeout=20)
        upstream.shutdown()
