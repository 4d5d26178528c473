"""Issue 20: the catalog never stores a route the gateways would refuse. Regexes are checked as
HAProxy compiles them (PCRE2 through gateway_agent.pcre), every other string is quoted by the
agent's shared functions or refused: what the API accepts, `haproxy -c` accepts, and a gateway
serves it as written."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django_tenants.utils import schema_context

from core.errors import InvalidInput
from gateway_agent.directives import RenderOptions, quote
from gateway_agent.haproxy import HAProxyError, check_config
from gateway_agent.protocol import Snapshot
from gateway_agent.renderer import RenderError, render
from saas.catalog.plugins import plugin_config_errors
from saas.catalog.specs import RouteSpec, UpstreamSpec, parse_spec
from saas.gateways.models import GatewayCluster
from saas.gateways.publishing import compile_snapshot
from saas.launcher.services import free_port
from tests.factories import build_catalog

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def _post_route(cw, **fields: Any):
    client = cw.client()
    build_catalog(client, cw.url)
    body = {"name": "r", "service": "orders-api", "paths": [{"value": "/a"}], **fields}
    return client.post(cw.url("routes/"), body, format="json")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        # Python's `re` takes these, HAProxy's PCRE2 refuses them.
        ({"paths": [{"type": "regex", "value": "(?u)/x"}]}, "paths.0.value"),
        ({"paths": [{"type": "regex", "value": "(?L)/x"}]}, "paths.0.value"),
        ({"paths": [{"type": "regex", "value": "^/(a)\\1$"}]}, "paths.0.value"),  # no captures in ACLs
        ({"headers": [{"name": "X-A", "value": "(?u)x", "type": "regex"}]}, "headers.0.value"),
        ({"headers": [{"name": "x#y", "value": "(?u)x", "type": "regex"}]}, "headers.0.value"),
        # A pattern HAProxy would take for the end of the condition.
        ({"paths": [{"type": "regex", "value": "}"}]}, "paths.0.value"),
        ({"headers": [{"name": "X-A", "value": "}"}]}, "headers.0.value"),
        # Not a header name: a space, a parenthesis, a comma, a quote.
        ({"headers": [{"name": "x y", "value": "1"}]}, "headers.0.name"),
        ({"headers": [{"name": "x(y", "value": "1"}]}, "headers.0.name"),
        ({"headers": [{"name": 'x"y', "value": "1"}]}, "headers.0.name"),
    ],
)
def test_a_route_the_gateways_would_refuse_is_refused_naming_the_field(cw, fields, field):
    response = _post_route(cw, **fields)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()


@pytest.mark.parametrize(
    ("plugins", "field"),
    [
        ({"mocking": {"status_code": 100}}, "plugins.mocking"),  # HAProxy answers 200 to 599
        ({"mocking": {"status_code": 204, "body": "x"}}, "plugins.mocking"),
        ({"mocking": {"content_type": "", "body": "x"}}, "plugins.mocking"),
        ({"mocking": {"headers": {f"X-{i}": "1" for i in range(13)}}}, "plugins.mocking"),
        ({"proxy-rewrite": {"headers": {"set": {"X-A": ""}}}}, "plugins.proxy-rewrite"),
        ({"ip-restriction": {"allowlist": ["10.0.0.0/8", "not-an-ip"]}}, "plugins.ip-restriction"),
        (
            {"traffic-split": {"rules": [{"match": {"query": {"a,b": "1"}}, "upstream": "orders"}]}},
            "plugins.traffic-split",
        ),
        (
            {"traffic-split": {"rules": [{"match": {"header": {"X-A": "}"}}, "upstream": "orders"}]}},
            "plugins.traffic-split",
        ),
        (
            {
                "traffic-split": {
                    "rules": [{"match": {"header": {f"X-{i}": "1" for i in range(7)}}, "upstream": "orders"}]
                }
            },
            "plugins.traffic-split",
        ),
    ],
)
def test_a_plugin_setting_the_gateways_would_refuse_is_refused(cw, plugins, field):
    response = _post_route(cw, plugins=plugins)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b'{"upstream": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def _gateway(snapshot: Snapshot, folder: Path) -> Iterator[str]:
    """The snapshot rendered by the agent's renderer, checked and served by a real HAProxy."""
    port = free_port()
    options = RenderOptions(
        http_port=port,
        https_port=None,
        metrics_port=None,
        bind_address="127.0.0.1",
        config_dir=str(folder),
        runtime_socket=str(folder / "haproxy.sock"),
    )
    for name, content in render(snapshot, options).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(content)
    check_config(HAPROXY, folder / "haproxy.cfg")
    process = subprocess.Popen([HAPROXY, "-db", "-f", str(folder / "haproxy.cfg")])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_header_named_with_a_hash_is_accepted_and_served(cw, tmp_path):
    """`x#y` is a valid header name (`#` is a token character): unquoted, `#` started a comment
    and every gateway refused the snapshot. Quoted, the route is stored and served."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    client = cw.client()
    try:
        made = [
            (
                "upstreams/",
                {"name": "echo", "targets": [{"host": "127.0.0.1", "port": upstream.server_address[1]}]},
            ),
            ("services/", {"name": "echo", "upstream": "echo"}),
            (
                "routes/",
                {
                    "name": "exact",
                    "service": "echo",
                    "paths": [{"value": "/exact"}],
                    "headers": [{"name": "x#y", "value": "v#1"}],
                },
            ),
            (
                "routes/",
                {
                    "name": "regex",
                    "service": "echo",
                    "paths": [{"value": "/regex"}],
                    "headers": [{"name": "x#y", "value": "^v[0-9]+$", "type": "regex"}],
                },
            ),
        ]
        for path, body in made:
            response = client.post(cw.url(path), body, format="json")
            assert response.status_code == 201, response.content
        with schema_context(cw.world.a.org.schema_name):
            document = compile_snapshot(GatewayCluster.objects.get(id=cw.cluster_id))
        with _gateway(Snapshot.model_validate(document), tmp_path) as url:
            assert httpx.get(f"{url}/exact", headers={"x#y": "v#1"}).json() == {"upstream": True}
            assert httpx.get(f"{url}/exact", headers={"x#y": "v"}).status_code == 404
            assert httpx.get(f"{url}/exact").status_code == 404
            assert httpx.get(f"{url}/regex", headers={"x#y": "v42"}).json() == {"upstream": True}
            assert httpx.get(f"{url}/regex", headers={"x#y": "w42"}).status_code == 404
    finally:
        upstream.shutdown()


# --- fuzz: whatever the specs accept, HAProxy accepts ---------------------------------------

# Constructs of PCRE2 or of Python's `re` (or of both, with different meanings), and text HAProxy's
# line reader treats specially.
FRAGMENTS = [
    *["(?u)", "(?L)", "(?a)", "(?i)", "(?x)", "(?s)", "(?m)", "(?-i)", "(?i:a)", "(?#note)"],
    *["\\N{LATIN SMALL LETTER A}", "\\N", "\\N{U+41}", "(?P<n>a)", "(?P=n)", "(?<n>b)", "\\k<n>", "\\g1"],
    *["\\p{L}", "\\P{Lu}", "\\pL", "\\X", "\\R", "\\h", "\\K", "\\A", "\\Z", "\\z", "\\b", "\\G"],
    *["a++", "a*+", "a?+", "(?>ab|a)", "(?<=a)", "(?<!bc)", "(?<=a+)", "(?<=a|bc)", "(?=c)", "(?!d)"],
    *["(", ")", "[", "]", "{2,3}", "{,3}", "{3", "*", "+", "?", "|", "^", "$", ".*", "\\d+", "[a-z]"],
    *["[[:alpha:]]", "[^/]", "[\\w-]", "\\1", "\\2", "(a)", "(?:b)", "\\Q(a\\E", "\\Q", "\\E", "\\x41"],
    *["\\x{41}", "\\u00e9", "\\U0001F600", "\\0", "\\o{101}", "\\c", "\\cA", "(?|(a)|(b))", "(?(1)a|b)"],
    *["(?R)", "(*UTF)", "(*UCP)", "(*CR)", "(?C1)", "é", "日本", "😀", "\\é", "/x", "/", "-", "'", '"'],
    *["#", "$HOME", "${X}", "%", "%[src]", "}", "{", " ", "\\", "\\\\", "\\/", "if", "||", "!", "--"],
]
# Every printable ASCII character, what a header name might be made of.
PRINTABLE = [chr(code) for code in range(0x20, 0x7F)]
VALUES = ["v", "-v", "a b", "x'y", 'x"y', "$HOME", "%[src]", "#", "\\", "}x", "é"]


def _regexes(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 5))) for _ in range(count)]


def _header_names(rng: random.Random, count: int) -> list[str]:
    names = [*PRINTABLE, *(f"x{char}y" for char in PRINTABLE)]  # each character alone and inside
    while len(names) < count:
        names.append("".join(rng.choice(PRINTABLE) for _ in range(rng.randint(1, 8))))
    return names


def _accepted_route(route_id: int, data: dict[str, Any]) -> dict[str, Any] | None:
    """The route as the snapshot would hold it, or None when the catalog refuses it."""
    data = {"name": f"r{route_id}", "service": "s", **data}
    try:
        spec = parse_spec(RouteSpec, data)
    except InvalidInput:
        return None
    for name, config in spec.plugins.items():
        if plugin_config_errors(name, config, "route"):
            return None
    return {
        "id": route_id,
        "name": spec.name,
        "service_id": 1,
        "paths": [p.model_dump() for p in spec.paths],
        "headers": [h.model_dump() for h in spec.headers],
        "hosts": spec.hosts,
        "methods": spec.methods,
        "plugins": [{"name": n, "config": c} for n, c in sorted(spec.plugins.items())],
    }


def _accepted_upstream(upstream_id: int, hash_header: str) -> dict[str, Any] | None:
    data = {
        "name": f"u{upstream_id}",
        "targets": [{"host": "127.0.0.1", "port": 9}],
        "load_balancing": "hash_header",
        "hash_header": hash_header,
    }
    try:
        spec = parse_spec(UpstreamSpec, data)
    except InvalidInput:
        return None
    return {
        "id": upstream_id,
        **spec.model_dump(exclude_none=True, include={"name", "targets", "load_balancing", "hash_header"}),
    }


def _refusal(routes: list[dict[str, Any]], upstreams: list[dict[str, Any]], folder: Path) -> str | None:
    """Why rendering these routes and upstreams, or `haproxy -c` on the result, fails; None if
    it does not. Every upstream gets a service and a route of its own, so its backend is written."""
    services = [{"id": 1, "name": "s", "upstream_id": 1}]
    routes = list(routes)
    for upstream in upstreams:
        services.append({"id": upstream["id"], "name": f"s{upstream['id']}", "upstream_id": upstream["id"]})
        routes.append(
            {
                "id": 100_000 + upstream["id"],
                "name": f"u{upstream['id']}",
                "service_id": upstream["id"],
                "paths": [{"type": "prefix", "value": f"/u{upstream['id']}"}],
            }
        )
    document = {
        "cluster_id": 1,
        "upstreams": [{"id": 1, "name": "base", "targets": [{"host": "127.0.0.1", "port": 9}]}, *upstreams],
        "services": services,
        "routes": routes,
    }
    folder.mkdir(parents=True, exist_ok=True)
    options = RenderOptions(config_dir=str(folder), runtime_socket=str(folder / "s.sock"), metrics_port=None)
    try:
        files = render(Snapshot.model_validate(document), options)
        for name, content in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(content)
        check_config(HAPROXY, folder / "haproxy.cfg")
    except (RenderError, HAProxyError) as exc:
        return str(exc)
    return None


def _culprits(items: list[Any], fails: Any) -> list[Any]:
    """The items that fail alone, found by halving the batch."""
    if len(items) == 1:
        return items
    half = len(items) // 2
    found = [*(_culprits(part, fails) for part in (items[:half], items[half:]) if fails(part))]
    return [item for part in found for item in part]


def _haproxy_refuses_regex(pattern: str, folder: Path) -> bool:
    config = folder / f"{abs(hash(pattern))}.cfg"
    config.write_text(
        "defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n"
        f"frontend f\n    bind 127.0.0.1:9\n    http-request deny if {{ path_reg -- {quote(pattern)} }}\n"
    )
    return subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True).returncode != 0


def test_fuzz_what_the_catalog_accepts_haproxy_accepts(tmp_path):
    """A few hundred generated regexes (as path and as header regexes) and header names (every
    printable ASCII character, alone and mixed; in route conditions, upstream hashing and plugin
    header settings): each is refused by the catalog's validation, or the snapshot rendered
    from it passes `haproxy -c`. All accepted ones go into one configuration, halved only to
    name the culprits of a failure. And the regexes the catalog refuses, HAProxy refuses."""
    rng = random.Random(20)
    routes: list[dict[str, Any]] = []
    refused_regexes: list[str] = []
    for pattern in _regexes(rng, 300):
        before = len(routes)
        for data in (
            {"paths": [{"type": "regex", "value": pattern}]},
            {"paths": [{"value": "/h"}], "headers": [{"name": "X-R", "value": pattern, "type": "regex"}]},
        ):
            route = _accepted_route(len(routes) + 1, data)
            if route is not None:
                routes.append(route)
        if len(routes) == before and "\\Q" not in pattern:  # both refused: by PCRE2, or as `}`
            refused_regexes.append(pattern)
    names = _header_names(rng, 400)
    upstreams: list[dict[str, Any]] = []
    accepted_names = 0
    for name in names:
        value = rng.choice(VALUES)
        operations = {"set": {name: value}, "remove": [name]}
        for data in (
            {"paths": [{"value": "/n"}], "headers": [{"name": name, "value": value}]},
            {"paths": [{"value": "/n"}], "headers": [{"name": name, "value": "^v", "type": "regex"}]},
            {
                "paths": [{"value": "/p"}],
                "plugins": {
                    "proxy-rewrite": {"headers": operations},
                    "response-rewrite": {"headers": operations},
                    "mocking": {"headers": {name: value}, "body": value},
                    "key-auth": {"header": name, "hide_credentials": True},
                },
            },
        ):
            route = _accepted_route(len(routes) + 1, data)
            if route is not None:
                routes.append(route)
                accepted_names += 1
        upstream = _accepted_upstream(len(upstreams) + 2, name)
        if upstream is not None:
            upstreams.append(upstream)
    # The generator reaches both sides of each check.
    assert len(routes) > 100 and len(refused_regexes) > 50 and accepted_names > 300 and len(upstreams) > 100

    folder = tmp_path / "all"
    refusal = _refusal(routes, upstreams, folder)
    if refusal is not None:
        bad_routes = _culprits(routes, lambda part: _refusal(part, [], tmp_path / "r") is not None)
        bad_upstreams = _culprits(upstreams, lambda part: _refusal([], part, tmp_path / "u") is not None)
        pytest.fail(f"{refusal}\naccepted, then refused: {bad_routes} {bad_upstreams}")

    # What the catalog refuses as a regex, HAProxy refuses too (not merely something else).
    (tmp_path / "regex").mkdir()
    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda p: _haproxy_refuses_regex(p, tmp_path / "regex"), refused_regexes))
    assert all(verdicts), [p for p, refused in zip(refused_regexes, verdicts, strict=True) if not refused]
