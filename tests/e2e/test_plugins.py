"""Every plugin on real traffic: the catalog as a user would set it up, compiled to a snapshot,
rendered by the agent's renderer and served by a real HAProxy in front of loopback upstreams.
(The agent's own loop, long-poll and reloads are covered in test_gateway.py.)"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django_tenants.utils import schema_context

from gateway_agent.directives import RenderOptions
from gateway_agent.protocol import Snapshot
from gateway_agent.renderer import render
from saas.launcher.services import free_port

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.django_db


class Upstream(ThreadingHTTPServer):
    name = "upstream"
    calls = 0


class Echo(BaseHTTPRequestHandler):
    """Answers with its server's name, the method, path, headers and body size it saw."""

    server: Upstream
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK

    def _body_size(self) -> int:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            size = 0
            while True:
                length = int(self.rfile.readline().strip() or b"0", 16)
                if length == 0:
                    self.rfile.readline()
                    return size
                size += len(self.rfile.read(length))
                self.rfile.readline()
        return len(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _answer(self) -> None:
        self.server.calls += 1
        body = json.dumps(
            {
                "server": self.server.name,
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body_size": self._body_size(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream-Secret", "internal")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstreams() -> Iterator[dict[str, Upstream]]:
    servers = {}
    for name in ("blue", "green"):
        server = Upstream(("127.0.0.1", 0), Echo)
        server.name = name
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers[name] = server
    yield servers
    for server in servers.values():
        server.shutdown()


class Catalog:
    """One organization's cluster, written through the catalog's service functions."""

    def __init__(self, upstreams: dict[str, Upstream]) -> None:
        from saas.catalog import services as catalog
        from tests.factories import make_org_with_cluster

        self.catalog = catalog
        self.org, self.author, self.cluster = make_org_with_cluster()
        with schema_context(self.org.schema_name):
            for name, server in upstreams.items():
                target = {"host": "127.0.0.1", "port": server.server_address[1]}
                catalog.save_upstream(self.author, self.cluster, {"name": name, "targets": [target]})
                catalog.save_service(self.author, self.cluster, {"name": name, "upstream": name})

    def route(self, name: str, path: str, plugins: dict[str, Any] | None = None, **fields: Any) -> None:
        data = {"name": name, "service": "blue", "paths": [{"value": path}], "plugins": plugins or {}}
        with schema_context(self.org.schema_name):
            self.catalog.save_route(self.author, self.cluster, {**data, **fields})

    def consumer(
        self,
        username: str,
        credential: dict[str, Any],
        plugins: dict[str, Any] | None = None,
        labels: dict[str, str] | None = None,
    ) -> Any:
        data = {"username": username, "plugins": plugins or {}, "labels": labels or {}}
        with schema_context(self.org.schema_name):
            consumer = self.catalog.save_consumer(self.author, self.cluster, data)
            self.catalog.add_credential(self.author, consumer, credential)
        return consumer

    def relabel(self, consumer: Any, labels: dict[str, str]) -> None:
        data = {"username": consumer.username, "plugins": consumer.plugins, "labels": labels}
        with schema_context(self.org.schema_name):
            self.catalog.save_consumer(self.author, self.cluster, data, instance=consumer)

    def global_plugins(self, plugins: dict[str, Any]) -> None:
        with schema_context(self.org.schema_name):
            for name, config in plugins.items():
                self.catalog.set_global_plugin(self.author, self.cluster, name, config)

    def snapshot(self) -> Snapshot:
        from saas.gateways.agents import AgentContext, served_snapshot

        served = served_snapshot(AgentContext(self.org.id, self.org.schema_name, self.cluster.id, 0))
        assert served is not None
        return Snapshot.model_validate(served["document"])

    def served_body(self) -> bytes:
        """The latest snapshot as the control plane answers an agent's poll with it."""
        from saas.gateways.agents import AgentContext, latest_snapshot, served_snapshot_json

        context = AgentContext(self.org.id, self.org.schema_name, self.cluster.id, 0)
        latest = latest_snapshot(context)
        found = served_snapshot_json(context, latest[0]) if latest else None
        assert found is not None
        return found[1]


@pytest.fixture
def world(upstreams: dict[str, Upstream]) -> Catalog:
    return Catalog(upstreams)


@contextlib.contextmanager
def gateway(catalog: Catalog, folder: Path, bind: str = "127.0.0.1") -> Iterator[str]:
    port = free_port()
    options = RenderOptions(
        http_port=port,
        https_port=None,
        metrics_port=None,
        bind_address=bind,
        config_dir=str(folder),
        runtime_socket=str(folder / "haproxy.sock"),
    )
    for name, content in render(catalog.snapshot(), options).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    checked = subprocess.run(
        [HAPROXY, "-c", "-f", str(folder / "haproxy.cfg")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    process = subprocess.Popen([HAPROXY, "-db", "-f", str(folder / "haproxy.cfg")])
    host = f"[{bind}]" if ":" in bind else bind
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((bind, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def agent_gateway(catalog: Catalog, data_dir: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """The real agent, in this process, serving the catalog's latest snapshot through HAProxy:
    (gateway URL, a function applying the catalog's latest snapshot as the agent does with a
    poll's answer: at runtime when it can, by reload otherwise)."""
    from gateway_agent.agent import Agent, AgentSettings

    port = free_port()
    settings = AgentSettings(
        "http://127.0.0.1:9",  # never called: snapshots are handed to `apply`
        "unused",
        data_dir,
        haproxy_bin=HAPROXY,
        http_port=port,
        https_port=None,
        metrics_port=None,
        bind_address="127.0.0.1",
    )
    agent = Agent(settings)
    try:
        agent.apply(catalog.served_body())
        yield f"http://127.0.0.1:{port}", lambda: agent.apply(catalog.served_body())
    finally:
        agent.stop()


def test_cors_preflight_at_the_gateway_and_headers_for_allowed_origins_only(world, upstreams, tmp_path):
    world.route(
        "app",
        "/app",
        {
            "cors": {
                "allow_origins": ["https://app.example.com"],
                "allow_methods": ["GET", "POST"],
                "allow_headers": ["X-Request-Id"],
                "expose_headers": ["X-Total"],
                "max_age": 600,
                "allow_credentials": True,
            }
        },
    )
    world.route("open", "/open", {"cors": {"allow_origins": ["*"]}})
    world.route("locked", "/locked", {"cors": {"allow_origins": ["https://app.example.com"]}, "key-auth": {}})
    with gateway(world, tmp_path) as url:
        preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
        answer = httpx.options(f"{url}/app/items", headers=preflight)
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
        assert answer.headers["access-control-allow-methods"] == "GET,POST"
        assert answer.headers["access-control-allow-headers"] == "X-Request-Id"
        assert answer.headers["access-control-max-age"] == "600"
        assert answer.headers["access-control-allow-credentials"] == "true"
        calls = upstreams["blue"].calls
        refused = httpx.options(f"{url}/app/items", headers={**preflight, "Origin": "https://evil.example"})
        assert refused.status_code == 204 and "access-control-allow-origin" not in refused.headers
        assert upstreams["blue"].calls == calls  # preflights never reach the upstream

        simple = httpx.get(f"{url}/app/items", headers={"Origin": "https://app.example.com"})
        assert simple.status_code == 200
        assert simple.headers["access-control-allow-origin"] == "https://app.example.com"
        assert simple.headers["access-control-expose-headers"] == "X-Total"
        assert "Origin" in simple.headers["vary"]
        other = httpx.get(f"{url}/app/items", headers={"Origin": "https://evil.example"})
        assert other.status_code == 200 and "access-control-allow-origin" not in other.headers

        wildcard = httpx.options(
            f"{url}/open",
            headers={
                "Origin": "https://any.example",
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "X-One, X-Two",
            },
        )
        assert wildcard.headers["access-control-allow-origin"] == "*"
        assert wildcard.headers["access-control-allow-headers"] == "X-One, X-Two"
        assert "access-control-allow-credentials" not in wildcard.headers
        # The gateway's own refusals carry the headers too, so the page can read why.
        locked = httpx.get(f"{url}/locked", headers={"Origin": "https://app.example.com"})
        assert locked.status_code == 401
        assert locked.headers["access-control-allow-origin"] == "https://app.example.com"
        assert answer.headers.get_list("vary") == ["Origin"]


def test_a_cors_preflight_is_answered_before_authentication_on_routes_naming_their_methods(
    world: Catalog, tmp_path: Path
) -> None:
    """A developer portal's route: key-auth, consumer-restriction and cors, matching GET alone
    (as an OpenAPI import makes them). A browser's preflight (OPTIONS, no key) is answered 204
    with the CORS headers, before authentication, although the route does not match OPTIONS
    itself; the call it announces still needs the key. Routes without cors keep answering a
    preflight as before: 404 when no route matches OPTIONS, the route's own plugins when one does."""
    origin = "http://portal.example.com"
    portal_route = {
        "key-auth": {},
        "consumer-restriction": {"labels": {"portal-version-1": "subscribed"}},
        "cors": {"allow_origins": [origin], "allow_headers": ["apikey", "Content-Type"], "max_age": 600},
    }
    world.route("pet", "", portal_route, paths=[{"type": "regex", "value": "^/pets/[^/]+$"}], methods=["GET"])
    world.route("inventory", "/inventory", portal_route, methods=["GET"])
    world.route("plain", "/plain", {"key-auth": {}}, methods=["GET"])
    world.route("anything", "/anything", {"key-auth": {}})  # every method, no cors
    world.route("sold", "/sold", {**portal_route, "key-auth": {"header": "X-Key"}})  # every method
    key = "a-developers-key-0123456789"
    world.consumer(
        "portal-app-1", {"type": "key-auth", "key": key}, labels={"portal-version-1": "subscribed"}
    )
    world.consumer("someone", {"type": "key-auth", "key": "someone-elses-key-0123"})
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "apikey",
    }
    with gateway(world, tmp_path) as url:
        for path in ("/pets/1", "/inventory", "/sold"):
            answer = httpx.options(f"{url}{path}", headers=preflight)
            assert answer.status_code == 204, (path, answer.status_code, answer.text)
            assert answer.headers["access-control-allow-origin"] == origin
            assert answer.headers["access-control-allow-headers"] == "apikey,Content-Type"
            assert answer.headers["access-control-max-age"] == "600"
            assert answer.headers.get_list("vary") == ["Origin"]
            assert answer.content == b""
            # Another origin: answered, without a CORS header (the browser refuses).
            other = httpx.options(f"{url}{path}", headers={**preflight, "Origin": "https://evil.example"})
            assert other.status_code == 204 and "access-control-allow-origin" not in other.headers
        # A method no route takes: the 404 it was.
        missing = httpx.options(
            f"{url}/pets/1", headers={**preflight, "Access-Control-Request-Method": "DELETE"}
        )
        assert missing.status_code == 404
        # The calls themselves: the key, and a subscribed consumer, still required; the
        # gateway's refusals readable by the page.
        for path in ("/pets/1", "/inventory"):
            refused = httpx.get(f"{url}{path}", headers={"Origin": origin})
            assert refused.status_code == 401 and refused.json()["message"] == "Missing API key"
            assert refused.headers["access-control-allow-origin"] == origin
            stranger = httpx.get(
                f"{url}{path}", headers={"Origin": origin, "apikey": "someone-elses-key-0123"}
            )
            assert stranger.status_code == 403
            called = httpx.get(f"{url}{path}", headers={"Origin": origin, "apikey": key})
            assert called.status_code == 200, called.text
            assert called.headers["access-control-allow-origin"] == origin
            assert called.json()["headers"]["x-consumer-username"] == "portal-app-1"
        assert httpx.get(f"{url}/sold", headers={"Origin": origin, "X-Key": key}).status_code == 200
        # An OPTIONS request that is no preflight goes through the route's plugins, as before.
        assert httpx.options(f"{url}/sold", headers={"Origin": origin}).status_code == 401
        # Routes without cors: unchanged.
        assert httpx.options(f"{url}/plain", headers=preflight).status_code == 404
        plain = httpx.options(f"{url}/anything", headers=preflight)
        assert plain.status_code == 401 and "access-control-allow-origin" not in plain.headers


def test_ip_restriction_allows_and_denies_ipv4_and_ipv6(world, tmp_path):
    world.route("inside", "/inside", {"ip-restriction": {"allowlist": ["127.0.0.0/8", "::1"]}})
    world.route("outside", "/outside", {"ip-restriction": {"allowlist": ["10.0.0.0/8", "2001:db8::/32"]}})
    world.route("blocked", "/blocked", {"ip-restriction": {"denylist": ["127.0.0.1", "::1/128"]}})
    for bind in ("127.0.0.1", "::1"):
        with gateway(world, tmp_path / bind.replace(":", "_"), bind=bind) as url:
            assert httpx.get(f"{url}/inside").status_code == 200
            refused = httpx.get(f"{url}/outside")
            assert refused.status_code == 403
            assert refused.json() == {"error": "forbidden", "message": "Your IP address is not allowed"}
            assert httpx.get(f"{url}/blocked").status_code == 403


def test_redirect_mocking_and_response_rewrite(world, upstreams, tmp_path):
    world.route("moved", "/old", {"redirect": {"uri": "https://example.com/new?x=100%", "status_code": 301}})
    world.route("secure", "/login", {"redirect": {"http_to_https": True, "status_code": 308}})
    world.route(
        "mock",
        "/mock",
        {
            "mocking": {
                "status_code": 201,
                "content_type": "application/json",
                "headers": {"X-Mocked": "yes"},
                "body": '{"id": 7}',
            }
        },
    )
    world.route(
        "rewritten",
        "/rewritten",
        {
            "response-rewrite": {
                "status_code": 202,
                "headers": {
                    "set": {"X-Frame-Options": "DENY"},
                    "add": {"X-Extra": "1"},
                    "remove": ["X-Upstream-Secret"],
                },
            }
        },
    )
    with gateway(world, tmp_path) as url:
        moved = httpx.get(f"{url}/old/page")
        assert moved.status_code == 301 and moved.headers["location"] == "https://example.com/new?x=100%"
        secure = httpx.get(f"{url}/login/form?next=1", headers={"Host": "shop.example.com"})
        assert secure.status_code == 308
        assert secure.headers["location"] == "https://shop.example.com/login/form?next=1"

        calls = upstreams["blue"].calls
        mocked = httpx.get(f"{url}/mock/anything")
        assert mocked.status_code == 201 and mocked.json() == {"id": 7}
        assert mocked.headers["x-mocked"] == "yes" and mocked.headers["content-type"] == "application/json"
        assert upstreams["blue"].calls == calls

        rewritten = httpx.get(f"{url}/rewritten")
        assert rewritten.status_code == 202 and rewritten.json()["server"] == "blue"
        assert rewritten.headers["x-frame-options"] == "DENY" and rewritten.headers["x-extra"] == "1"
        assert "x-upstream-secret" not in rewritten.headers


def test_request_size_limit_by_content_length_and_streamed_body(world, tmp_path):
    world.route("upload", "/upload", {"request-size-limit": {"max_body_bytes": 1000}})
    with gateway(world, tmp_path) as url:
        assert httpx.post(f"{url}/upload", content=b"x" * 1000).json()["body_size"] == 1000
        too_big = httpx.post(f"{url}/upload", content=b"x" * 1001)
        assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"

        def streamed(size: int) -> Iterator[bytes]:
            for start in range(0, size, 100):
                yield b"y" * min(100, size - start)

        assert httpx.post(f"{url}/upload", content=streamed(900)).json()["body_size"] == 900
        assert httpx.post(f"{url}/upload", content=streamed(5000)).status_code == 413


def test_traffic_split_by_weight_and_by_rules(world, tmp_path):
    world.route(
        "canary",
        "/canary",
        {
            "traffic-split": {
                "weighted_upstreams": [
                    {"upstream": "blue", "weight": 90},
                    {"upstream": "green", "weight": 10},
                ]
            }
        },
    )
    world.route(
        "beta",
        "/beta",
        {
            "traffic-split": {
                "rules": [
                    {"match": {"header": {"X-Beta": "yes"}}, "upstream": "green"},
                    {"match": {"query": {"cohort": "beta"}}, "upstream": "green"},
                    {"match": {"cookie": {"channel": "beta"}}, "upstream": "green"},
                ]
            }
        },
    )
    # Split first, then the route's own plugins, whichever upstream was chosen.
    world.route(
        "guarded",
        "/guarded",
        {
            "key-auth": {},
            "traffic-split": {"rules": [{"match": {"header": {"X-Beta": "yes"}}, "upstream": "green"}]},
        },
    )
    world.consumer("tester", {"type": "key-auth", "key": "a-key-for-the-guarded-route"})
    with gateway(world, tmp_path) as url, httpx.Client(base_url=url) as client:
        key = {"apikey": "a-key-for-the-guarded-route"}
        assert client.get("/guarded", headers={"X-Beta": "yes"}).status_code == 401
        beta = client.get("/guarded", headers={**key, "X-Beta": "yes"}).json()
        assert (beta["server"], beta["headers"]["x-consumer-username"]) == ("green", "tester")
        assert client.get("/guarded", headers=key).json()["server"] == "blue"
        servers = Counter(client.get("/canary").json()["server"] for _ in range(2000))
        # 10 % of 2,000 is 200 with a standard deviation of 13.4: four of them either side.
        assert 146 <= servers["green"] <= 254, servers
        assert client.get("/beta").json()["server"] == "blue"
        assert client.get("/beta", headers={"X-Beta": "yes"}).json()["server"] == "green"
        assert client.get("/beta", params={"cohort": "beta"}).json()["server"] == "green"
        assert client.get("/beta", headers={"Cookie": "a=1; channel=beta"}).json()["server"] == "green"
        assert client.get("/beta", headers={"X-Beta": "no"}).json()["server"] == "blue"


def test_limit_req_lets_a_burst_through_then_refuses(world, tmp_path):
    world.route("api", "/api", {"limit-req": {"rate": 5, "burst": 3, "key": "route"}})
    with gateway(world, tmp_path) as url, httpx.Client(base_url=url) as client:
        statuses = [client.get("/api").status_code for _ in range(10)]
        assert statuses == [200] * 8 + [429] * 2
        refused = client.get("/api")
        assert refused.json() == {"error": "rate_limited", "message": "Request rate too high"}
        time.sleep(1.2)  # the window has slid past the burst
        assert client.get("/api").status_code == 200


def test_basic_auth_and_the_consumer_name_passed_upstream(world, tmp_path):
    world.route("private", "/private", {"basic-auth": {"hide_credentials": True}})
    world.route("open", "/open")
    world.consumer(
        "alice", {"type": "basic-auth", "username": "alice.smith", "password": "correct horse battery"}
    )
    with gateway(world, tmp_path) as url:
        missing = httpx.get(f"{url}/private")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Basic realm=")
        assert missing.json()["error"] == "unauthorized"
        wrong = httpx.get(f"{url}/private", auth=("alice.smith", "wrong password"))
        assert wrong.status_code == 401
        for _ in range(2):  # the second one is answered from the verified cache
            ok = httpx.get(f"{url}/private", auth=("alice.smith", "correct horse battery"))
            assert ok.status_code == 200
            headers = ok.json()["headers"]
            assert headers["x-consumer-username"] == "alice" and "authorization" not in headers
        spoofed = httpx.get(
            f"{url}/private", auth=("alice.smith", "nope, not it"), headers={"X-Consumer-Username": "alice"}
        )
        assert spoofed.status_code == 401
        # A client's own X-Consumer-Username never reaches the upstream: replaced after
        # authentication, dropped on a route without it.
        claimed = {"X-Consumer-Username": "root"}
        replaced = httpx.get(f"{url}/private", auth=("alice.smith", "correct horse battery"), headers=claimed)
        assert replaced.json()["headers"]["x-consumer-username"] == "alice"
        assert "x-consumer-username" not in httpx.get(f"{url}/open", headers=claimed).json()["headers"]


def test_consumer_scoped_plugins_apply_after_authentication_and_win_over_the_route(world, tmp_path):
    world.route(
        "orders",
        "/orders",
        {
            "key-auth": {},
            "limit-count": {"count": 100, "time_window": 3600, "key": "consumer"},
            "response-rewrite": {"headers": {"set": {"X-Tier": "standard"}}},
        },
    )
    world.consumer(
        "trial",
        {"type": "key-auth", "key": "trial-consumer-key-0001"},
        {
            "limit-count": {"count": 2, "time_window": 3600, "key": "consumer"},
            "response-rewrite": {"headers": {"set": {"X-Tier": "trial"}}},
        },
    )
    world.consumer("paying", {"type": "key-auth", "key": "paying-consumer-key-001"})
    if 3600 - time.time() % 3600 < 30:  # stay inside one window
        time.sleep(3600 - time.time() % 3600 + 1)
    with gateway(world, tmp_path) as url:
        trial = [httpx.get(f"{url}/orders", headers={"apikey": "trial-consumer-key-0001"}) for _ in range(3)]
        assert [a.status_code for a in trial] == [200, 200, 429]
        assert trial[0].headers["x-ratelimit-limit"] == "2" and trial[0].headers["x-tier"] == "trial"
        assert trial[0].json()["headers"]["x-consumer-username"] == "trial"
        paying = [httpx.get(f"{url}/orders", headers={"apikey": "paying-consumer-key-001"}) for _ in range(3)]
        assert [a.status_code for a in paying] == [200, 200, 200]
        assert paying[0].headers["x-ratelimit-limit"] == "100" and paying[0].headers["x-tier"] == "standard"


def test_consumer_restriction_lets_only_subscribed_consumers_call_and_follows_their_labels(world, tmp_path):
    """The developer portal's use: a product's route lets through consumers with its label (and
    any it names), after key-auth names them. A consumers-only change (a label given) reaches
    the gateway through the agent at once."""
    subscribed = {"portal-v1": "subscribed"}
    world.route(
        "product",
        "/product",
        {"key-auth": {}, "consumer-restriction": {"consumers": ["named"], "labels": subscribed}},
    )
    # Nobody has the label: an empty set of consumers, which refuses everybody.
    world.route(
        "retired",
        "/retired",
        {"key-auth": {}, "consumer-restriction": {"labels": {"portal-v1": "retired"}, "rejected_code": 402}},
    )
    # No authentication: no consumer is ever named.
    world.route("anonymous", "/anonymous", {"consumer-restriction": {"labels": subscribed}})
    world.consumer("subscriber", {"type": "key-auth", "key": "subscriber-key-000001"}, labels=subscribed)
    visitor = world.consumer(
        "visitor", {"type": "key-auth", "key": "visitor-key-0000000001"}, labels={"portal-v1": "trial"}
    )
    world.consumer("named", {"type": "key-auth", "key": "named-consumer-key-001"})
    refusal = {"error": "forbidden", "message": "The consumer is not allowed to call this route"}
    with agent_gateway(world, tmp_path / "agent") as (url, follow):

        def call(path: str, key: str | None = None) -> httpx.Response:
            return httpx.get(f"{url}{path}", headers={"apikey": key} if key else {}, timeout=5)

        ok = call("/product", "subscriber-key-000001")
        assert ok.status_code == 200 and ok.json()["headers"]["x-consumer-username"] == "subscriber"
        refused = call("/product", "visitor-key-0000000001")
        assert refused.status_code == 403 and refused.json() == refusal
        assert call("/product").status_code == 401  # no key: key-auth refuses first
        assert call("/product", "named-consumer-key-001").status_code == 200  # listed by name
        retired = call("/retired", "subscriber-key-000001")
        assert retired.status_code == 402 and retired.json() == refusal
        assert call("/anonymous").status_code == 403
        assert call("/anonymous", "subscriber-key-000001").status_code == 403  # no key-auth: no consumer

        world.relabel(visitor, subscribed)  # the visitor subscribes: consumers change, nothing else
        follow()
        deadline = time.monotonic() + 2
        while call("/product", "visitor-key-0000000001").status_code != 200:
            assert time.monotonic() < deadline, "the gateway did not let the new subscriber through"
            time.sleep(0.05)
        assert call("/product", "subscriber-key-000001").status_code == 200
        assert call("/retired", "visitor-key-0000000001").status_code == 402


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(header: dict[str, Any], payload: dict[str, Any], sign: Any) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def test_jwt_auth_accepts_valid_tokens_and_refuses_every_attack(world, tmp_path):
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    secret = "an-hmac-secret-of-at-least-32-characters"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())

    def public_pem(key: Any) -> str:
        return (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def es256(message: bytes) -> bytes:
        r, s = decode_dss_signature(ec_key.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    signers = {
        "HS256": lambda m: hmac.new(secret.encode(), m, hashlib.sha256).digest(),
        "RS256": lambda m: rsa_key.sign(m, padding.PKCS1v15(), hashes.SHA256()),
        "ES256": es256,
    }
    world.consumer("hs-app", {"type": "jwt-auth", "key": "hs-key", "algorithm": "HS256", "secret": secret})
    world.consumer(
        "rs-app",
        {"type": "jwt-auth", "key": "rs-key", "algorithm": "RS256", "public_key": public_pem(rsa_key)},
    )
    world.consumer(
        "es-app",
        {"type": "jwt-auth", "key": "es-key", "algorithm": "ES256", "public_key": public_pem(ec_key)},
    )
    world.route("api", "/api", {"jwt-auth": {}})
    world.route("lenient", "/lenient", {"jwt-auth": {"clock_skew_s": 120, "hide_credentials": True}})
    now = int(time.time())

    def token(alg: str, key: str, **claims: Any) -> str:
        return _jwt({"alg": alg, "typ": "JWT"}, {"key": key, "exp": now + 300, **claims}, signers[alg])

    with gateway(world, tmp_path) as url, httpx.Client(base_url=url) as client:

        def call(jwt: str | None, path: str = "/api") -> httpx.Response:
            return client.get(path, headers={"Authorization": f"Bearer {jwt}"} if jwt else {})

        for alg, consumer in (("HS256", "hs-app"), ("RS256", "rs-app"), ("ES256", "es-app")):
            ok = call(token(alg, f"{consumer[:2]}-key"))
            assert ok.status_code == 200, (alg, ok.text)
            assert ok.json()["headers"]["x-consumer-username"] == consumer
        hs = token("HS256", "hs-key")
        assert client.get("/api", params={"jwt": hs}).status_code == 200
        assert client.get("/api", headers={"Cookie": f"jwt={hs}"}).status_code == 200
        hidden = call(hs, "/lenient").json()["headers"]
        assert "authorization" not in hidden

        def refused(jwt: str | None, message: str, path: str = "/api") -> None:
            answer = call(jwt, path)
            assert answer.status_code == 401, (message, answer.text)
            assert answer.json() == {"error": "unauthorized", "message": message}

        refused(None, "Missing JWT")
        refused("not-a-jwt", "Malformed JWT")
        refused(
            _jwt({"alg": "none"}, {"key": "hs-key", "exp": now + 300}, lambda m: b""),
            "JWT algorithm none is not accepted",
        )
        # HS/RS confusion: an HMAC token "signed" with the RSA public key as its secret.
        confused = _jwt(
            {"alg": "HS256"},
            {"key": "rs-key", "exp": now + 300},
            lambda m: hmac.new(public_pem(rsa_key).encode(), m, hashlib.sha256).digest(),
        )
        refused(confused, "JWT algorithm is not the one configured for this consumer")
        header, _, signature = hs.split(".")
        tampered = f"{header}.{_b64(json.dumps({'key': 'hs-key', 'exp': now + 9999}).encode())}.{signature}"
        refused(tampered, "Invalid JWT signature")
        refused(token("HS256", "nobody"), "No consumer has the key of this JWT")
        refused(token("HS256", "hs-key", exp=now - 60), "JWT has expired")
        refused(token("HS256", "hs-key", nbf=now + 60), "JWT is not valid yet")
        # Within the route's clock skew, both pass.
        assert call(token("HS256", "hs-key", exp=now - 60), "/lenient").status_code == 200
        assert call(token("HS256", "hs-key", nbf=now + 60), "/lenient").status_code == 200
        # The connection remembers the last token whose signature passed: the same token again
        # skips the signature check, never the clock's.
        expires = int(time.time()) + 2
        soon = token("HS256", "hs-key", exp=expires)
        assert [call(soon).status_code for _ in range(3)] == [200, 200, 200]
        time.sleep(expires + 1 - time.time())
        refused(soon, "JWT has expired")


def test_jwt_auth_reads_exp_and_nbf_strictly_and_bounds_a_tokens_lifetime(world, tmp_path):
    """Issue 22: every claim HAProxy cannot read as a NumericDate is refused (on today's code
    null, lists, objects, strings, 2^53 and beyond, and a missing `exp` all passed), `exp` is
    required unless the route says otherwise, `maximum_expiration` bounds `exp - now`, and the
    algorithm cannot be chosen by the token."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    secret, other_secret = "an-hmac-secret-of-at-least-32-characters", "another-hmac-secret-of-32-characters!"
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = (
        rsa_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    world.consumer("hs-app", {"type": "jwt-auth", "key": "hs-key", "algorithm": "HS256", "secret": secret})
    world.consumer(
        "other-app", {"type": "jwt-auth", "key": "other-key", "algorithm": "HS256", "secret": other_secret}
    )
    world.consumer(
        "rs-app", {"type": "jwt-auth", "key": "rs-key", "algorithm": "RS256", "public_key": rsa_pem}
    )
    world.route("api", "/api", {"jwt-auth": {}})
    world.route("optional", "/optional", {"jwt-auth": {"claims_to_verify": []}})
    world.route(
        "strict",
        "/strict",
        {"jwt-auth": {"claims_to_verify": ["exp", "nbf"], "maximum_expiration": 3600, "clock_skew_s": 60}},
    )
    now = int(time.time())

    def hs256(m: bytes, key: str = secret) -> bytes:
        return hmac.new(key.encode(), m, hashlib.sha256).digest()

    def rs256(m: bytes) -> bytes:
        return rsa_key.sign(m, padding.PKCS1v15(), hashes.SHA256())

    def raw(payload: str, header: str = '{"alg":"HS256","typ":"JWT"}', sign: Any = hs256) -> str:
        """A token whose payload is this exact JSON text (json.dumps cannot write 1e400)."""
        signing_input = f"{_b64(header.encode())}.{_b64(payload.encode())}"
        return f"{signing_input}.{_b64(sign(signing_input.encode()))}"

    def body(key: str, claims: str) -> str:
        return '{"key":"' + key + '"' + claims + "}"

    def hs(claims: str, key: str = "hs-key") -> str:
        return raw(body(key, claims))

    later = now + 300
    malformed = {
        "null": "null",
        "-1": "-1",
        '"-1"': '"-1"',
        "a string of a good date": f'"{later}"',
        "a string with a good prefix": f'"{later}x"',
        "2^53": str(2**53),
        "2^63": str(2**63),
        "a list": f"[{later}]",
        "an object": f'{{"v":{later}}}',
        "true": "true",
        "1e400": "1e400",
        "-1e400": "-1e400",
        "a float beyond 2^53": "9.3e18",
        "exponent notation read as 1 by HAProxy": f"{later / 10**9}e9",
        "exponent notation read as 10x by HAProxy": f"{later}0e-1",
        "a leading zero, read as octal by HAProxy": f"0{later}",
        "a fraction and exponent read as 10x by HAProxy": "9999999999.9e-1",
        "0": "0",
        "an empty string": '""',
    }
    with gateway(world, tmp_path) as url, httpx.Client(base_url=url) as client:

        def call(jwt: str | None, path: str = "/api") -> httpx.Response:
            return client.get(path, headers={"Authorization": f"Bearer {jwt}"} if jwt else {})

        def accepted(jwt: str, path: str = "/api", consumer: str = "hs-app") -> None:
            answer = call(jwt, path)
            assert answer.status_code == 200, (path, answer.text)
            assert answer.json()["headers"]["x-consumer-username"] == consumer

        def refused(jwt: str | None, message: str, path: str = "/api") -> None:
            answer = call(jwt, path)
            assert answer.status_code == 401, (message, path, answer.text)
            assert answer.json() == {"error": "unauthorized", "message": message}

        accepted(hs(f',"exp":{later}'))
        accepted(hs(f',"exp":{later}.5,"nbf":{now - 10}'))  # a fraction is fine
        accepted(hs(f',"exp" : {later} ,"nbf":{now}'))
        accepted(hs(',"sub":"exp","note":"\\"nbf\\":null"'), "/optional")  # no claim at all
        refused(hs(""), "JWT exp claim is missing or not a valid NumericDate")
        for value in malformed.values():
            refused(hs(f',"exp":{value}'), "JWT exp claim is missing or not a valid NumericDate")
            refused(hs(f',"exp":{value}'), "JWT exp claim is not a valid NumericDate", "/optional")
            refused(hs(f',"exp":{later},"nbf":{value}'), "JWT nbf claim is not a valid NumericDate")
            refused(hs(f',"nbf":{value}'), "JWT nbf claim is not a valid NumericDate", "/optional")
        # A duplicate: HAProxy reads the first one.
        refused(hs(f',"exp":null,"exp":{later}'), "JWT exp claim is missing or not a valid NumericDate")

        # Required claims, the maximum lifetime and the clock skew (60 s on /strict).
        strict = f',"nbf":{now}'
        accepted(hs(f',"exp":{now + 3600}{strict}'), "/strict")
        accepted(hs(f',"exp":{now + 3650}{strict}'), "/strict")  # within the skew
        accepted(hs(f',"exp":{now - 30}{strict}'), "/strict")
        accepted(hs(f',"exp":{later},"nbf":{now + 30}'), "/strict")
        refused(hs(f',"nbf":{now}'), "JWT exp claim is missing or not a valid NumericDate", "/strict")
        refused(hs(f',"exp":{later}'), "JWT nbf claim is missing or not a valid NumericDate", "/strict")
        refused(hs(f',"exp":{now + 3720}{strict}'), "JWT exp exceeds the maximum expiration", "/strict")
        refused(hs(f',"exp":{now + 10**8}{strict}'), "JWT exp exceeds the maximum expiration", "/strict")
        refused(hs(f',"exp":{now - 120}{strict}'), "JWT has expired", "/strict")
        refused(hs(f',"exp":{later},"nbf":{now + 120}'), "JWT is not valid yet", "/strict")
        refused(hs(f',"exp":{later},"nbf":{now + 60}'), "JWT is not valid yet")  # no skew on /api

        # The algorithm is the credential's, never the token's.
        claims = f',"exp":{later}'
        accepted(raw(body("rs-key", claims), '{"alg":"RS256"}', rs256), consumer="rs-app")
        for alg in ("none", "None", "NONE"):
            refused(
                raw(body("hs-key", claims), f'{{"alg":"{alg}"}}', lambda m: b""),
                "JWT algorithm none is not accepted",
            )
        refused(raw(body("hs-key", claims), "{}"), "Malformed JWT")
        refused(raw(body("hs-key", claims), '{"typ":"JWT"}'), "Malformed JWT")
        wrong_alg = "JWT algorithm is not the one configured for this consumer"
        # The RSA public key used as an HMAC secret.
        refused(raw(body("rs-key", claims), '{"alg":"HS256"}', lambda m: hs256(m, rsa_pem)), wrong_alg)
        # The header's alg switched after signing (RS256 -> RS512, HS256 -> HS512).
        refused(raw(body("rs-key", claims), '{"alg":"RS512"}', rs256), wrong_alg)
        refused(raw(body("hs-key", claims), '{"alg":"HS512"}'), wrong_alg)
        refused(raw(body("rs-key", claims), '{"alg":"hs256"}', lambda m: hs256(m, rsa_pem)), wrong_alg)
        # Another consumer's key claim on a token signed with this consumer's secret, also right
        # after this consumer's good token on the same connection.
        accepted(hs(claims))
        refused(hs(claims, "other-key"), "Invalid JWT signature")
        accepted(raw(body("other-key", claims), sign=lambda m: hs256(m, other_secret)), consumer="other-app")
        # A `kid` naming another consumer changes nothing: the key claim chooses.
        accepted(raw(body("hs-key", claims), '{"alg":"HS256","kid":"other-key"}'))
        refused(
            raw(
                body("hs-key", claims),
                '{"alg":"HS256","kid":"other-key"}',
                lambda m: hs256(m, other_secret),
            ),
            "Invalid JWT signature",
        )


def test_hmac_auth_verifies_signed_requests_and_refuses_tampering(world, tmp_path):
    import base64
    import hashlib
    import hmac
    from email.utils import formatdate

    secret = "an-hmac-secret-of-at-least-32-characters"
    world.consumer("signer", {"type": "hmac-auth", "key_id": "signer-key", "secret": secret})
    world.route("usual", "/usual", {"hmac-auth": {}})
    world.route("brief", "/brief", {"hmac-auth": {"clock_skew_s": 1}})
    world.route(
        "signed",
        "/signed",
        {
            "hmac-auth": {
                "allowed_algorithms": ["hmac-sha256", "hmac-sha512"],
                "signed_headers": ["X-Request-Id"],
                "hide_credentials": True,
            }
        },
    )

    def signed(
        path: str,
        *,
        names: str = "@request-target date x-request-id",
        algorithm: str = "hmac-sha256",
        key_id: str = "signer-key",
        key: str = secret,
        date: str | None = None,
        signed_path: str | None = None,
        extra: dict[str, str] | None = None,
        reordered: bool = False,
    ) -> dict[str, str]:
        headers = {"Date": date or formatdate(usegmt=True), "X-Request-Id": "r-1", **(extra or {})}
        lines = [key_id]
        for name in names.split():
            if name.lower() == "@request-target":
                lines.append(f"GET {signed_path or path}")
            else:
                lines.append(f"{name}: {headers.get(name.title(), '')}")
        digest = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256, "hmac-sha512": hashlib.sha512}
        mac = base64.b64encode(
            hmac.new(key.encode(), ("\n".join(lines) + "\n").encode(), digest[algorithm]).digest()
        ).decode()
        parameters = [
            f'keyId="{key_id}"',
            f'algorithm="{algorithm}"',
            f'headers="{names}"',
            f'signature="{mac}"',
        ]
        if reordered:  # the parameters may come in any order
            parameters.reverse()
        headers["Authorization"] = "Signature " + ",".join(parameters)
        return headers

    with gateway(world, tmp_path) as url, httpx.Client(base_url=url) as client:
        for algorithm in ("hmac-sha256", "hmac-sha512"):
            ok = client.get(
                "/signed/orders?page=2", headers=signed("/signed/orders?page=2", algorithm=algorithm)
            )
            assert ok.status_code == 200, ok.text
            assert ok.json()["headers"]["x-consumer-username"] == "signer"
            assert "authorization" not in ok.json()["headers"]

        def refused(headers: dict[str, str], message: str, path: str = "/signed/orders") -> None:
            answer = client.get(path, headers=headers)
            assert answer.status_code == 401, (message, answer.text)
            assert answer.json() == {"error": "unauthorized", "message": message}

        refused({}, "Missing HMAC signature")
        refused({"Authorization": 'Signature keyId="x"'}, "Malformed HMAC signature")
        refused(signed("/signed/orders", signed_path="/signed/other"), "Invalid HMAC signature")
        refused(
            signed("/signed/orders", key="a-different-secret-of-32-characters!"), "Invalid HMAC signature"
        )
        refused(signed("/signed/orders", key_id="stranger"), "Unknown HMAC key id")
        refused(signed("/signed/orders", algorithm="hmac-sha1"), "HMAC algorithm not allowed")
        refused(
            signed("/signed/orders", names="@request-target x-request-id"), "The Date header must be signed"
        )
        refused(
            signed("/signed/orders", names="@request-target date"), "The X-Request-Id header must be signed"
        )
        old = formatdate(time.time() - 3600, usegmt=True)
        refused(signed("/signed/orders", date=old), "Request date outside the allowed clock skew")
        missing = signed("/signed/orders", names="@request-target date x-request-id x-tenant")
        refused(missing, "A signed header is missing from the request")
        unsigned = signed("/signed/orders")
        unsigned["Authorization"] = unsigned["Authorization"].replace(
            ',headers="@request-target date x-request-id"', ""
        )
        refused(unsigned, "The Date header must be signed")
        iso = signed("/signed/orders", date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        refused(iso, "Request date outside the allowed clock skew")

        # Names in any case, parameters in any order, and as many signed headers as the client
        # likes: each line is the named header's value, and the signature must cover them all.
        many = "Date @Request-Target X-Request-Id Accept X-Tenant X-Trace X-Span X-Baggage X-Flags"
        extra = {"Accept": "application/json", "X-Tenant": "t-1", "X-Trace": "a", "X-Span": "b"}
        extra |= {"X-Baggage": "c=1", "X-Flags": "f"}
        for headers in (
            signed("/signed/orders", names=many, extra=extra, reordered=True),
            signed("/signed/orders", names="DATE x-request-id @request-target"),
        ):
            ok = client.get("/signed/orders", headers=headers)
            assert ok.status_code == 200, ok.text
        # Each name costs the gateway a scan of the header block: the list is bounded.
        endless = signed("/signed/orders", names=" ".join(["date"] * 200))
        refused(endless, "Malformed HMAC signature")
        # The usual list, `@request-target date`, on a route that requires no other header.
        usual = signed("/usual/x?y=1", names="@request-target date")
        assert client.get("/usual/x?y=1", headers=usual).status_code == 200
        refused(
            {**usual, "Date": formatdate(usegmt=True, localtime=False)[:-4]},
            "Request date outside the allowed clock skew",
            "/usual/x?y=1",
        )
        refused(signed("/usual/x", names="@request-target date"), "Invalid HMAC signature", "/usual/x?y=2")
        dateless = signed("/usual/x", names="@request-target date")
        del dateless["Date"]
        refused(dateless, "A signed header is missing from the request", "/usual/x")
        # The window of acceptable Dates moves with the clock, on a connection kept open too.
        brief = signed("/brief", names="@request-target date")
        assert client.get("/brief", headers=brief).status_code == 200
        time.sleep(2.5)
        refused(brief, "Request date outside the allowed clock skew", "/brief")
        tampered = signed("/signed/orders", names=many, extra=extra)
        tampered["X-Span"] = "changed"
        refused(tampered, "Invalid HMAC signature")

        # A signed header sent twice is refused: the signature covers one value, and an upstream
        # may read the other. Unsigned headers may repeat.
        def twice(headers: dict[str, str], name: str, value: str, path: str) -> None:
            answer = client.get(path, headers=[(name, value), *headers.items()])
            assert answer.status_code == 401, answer.text
            assert answer.json()["message"] == "A signed header appears more than once in the request"

        twice(signed("/signed/orders"), "x-request-id", "r-forged", "/signed/orders")
        twice(signed("/signed/orders", names=many, extra=extra), "X-TRACE", "z", "/signed/orders")
        twice(usual, "Date", formatdate(usegmt=True), "/usual/x?y=1")
        repeated = client.get("/usual/x?y=1", headers=[("X-Note", "a"), ("X-Note", "b"), *usual.items()])
        assert repeated.status_code == 200, repeated.text


def test_key_auth_hides_the_key_from_the_upstream_in_header_and_query(world, tmp_path):
    world.route("hidden", "/hidden", {"key-auth": {"hide_credentials": True}})
    world.consumer("app", {"type": "key-auth", "key": "a-key-the-upstream-never-sees"})
    with gateway(world, tmp_path) as url:
        by_header = httpx.get(
            f"{url}/hidden/x?a=1", headers={"apikey": "a-key-the-upstream-never-sees"}
        ).json()
        assert "apikey" not in by_header["headers"] and by_header["path"] == "/hidden/x?a=1"
        by_query = httpx.get(f"{url}/hidden/x?a=1&apikey=a-key-the-upstream-never-sees&b=2").json()
        assert by_query["path"] == "/hidden/x?a=1&b=2"
        assert by_query["headers"]["x-consumer-username"] == "app"


def test_key_auth_takes_a_key_with_commas_in_the_header_and_percent_encoded_in_the_query(world, tmp_path):
    """A key may hold any printable character: the header's whole value is the key (not its
    last comma-separated part), and a key in the query string is percent-decoded."""
    world.route("keyed", "/keyed", {"key-auth": {}})
    world.consumer("commas", {"type": "key-auth", "key": "part-one,part-two,three"})
    world.consumer("symbols", {"type": "key-auth", "key": "a&b=c%d+e?f#g-0123456789"})
    with gateway(world, tmp_path) as url:
        by_header = httpx.get(f"{url}/keyed", headers={"apikey": "part-one,part-two,three"})
        assert by_header.status_code == 200, by_header.text
        assert by_header.json()["headers"]["x-consumer-username"] == "commas"
        assert httpx.get(f"{url}/keyed", headers={"apikey": "three"}).status_code == 401
        # Sent twice: the first one counts.
        twice = httpx.get(f"{url}/keyed", headers=[("apikey", "part-one,part-two,three"), ("apikey", "x")])
        assert twice.status_code == 200, twice.text
        by_query = httpx.get(f"{url}/keyed", params={"apikey": "a&b=c%d+e?f#g-0123456789"})
        assert by_query.status_code == 200, by_query.text
        assert by_query.json()["headers"]["x-consumer-username"] == "symbols"


def _exchange(
    connection: socket.socket, reader: Any, path: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    """One request on a kept connection, and its answer's status and body."""
    lines = [f"GET {path} HTTP/1.1", "Host: gateway", *(f"{k}: {v}" for k, v in headers.items())]
    connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, reader.read(length)


def test_key_auth_refuses_a_request_without_a_key_on_a_connection_that_sent_one(world, tmp_path):
    """A connection remembers its last key's hash, to skip hashing the same key again: a request
    that follows without a key, or with an empty one, must still be refused, not let through on
    that hash."""
    world.route("keyed", "/keyed", {"key-auth": {}})
    world.consumer("app", {"type": "key-auth", "key": "a-key-for-one-connection"})
    good = {"apikey": "a-key-for-one-connection"}
    with gateway(world, tmp_path) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            reader = connection.makefile("rb")
            answers = [
                _exchange(connection, reader, "/keyed", headers)
                for headers in (good, {}, {"apikey": ""}, good, {"apikey": "a-key-nobody-was-given"})
            ]
    assert [status for status, _ in answers] == [200, 401, 401, 200, 401]
    assert [json.loads(body)["message"] for _, body in answers[1:3]] == ["Missing API key"] * 2
    assert json.loads(answers[4][1])["message"] == "Invalid API key"


def test_key_auth_hashes_keys_with_the_clusters_secret_and_still_takes_keys_from_before_it(world, tmp_path):
    """New keys are HMAC-SHA256 digests under the cluster's secret; keys stored as plain SHA-256
    before the cluster had one (or imported as such) keep working beside them, on the same
    connection, and a digest the gateway's maps hold is never the key's plain SHA-256."""
    from saas.catalog.models import Credential
    from saas.gateways.publishing import publish

    world.route("keyed", "/keyed", {"key-auth": {}})
    world.consumer("new-app", {"type": "key-auth", "key": "a-key-made-after-the-secret"})
    world.consumer("old-app", {"type": "key-auth", "key": "a-key-stored-before-the-secret"})
    with schema_context(world.org.schema_name):
        # As the migration leaves a key stored before this version.
        old = Credential.objects.get(consumer__username="old-app")
        old.key_sha256 = hashlib.sha256(b"a-key-stored-before-the-secret").hexdigest()
        old.key_scheme = Credential.KEY_SHA256
        old.save()
        publish(world.cluster, author="test", reason="legacy key", sections=["consumers", "key_auth"])
    snapshot = world.snapshot()
    assert snapshot.key_auth is not None and snapshot.key_auth.secret
    with gateway(world, tmp_path) as url:
        maps = (tmp_path / "maps/keys_hmac.map").read_text() + (tmp_path / "maps/keys.map").read_text()
        assert hashlib.sha256(b"a-key-made-after-the-secret").hexdigest() not in maps
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            reader = connection.makefile("rb")
            answers = [
                _exchange(connection, reader, "/keyed", {"apikey": key})
                for key in (
                    "a-key-made-after-the-secret",
                    "a-key-stored-before-the-secret",
                    "a-key-made-after-the-secret",
                    "a-key-nobody-was-given-ever",
                    "a-key-stored-before-the-secret",
                )
            ]
    assert [status for status, _ in answers] == [200, 200, 200, 401, 200]
    assert [
        json.loads(body)["headers"]["x-consumer-username"] for status, body in answers if status == 200
    ] == [
        "new-app",
        "old-app",
        "new-app",
        "old-app",
    ]
