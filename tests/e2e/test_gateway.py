"""End to end: a real control plane, the real agent and HAProxy, and an upstream on loopback.
A published snapshot is served; key-auth refuses and admits; a change reaches the gateway; the
gateway keeps serving with the control plane down and across an agent crash."""

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from django.db import connections
from django.utils.timezone import now as timezone_now
from django_tenants.utils import schema_context

from saas.launcher.services import free_port
from tests.control_plane import (
    env_sharing_test_database,
    serving_worker_pid,
    start_agent,
    start_control_plane,
    start_echo_upstream,
    stop_gateway,
    wait_for,
)
from tests.factories import add_reloading_route, make_org_with_cluster

ROOT = Path(__file__).resolve().parents[2]


def _start_gateway(token: str, tmp_path: Path) -> tuple[str, Path, subprocess.Popen, list[subprocess.Popen]]:
    """A control plane and one agent with its HAProxy: (gateway URL, data folder, control
    plane, [agent])."""
    control_port, http_port = free_port(), free_port()
    data_dir = tmp_path / "agent"
    control = _start_control_plane(control_port)
    agent = _start_agent(control_port, token, data_dir, http_port, free_port())
    return f"http://127.0.0.1:{http_port}", data_dir, control, [agent]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _start_control_plane(port: int) -> subprocess.Popen:
    env = env_sharing_test_database()
    process = start_control_plane(port, env)
    wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200)
    return process


def _tear_down(
    agents: list, data_dir: Path, control: subprocess.Popen, upstream: ThreadingHTTPServer
) -> None:
    """Stop the agents, any HAProxy they left, the control plane and the upstream."""
    for process in agents:
        stop_gateway(process, data_dir)
    if control.poll() is None:
        control.terminate()
        control.wait(timeout=20)
    upstream.shutdown()


def _start_agent(
    control_port: int, token: str, data_dir: Path, http_port: int, metrics_port: int
) -> subprocess.Popen:
    """An agent that polls and reports often, so tests see changes quickly."""
    return start_agent(
        control_port,
        token,
        data_dir,
        http_port,
        metrics_port=metrics_port,
        extra=("--poll-wait", "5", "--heartbeat-interval", "1"),
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gateway_serves_what_the_control_plane_publishes(tmp_path):
    from saas.catalog import services as catalog
    from saas.gateways.agents import instance_statuses
    from saas.gateways.services import create_cluster_token

    upstream = start_echo_upstream()
    upstream_port = upstream.server_address[1]

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author, cluster, {"name": "echo", "targets": [{"host": "127.0.0.1", "port": upstream_port}]}
        )
        catalog.save_service(
            author, cluster, {"name": "orders", "upstream": "echo", "plugins": {"key-auth": {}}}
        )
        catalog.save_route(
            author,
            cluster,
            {
                "name": "orders",
                "service": "orders",
                "paths": [{"value": "/orders"}],
                "strip_path_prefix": "/orders",
                "plugins": {"proxy-rewrite": {"headers": {"set": {"X-Gateway": "ours"}}}},
            },
        )
        consumer = catalog.save_consumer(author, cluster, {"username": "app"})
        catalog.add_credential(author, consumer, {"type": "key-auth", "key": "a-very-secret-api-key-1"})
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()

    control_port, http_port, metrics_port = free_port(), free_port(), free_port()
    gateway = f"http://127.0.0.1:{http_port}"
    data_dir = tmp_path / "agent"
    control = _start_control_plane(control_port)
    agent = _start_agent(control_port, token, data_dir, http_port, metrics_port)
    agents = [agent]
    try:
        ok = wait_for(
            lambda: httpx.get(
                f"{gateway}/orders/42", headers={"apikey": "a-very-secret-api-key-1"}, timeout=2
            )
        )
        assert ok.status_code == 200
        echoed = ok.json()
        assert echoed["path"] == "/42"  # strip_path_prefix
        headers = {name.lower(): value for name, value in echoed["headers"].items()}
        assert headers["x-gateway"] == "ours"  # proxy-rewrite
        missing = httpx.get(f"{gateway}/orders/42")
        assert missing.status_code == 401 and missing.json() == {
            "error": "unauthorized",
            "message": "Missing API key",
        }
        wrong = httpx.get(f"{gateway}/orders/42", params={"apikey": "wrong-key-wrong-key"})
        assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid API key"
        assert httpx.get(f"{gateway}/orders/1?apikey=a-very-secret-api-key-1").status_code == 200
        nothing = httpx.get(f"{gateway}/nowhere")
        assert nothing.status_code == 404 and nothing.json()["error"] == "not_found"
        assert "haproxy_process" in httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text

        # A change reaches the gateway within a second or so.
        with schema_context(org.schema_name):
            catalog.save_route(
                author, cluster, {"name": "shop", "service": "orders", "paths": [{"value": "/shop"}]}
            )
        connections.close_all()
        started = time.monotonic()
        wait_for(
            lambda: (
                httpx.get(f"{gateway}/shop", headers={"apikey": "a-very-secret-api-key-1"}).status_code == 200
            ),
            timeout=10,
            interval=0.05,
        )
        assert time.monotonic() - started < 3

        # The instance is online, with the latest version applied.
        with schema_context(org.schema_name):
            status = wait_for(
                lambda: [
                    s
                    for s in instance_statuses(org.schema_name, cluster.id, org.id)
                    if s["applied_version"] == s["latest_version"]
                ]
            )[0]
        connections.close_all()
        assert status["status"] == "online" and status["haproxy_version"].startswith("2.")

        # limit-count: a fixed window, exact at its edge, with the rate-limit headers.
        with schema_context(org.schema_name):
            catalog.save_route(
                author,
                cluster,
                {
                    "name": "limited",
                    "service": "orders",
                    "paths": [{"value": "/limited"}],
                    "plugins": {"limit-count": {"count": 2, "time_window": 1, "key": "route"}},
                },
            )
        connections.close_all()
        key = {"apikey": "a-very-secret-api-key-1"}
        wait_for(lambda: httpx.get(f"{gateway}/limited", headers=key).status_code in (200, 429))
        time.sleep(1.05 - (time.time() % 1))  # the start of a window
        answers = [httpx.get(f"{gateway}/limited", headers=key) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429], [a.text for a in answers]
        assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
        assert answers[0].headers["X-RateLimit-Limit"] == "2"
        assert answers[2].json() == {"error": "rate_limited", "message": "Too many requests"}
        time.sleep(1.05 - (time.time() % 1))  # the next window starts at zero
        assert httpx.get(f"{gateway}/limited", headers=key).status_code == 200

        # A snapshot the gateway refuses: the last good one keeps serving, the error shows.
        from gateway_agent.protocol import document_sha256
        from saas.gateways.models import ConfigSnapshot
        from saas.gateways.snapshots import snapshot_document, store_snapshot

        with schema_context(org.schema_name):
            latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first()
            document = snapshot_document(latest)
            document["routes"][0]["paths"] = [{"type": "regex", "value": "\\N{LATIN SMALL LETTER A}"}]
            from django.db import transaction

            with transaction.atomic():
                refused = store_snapshot(cluster, document, author="test", reason="refused by HAProxy")
        connections.close_all()
        assert refused.sha256 == document_sha256(document)

        def refusal_reported():
            with schema_context(org.schema_name):
                [status] = instance_statuses(org.schema_name, cluster.id, org.id)
            connections.close_all()
            return status if status["last_error"] else None

        status = wait_for(refusal_reported)
        # Refused before HAProxy is asked: the agent checks regexes as HAProxy's PCRE2 compiles them.
        assert f"version {refused.version}" in status["last_error"] and "is invalid" in status["last_error"]
        assert status["applied_version"] == refused.version - 1
        assert httpx.get(f"{gateway}/shop", headers=key).status_code == 200

        # Control plane down: still serving. Agent killed, then restarted while it is down: still serving.
        control.terminate()
        control.wait(timeout=20)
        assert httpx.get(f"{gateway}/shop", headers={"apikey": "a-very-secret-api-key-1"}).status_code == 200
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
        assert httpx.get(f"{gateway}/shop", headers={"apikey": "a-very-secret-api-key-1"}).status_code == 200
        agent = _start_agent(control_port, token, data_dir, http_port, metrics_port)
        agents.append(agent)
        time.sleep(2)
        assert agent.poll() is None
        assert httpx.get(f"{gateway}/shop", headers={"apikey": "a-very-secret-api-key-1"}).status_code == 200

        # Agent and HAProxy both gone, the control plane still down: the agent starts HAProxy
        # again from the last good snapshot on disk.
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
        master = int((data_dir / "run" / "haproxy.pid").read_text().split()[0])
        os.kill(master, signal.SIGTERM)
        wait_for(lambda: not _alive(master), timeout=10)
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{gateway}/shop", timeout=1)
        agent = _start_agent(control_port, token, data_dir, http_port, metrics_port)
        agents.append(agent)
        restarted = wait_for(
            lambda: httpx.get(f"{gateway}/shop", headers={"apikey": "a-very-secret-api-key-1"}, timeout=1)
        )
        assert restarted.status_code == 200
    finally:
        _tear_down(agents, data_dir, control, upstream)


def _peer_common_name(port: int, server_name: str) -> str:
    import socket
    import ssl

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    certificate = x509.load_der_x509_certificate(der)
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_tls_by_sni_and_a_dead_target_ejected_by_health_checks(tmp_path):
    from saas.catalog import services as catalog
    from saas.gateways.services import create_cluster_token
    from tests.factories import self_signed_certificate

    upstream = start_echo_upstream()
    dead_port = free_port()  # nothing listens there
    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author,
            cluster,
            {
                "name": "pair",
                "targets": [
                    {"host": "127.0.0.1", "port": upstream.server_address[1]},
                    {"host": "127.0.0.1", "port": dead_port},
                ],
                "active_health_check": {
                    "path": "/",
                    "interval_s": 0.5,
                    "healthy_threshold": 1,
                    "unhealthy_threshold": 1,
                },
                "retries": 0,
            },
        )
        catalog.save_service(author, cluster, {"name": "svc", "upstream": "pair"})
        catalog.save_route(author, cluster, {"name": "all", "service": "svc", "paths": [{"value": "/"}]})
        for host in ("a.example.com", "b.example.com"):
            cert, key = self_signed_certificate(host)
            catalog.save_certificate(author, cluster, {"name": host, "certificate": cert, "private_key": key})
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()

    control_port, http_port, https_port, metrics_port = free_port(), free_port(), free_port(), free_port()
    data_dir = tmp_path / "agent"
    control = _start_control_plane(control_port)
    agent = start_agent(
        control_port,
        token,
        data_dir,
        http_port,
        https_port=https_port,
        metrics_port=metrics_port,
        extra=("--poll-wait", "5"),
    )
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{http_port}/", timeout=2).status_code == 200)
        assert _peer_common_name(https_port, "a.example.com") == "a.example.com"
        assert _peer_common_name(https_port, "b.example.com") == "b.example.com"
        time.sleep(2)  # the health check marks the dead target down (retries are off)
        statuses = [httpx.get(f"http://127.0.0.1:{http_port}/n{i}").status_code for i in range(20)]
        assert statuses == [200] * 20
        answer = httpx.get(
            f"https://127.0.0.1:{https_port}/x",
            verify=False,  # noqa: S501 - a self-signed test certificate
            headers={"Host": "a.example.com"},
        )
        assert answer.status_code == 200 and answer.json()["path"] == "/x"
    finally:
        _tear_down([agent], data_dir, control, upstream)


def _named_echo(name: str) -> ThreadingHTTPServer:
    """An upstream that says who it is, which method it saw and for which consumer."""

    class Named(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            consumer = self.headers.get("X-Consumer-Username")
            body = json.dumps(
                {"server": name, "method": self.command, "path": self.path, "consumer": consumer}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Named)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_route_matching_and_changes_taken_without_a_reload(tmp_path):
    """Routes match by priority, host, method and header. Consumers, simple routes and server
    weights then change while the gateway runs, through HAProxy's runtime API: the rate-limit
    counters of a route go on counting through all of it."""
    from saas.catalog import services as catalog
    from saas.catalog.models import Upstream
    from saas.gateways.services import create_cluster_token

    blue, green = _named_echo("blue"), _named_echo("green")
    org, author, cluster = make_org_with_cluster()

    def target(server: ThreadingHTTPServer, weight: int = 100) -> dict:
        return {"host": "127.0.0.1", "port": server.server_address[1], "weight": weight}

    with schema_context(org.schema_name):
        for name, server in (("blue", blue), ("green", green)):
            catalog.save_upstream(author, cluster, {"name": name, "targets": [target(server)]})
            catalog.save_service(author, cluster, {"name": name, "upstream": name})
        catalog.save_upstream(author, cluster, {"name": "both", "targets": [target(blue), target(green)]})
        catalog.save_service(author, cluster, {"name": "both", "upstream": "both"})
        catalog.save_service(
            author, cluster, {"name": "keyed", "upstream": "blue", "plugins": {"key-auth": {}}}
        )
        routes = [
            {"name": "get", "service": "blue", "paths": [{"value": "/m"}], "methods": ["GET"]},
            {"name": "post", "service": "green", "paths": [{"value": "/m"}], "methods": ["POST"]},
            {"name": "area", "service": "blue", "paths": [{"value": "/area"}], "methods": ["GET"]},
            {"name": "area-open", "service": "green", "paths": [{"value": "/area/open"}]},
            {"name": "low", "service": "blue", "paths": [{"value": "/p"}]},
            {"name": "high", "service": "green", "paths": [{"value": "/p"}], "priority": 5},
            {"name": "host", "service": "green", "paths": [{"value": "/h"}], "hosts": ["api.example.com"]},
            {
                "name": "hosts",
                "service": "green",
                "paths": [{"value": "/w"}],
                "hosts": ["exact.example.org", "*.example.net"],
            },
            {"name": "nohost", "service": "blue", "paths": [{"value": "/h"}], "priority": -1},
            {
                "name": "beta",
                "service": "green",
                "paths": [{"value": "/b"}],
                "headers": [{"name": "X-Beta", "value": "yes"}],
            },
            {"name": "stable", "service": "blue", "paths": [{"value": "/b"}], "priority": -1},
            {"name": "shop", "service": "blue", "paths": [{"value": "/shop"}]},
            {"name": "both", "service": "both", "paths": [{"value": "/both"}]},
            {"name": "keyed", "service": "keyed", "paths": [{"value": "/keyed"}]},
            {
                "name": "counted",
                "service": "blue",
                "paths": [{"value": "/counted"}],
                "plugins": {"limit-count": {"count": 3, "time_window": 3600, "key": "route"}},
            },
        ]
        for route in routes:
            catalog.save_route(author, cluster, route)
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()

    gateway, data_dir, control, agents = _start_gateway(token, tmp_path)

    def server_for(path: str, method: str = "GET", **headers: str) -> str:
        return str(httpx.request(method, f"{gateway}{path}", headers=headers, timeout=2).json()["server"])

    try:
        wait_for(lambda: httpx.get(f"{gateway}/m", timeout=2).status_code == 200)
        assert server_for("/m") == "blue" and server_for("/m", "POST") == "green"  # by method
        # A route naming the method before an any-method one, even one with a longer prefix.
        assert server_for("/area/open/x") == "blue" and server_for("/area/open/x", "POST") == "green"
        assert server_for("/shop/x") == server_for("/shop/x", "POST") == "blue"
        assert server_for("/p") == "green"  # by priority
        assert server_for("/h", host="api.example.com") == "green"  # by host
        assert server_for("/h", host="API.example.com:8080") == "green"
        assert server_for("/h", host="other.example.com") == "blue"
        # An exact and a wildcard host: either, with the route's path (not any path).
        assert server_for("/w", host="exact.example.org") == server_for("/w", host="a.example.net") == "green"
        assert server_for("/h", host="a.example.net") == "blue"
        assert server_for("/b", **{"X-Beta": "yes"}) == "green"  # by header
        assert server_for("/b", **{"X-Beta": "no"}) == "blue"

        if 3600 - time.time() % 3600 < 60:  # stay inside one rate-limit window
            time.sleep(3600 - time.time() % 3600 + 1)
        used = [httpx.get(f"{gateway}/counted") for _ in range(2)]
        assert [a.headers["X-RateLimit-Remaining"] for a in used] == ["2", "1"]

        # A consumer and its key, at runtime.
        with schema_context(org.schema_name):
            consumer = catalog.save_consumer(author, cluster, {"username": "late"})
            catalog.add_credential(author, consumer, {"type": "key-auth", "key": "a-key-added-at-runtime"})
        connections.close_all()
        wait_for(
            lambda: (
                httpx.get(f"{gateway}/keyed", headers={"apikey": "a-key-added-at-runtime"}).status_code == 200
            ),
            interval=0.05,
        )
        # One kept connection: each key finds its own consumer, and a deleted key is refused at
        # once (a connection remembers its last key's hash, never whether it was valid). The
        # consumer is in another shard (ids 2000 to 2999): its changes send that shard alone,
        # and the agent keeps the first from disk.
        with schema_context(org.schema_name):
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT setval(pg_get_serial_sequence('catalog_consumer', 'id'), 2500)")
            other = catalog.save_consumer(author, cluster, {"username": "other"})
            credential, _ = catalog.add_credential(
                author, other, {"type": "key-auth", "key": "another-key-at-runtime"}
            )
        connections.close_all()
        kept = http.client.HTTPConnection("127.0.0.1", int(gateway.rsplit(":", 1)[1]), timeout=5)

        def keyed(key: str) -> tuple[int, str | None]:
            kept.request("GET", "/keyed", headers={"apikey": key})
            answer = kept.getresponse()
            body = json.loads(answer.read())
            return answer.status, body.get("consumer")

        try:
            wait_for(lambda: keyed("another-key-at-runtime") == (200, "other"), interval=0.05)
            connection = kept.sock
            assert keyed("a-key-added-at-runtime") == (200, "late")
            assert keyed("another-key-at-runtime") == (200, "other")
            assert keyed("another-key-at-runtime") == (200, "other")
            with schema_context(org.schema_name):
                catalog.delete_credential(author, credential)
            connections.close_all()
            wait_for(lambda: keyed("another-key-at-runtime")[0] == 401, interval=0.05)
            assert keyed("a-key-added-at-runtime") == (200, "late")
            assert len(list((data_dir / "shards").glob("*.json"))) == 2
            assert kept.sock is connection  # one connection throughout
        finally:
            kept.close()
        # A longer prefix added later wins over the shorter one.
        with schema_context(org.schema_name):
            catalog.save_route(
                author, cluster, {"name": "deeper", "service": "green", "paths": [{"value": "/shop/cart"}]}
            )
        connections.close_all()
        wait_for(lambda: server_for("/shop/cart/1") == "green", interval=0.05)
        assert server_for("/shop/other") == "blue"
        # Server weights: green's target in "both" drained.
        assert {server_for(f"/both/{i}") for i in range(10)} == {"blue", "green"}
        with schema_context(org.schema_name):
            both = Upstream.objects.get(cluster=cluster, name="both")
            catalog.save_upstream(
                author,
                cluster,
                {"name": "both", "targets": [target(blue), target(green, weight=0)]},
                instance=both,
            )
        connections.close_all()
        wait_for(lambda: {server_for(f"/both/{i}") for i in range(10)} == {"blue"}, interval=0.05)

        # The counter went on from where it was: no reload happened on the way.
        last = [httpx.get(f"{gateway}/counted") for _ in range(2)]
        assert [a.status_code for a in last] == [200, 429]
        assert last[0].headers["X-RateLimit-Remaining"] == "0"
    finally:
        _tear_down(agents, data_dir, control, blue)
        green.shutdown()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_rate_limit_counters_outlive_a_reload(tmp_path):
    """A change that needs a reload starts a new HAProxy worker with empty tables; the agent
    carries limit-count's counters of the current window over, for routes and consumers alike,
    so a configuration change gives nobody a fresh window."""
    from saas.catalog import services as catalog
    from saas.gateways.services import create_cluster_token

    upstream = start_echo_upstream()
    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        port = upstream.server_address[1]
        catalog.save_upstream(
            author, cluster, {"name": "echo", "targets": [{"host": "127.0.0.1", "port": port}]}
        )
        catalog.save_service(author, cluster, {"name": "echo", "upstream": "echo"})
        per_route = {"limit-count": {"count": 3, "time_window": 3600, "key": "route"}}
        catalog.save_route(
            author,
            cluster,
            {"name": "r", "service": "echo", "paths": [{"value": "/r"}], "plugins": per_route},
        )
        per_consumer = {"key-auth": {}, "limit-count": {"count": 2, "time_window": 3600, "key": "consumer"}}
        catalog.save_route(
            author,
            cluster,
            {"name": "c", "service": "echo", "paths": [{"value": "/c"}], "plugins": per_consumer},
        )
        for name in ("ann", "bob"):
            consumer = catalog.save_consumer(author, cluster, {"username": name})
            catalog.add_credential(author, consumer, {"type": "key-auth", "key": f"{name}-key-0123456789"})
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()
    gateway, data_dir, control, agents = _start_gateway(token, tmp_path)

    def remaining(path: str, key: str | None = None) -> str:
        answer = httpx.get(f"{gateway}{path}", headers={"apikey": key} if key else {}, timeout=2)
        return "429" if answer.status_code == 429 else answer.headers["X-RateLimit-Remaining"]

    try:
        wait_for(lambda: httpx.get(f"{gateway}/r", timeout=2).status_code == 200)  # one of three used
        if 3600 - time.time() % 3600 < 60:  # stay inside one window
            time.sleep(3600 - time.time() % 3600 + 1)
            assert remaining("/r") == "2"
        assert remaining("/r") == "1"
        assert remaining("/c", "ann-key-0123456789") == "1"

        # A new plugin setting: applied by a reload, not at runtime.
        before = serving_worker_pid(data_dir)
        add_reloading_route(org, author, cluster, "echo")
        wait_for(lambda: serving_worker_pid(data_dir) not in (None, before), 60, what="the reload")
        wait_for(lambda: httpx.get(f"{gateway}/tagged", timeout=2).status_code == 200)

        assert [remaining("/r") for _ in range(2)] == ["0", "429"]
        assert [remaining("/c", "ann-key-0123456789") for _ in range(2)] == ["0", "429"]
        assert remaining("/c", "bob-key-0123456789") == "1"  # counted apart, from zero
    finally:
        _tear_down(agents, data_dir, control, upstream)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_every_call_through_the_gateway_is_billed_once(tmp_path):
    """Proxied calls, refusals and unmatched paths, across a reload: the bill and the analytics
    count each exactly once, per route and consumer."""
    from saas.catalog import services as catalog
    from saas.catalog.models import Route
    from saas.gateways.agents import instance_statuses
    from saas.gateways.services import create_cluster_token
    from saas.metering.intake_queue import UsageConsumer
    from saas.metering.services import BillingPeriod, billable_calls, traffic

    upstream = start_echo_upstream()
    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author,
            cluster,
            {"name": "echo", "targets": [{"host": "127.0.0.1", "port": upstream.server_address[1]}]},
        )
        catalog.save_service(
            author, cluster, {"name": "orders", "upstream": "echo", "plugins": {"key-auth": {}}}
        )
        catalog.save_route(
            author, cluster, {"name": "orders", "service": "orders", "paths": [{"value": "/orders"}]}
        )
        route_id = Route.objects.get(name="orders").id
        consumer = catalog.save_consumer(author, cluster, {"username": "app"})
        catalog.add_credential(author, consumer, {"type": "key-auth", "key": "a-very-secret-api-key-1"})
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()

    gateway, data_dir, control, agents = _start_gateway(token, tmp_path)
    key = {"apikey": "a-very-secret-api-key-1"}
    sent: list[tuple[str, int]] = []  # (what, status) of every request the gateway answered

    def call(path: str, what: str, **headers: str) -> int:
        try:
            status = httpx.get(f"{gateway}{path}", headers=headers, timeout=2).status_code
        except httpx.ConnectError:
            raise  # never reached the gateway
        except httpx.TransportError:
            sent.append((what, 0))  # reached it, then abandoned: the gateway still counts it
            raise
        sent.append((what, status))
        return status

    try:
        wait_for(lambda: call("/orders", "orders", **key) == 200)

        def traffic_burst(count: int) -> None:
            for i in range(count):
                assert call(f"/orders/{i}", "orders", **key) == 200
                if i % 20 == 0:  # upstream answers counted by their code, or by their class
                    assert call(f"/orders/status/503/{i}", "orders", **key) == 503
                    assert call(f"/orders/status/418/{i}", "orders", **key) == 418
                if i % 4 == 0:
                    assert call(f"/orders/{i}", "orders") == 401
                if i % 10 == 0:
                    assert call(f"/nowhere/{i}", "nowhere") == 404

        traffic_burst(200)
        add_reloading_route(org, author, cluster, "orders")

        def reloaded() -> bool:
            with schema_context(org.schema_name):
                [status] = instance_statuses(org.schema_name, cluster.id, org.id)
            connections.close_all()
            return status["applied_version"] == status["latest_version"]

        # Calls go on while the gateway reloads: the old worker's last ones count too.
        wait_for(lambda: traffic_burst(5) or reloaded(), interval=0)
        assert call("/tagged", "tagged", **key) == 200
        traffic_burst(200)

        period = BillingPeriod.containing(timezone_now())
        consumer_process = UsageConsumer("e2e")

        def billed() -> int:
            consumer_process.drain()
            return billable_calls(org, period)

        wait_for(lambda: billed() >= len(sent), timeout=30, interval=0.5)
        time.sleep(2.5)  # a few more rounds of the agent's counting: nothing more arrives
        assert billed() == len(sent)
        with schema_context(org.schema_name):
            counts = traffic(cluster.id, period.start, period.end, "day")
        by_route = {row["route_id"]: row["requests"] for row in counts["top_routes"]}
        unmatched = sum(
            1 for what, status in sent if status == 404
        )  # /nowhere, and /tagged before it existed
        assert by_route[route_id] == sum(1 for what, _ in sent if what == "orders")
        assert by_route[0] == unmatched
        by_consumer = {row["consumer"]: row["requests"] for row in counts["top_consumers"]}
        # Requests abandoned by the client (status 0, only ever keyed ones here) count as 5xx.
        assert by_consumer["app"] == sum(1 for _, status in sent if status in (200, 418, 503, 0))
        by_status = {"2xx": 0, "4xx": 0, "5xx": 0}
        for _, status in sent:
            by_status["5xx" if status == 0 else f"{status // 100}xx"] += 1
        assert counts["series"][0]["by_status"] == {k: v for k, v in by_status.items() if v}
        # The gateway's own 401 and 404 and the upstream's 503 by their codes; a 418 with the
        # other 4xx, and abandoned requests with the other 5xx.
        by_code = {"2xx": 0, "401": 0, "404": 0, "4xx": 0, "503": 0, "5xx": 0}
        for _, status in sent:
            label = {0: "5xx", 200: "2xx", 418: "4xx"}.get(status, str(status))
            by_code[label] += 1
        assert counts["series"][0]["by_code"] == {k: v for k, v in by_code.items() if v}
    finally:
        _tear_down(agents, data_dir, control, upstream)


@pytest.mark.django_db(transaction=True)
def test_an_agent_registers_once_when_its_threads_race_to_register(tmp_path):
    """The main loop and the heartbeat thread both register an agent that has no instance id
    yet: on a loaded machine the first registration can outlast a heartbeat's interval, and the
    cluster must still list one instance, not two."""
    from gateway_agent.agent import Agent, AgentSettings
    from saas.gateways.models import GatewayInstance
    from saas.gateways.services import create_cluster_token

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        _, token = create_cluster_token(author, cluster, name="gw")
    connections.close_all()
    control_port = free_port()
    control = _start_control_plane(control_port)
    try:
        agent = Agent(AgentSettings(f"http://127.0.0.1:{control_port}", token, tmp_path / "agent"))
        together = threading.Barrier(4)

        def register() -> None:
            together.wait()
            agent.ensure_registered()

        threads = [threading.Thread(target=register) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        with schema_context(org.schema_name):
            registered = [str(i.instance_id) for i in GatewayInstance.objects.filter(cluster=cluster)]
        assert registered == [agent.instance_id]
    finally:
        control.terminate()
        control.wait(timeout=20)
