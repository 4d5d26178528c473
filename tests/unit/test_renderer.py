"""The renderer: a pure function from snapshot to files, which `haproxy -c` accepts."""

import shutil
import subprocess
from pathlib import Path

import pytest

from gateway_agent.protocol import Snapshot
from gateway_agent.renderer import RenderError, RenderOptions, render
from tests.factories import self_signed_certificate

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def route_document(
    route_id: int, name: str, path: str, *, kind: str = "prefix", service_id: int = 1, **more
) -> dict:
    """A route of the sample snapshot: one path, on service 1 unless said otherwise."""
    return {
        "id": route_id,
        "name": name,
        "service_id": service_id,
        "paths": [{"type": kind, "value": path}],
        **more,
    }


def snapshot_document(**overrides) -> dict:
    cert, key = self_signed_certificate("api.example.com")
    document = {
        "schema_version": 1,
        "cluster_id": 1,
        "global_plugins": [],
        "upstreams": [
            {
                "id": 1,
                "name": "orders",
                "targets": [{"host": "127.0.0.1", "port": 9001, "weight": 100}],
                "active_health_check": {
                    "path": "/healthz",
                    "interval_s": 1,
                    "healthy_threshold": 1,
                    "unhealthy_threshold": 2,
                },
            },
            {
                "id": 2,
                "name": "secure",
                "targets": [{"host": "example.org", "port": 443, "weight": 10}],
                "scheme": "https",
                "load_balancing": "hash_header",
                "hash_header": "X-User",
                "passive_health_check": {"max_fails": 3},
            },
        ],
        "services": [
            {
                "id": 1,
                "name": "orders-api",
                "upstream_id": 1,
                "plugins": [{"name": "key-auth", "config": {}}],
            },
            {"id": 2, "name": "public", "upstream_id": 2, "plugins": []},
        ],
        "routes": [
            {
                "id": 1,
                "name": "orders",
                "service_id": 1,
                "paths": [{"type": "prefix", "value": "/orders"}],
                "methods": ["GET", "POST"],
                "hosts": ["api.example.com", "*.example.net"],
                "priority": 0,
                "plugins": [
                    {"name": "limit-count", "config": {"count": 5, "time_window": 60, "key": "consumer"}},
                    {"name": "proxy-rewrite", "config": {"headers": {"set": {"X-Gateway": "yes"}}}},
                ],
                "strip_path_prefix": "/orders",
            },
            {
                "id": 2,
                "name": "beta",
                "service_id": 2,
                "paths": [
                    {"type": "regex", "value": "^/v[0-9]+/items$"},
                    {"type": "exact", "value": "/items"},
                ],
                "headers": [{"name": "X-Beta", "value": "1"}],
                "priority": 10,
            },
        ],
        "consumers": [
            {
                "id": 1,
                "username": "app",
                "credentials": [{"type": "key-auth", "id": 1, "key_sha256": "ab" * 32}],
            }
        ],
        "certificates": [
            {
                "id": 1,
                "name": "api",
                "snis": ["api.example.com"],
                "certificate_pem": cert,
                "private_key_pem": key,
                "not_after": "2030-01-01T00:00:00+00:00",
            }
        ],
    }
    document.update(overrides)
    return document


def write(files: dict[str, str], folder: Path) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return folder / "haproxy.cfg"


def render_routes(routes: list[dict], folder: Path) -> dict[str, str]:
    """The sample snapshot with these routes (and no certificate), rendered for `folder`."""
    document = snapshot_document(routes=routes, certificates=[])
    options = RenderOptions(config_dir=str(folder), runtime_socket=str(folder / "s.sock"))
    return render(Snapshot.model_validate(document), options)


def haproxy_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)


def test_rendered_config_passes_haproxy_check(tmp_path):
    options = RenderOptions(config_dir=str(tmp_path), runtime_socket=str(tmp_path / "haproxy.sock"))
    files = render(Snapshot.model_validate(snapshot_document()), options)
    result = haproxy_check(write(files, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert files["maps/keys.map"] == f"{'ab' * 32} app\n"
    assert "api.example.com" in files["certs/crt-list.txt"]


def test_rendering_is_deterministic_and_keys_never_appear(tmp_path):
    options = RenderOptions(config_dir=str(tmp_path))
    snapshot = Snapshot.model_validate(snapshot_document())
    assert render(snapshot, options) == render(snapshot, options)
    config = render(snapshot, options)["haproxy.cfg"]
    # Higher priority first: the beta route (10) is tried before orders (0).
    assert config.index("str(2)") < config.index("str(1)")


def test_a_certificate_without_its_key_cannot_render(tmp_path):
    document = snapshot_document()
    document["certificates"][0]["private_key_pem"] = None
    with pytest.raises(RenderError):
        render(Snapshot.model_validate(document), RenderOptions(config_dir=str(tmp_path)))


def test_simple_routes_are_found_through_maps_longest_prefix_first(tmp_path):
    routes = [
        route_document(10, "api", "/api"),
        route_document(11, "api-v1", "/api/v1"),
        route_document(12, "get-item", "/api/item", kind="exact", methods=["GET", "HEAD"]),
    ]
    files = render_routes(routes, tmp_path)
    assert files["maps/routes_p0_prefix.map"] == "/api/v1 11\n/api 10\n"
    # A map per method, searched only for requests of that method.
    assert files["maps/routes_p0_exact_GET.map"] == files["maps/routes_p0_exact_HEAD.map"] == "/api/item 12\n"
    config = files["haproxy.cfg"]
    assert f"path,map_str({tmp_path}/maps/routes_p0_exact_GET.map) if {{ method GET }}\n" in config
    assert (
        f"path,map_str({tmp_path}/maps/routes_p0_exact_HEAD.map) if {{ method HEAD }} !{{ var(txn.route) -m found }}\n"
        in config
    )
    # Exact with method, then exact, then prefix with method, then prefix.
    assert config.index("routes_p0_exact_GET") < config.index("routes_p0_exact_HEAD")
    assert config.index("routes_p0_exact_HEAD") < config.index("routes_p0_prefix")
    assert "str(10)" not in config  # no rule per simple route
    assert haproxy_check(write(files, tmp_path)).returncode == 0


def test_a_methods_map_holds_the_any_method_routes_its_own_routes_do_not_come_before(tmp_path):
    """A GET request finds its route in one search of the GET map, which holds the any-method
    routes as well, but not a prefix under a GET route's prefix: there the GET route comes first,
    as when the GET map and then the any-method map are searched. Other methods search the
    any-method map."""
    routes = [
        route_document(10, "api", "/api"),
        route_document(11, "api-v1", "/api/v1"),
        route_document(20, "admin", "/admin", methods=["GET"]),
        route_document(21, "admin-public", "/admin/public"),
        route_document(22, "shop", "/shop"),
        route_document(23, "cart", "/shop/cart", methods=["GET"]),
        route_document(24, "health", "/health", kind="exact"),
        route_document(25, "status", "/status", kind="exact", methods=["GET"]),
    ]
    files = render_routes(routes, tmp_path)
    assert (
        files["maps/routes_p0_prefix_GET.map"] == "/shop/cart 23\n/api/v1 11\n/admin 20\n/shop 22\n/api 10\n"
    )
    assert files["maps/routes_p0_prefix.map"] == "/admin/public 21\n/api/v1 11\n/shop 22\n/api 10\n"
    assert files["maps/routes_p0_exact_GET.map"] == "/status 25\n/health 24\n"
    config = files["haproxy.cfg"]
    # The any-method maps: for requests that found no route, of a method without a map.
    for kind, converter in (("exact", "map_str"), ("prefix", "map_beg")):
        assert (
            f"path,{converter}({tmp_path}/maps/routes_p0_{kind}.map) if !{{ var(txn.route) -m found }} "
            "!{ method GET }\n" in config
        )
    assert haproxy_check(write(files, tmp_path)).returncode == 0


def test_a_route_method_that_is_not_one_cannot_render(tmp_path):
    """The method goes into ACLs and file names as it is: anything but letters is refused."""
    for method in ["GET } || { always_true", "../GET", "get"]:
        with pytest.raises(RenderError, match="is not an HTTP method"):
            render_routes([route_document(10, "api", "/api", methods=[method])], tmp_path)


def test_a_route_tracks_its_request_once_as_soon_as_authentication_names_the_consumer():
    """Answers before the consumer is named are tracked by their own conditions (as anonymous);
    the request is then tracked once, unconditionally, and later answers and the request going
    upstream only count: a request that passes evaluates no tracking condition after that."""
    from gateway_agent.metering import KEY, UPSTREAM_LINES, count_route_answers

    track = f"    http-request track-sc2 {KEY} table usage/counts"
    lines = [
        "    http-request return status 403 string 'no' if { src 10.0.0.1 }",
        "    http-request set-var(txn.consumer) var(txn.key),map(keys.map)",
        "    http-request return status 401 string 'who' if !{ var(txn.consumer) -m found }",
        "    http-request set-var(txn.rl) var(txn.consumer),map(rl.map)",
        "    http-request return status 429 string 'slow' if { var(txn.rl_used) -m int gt 5 }",
        *[f"    {line}" for line in UPSTREAM_LINES],
    ]
    assert count_route_answers(lines) == [
        f"{track} if {{ src 10.0.0.1 }}",
        "    http-request return status 403 string 'no' if { src 10.0.0.1 } { sc_inc_gpc(3,2) -m int gt 0 }",
        "    http-request set-var(txn.consumer) var(txn.key),map(keys.map)",
        track,
        "    http-request return status 401 string 'who' if !{ var(txn.consumer) -m found } "
        "{ sc_inc_gpc(3,2) -m int gt 0 }",
        "    http-request set-var(txn.rl) var(txn.consumer),map(rl.map)",
        "    http-request return status 429 string 'slow' if { var(txn.rl_used) -m int gt 5 } "
        "{ sc_inc_gpc(3,2) -m int gt 0 }",
        "    http-request set-var(txn.sent_ms) date(0,ms) if { sc_inc_gpc(5,2) -m int gt 0 }",
    ]
    # A route without authentication: tracked first thing.
    unnamed = count_route_answers([lines[0], *lines[-1:]])
    assert unnamed[0] == track and unnamed[1] == lines[0] + " { sc_inc_gpc(3,2) -m int gt 0 }"


def test_each_answer_the_gateway_gives_is_tracked_and_counted_once_by_its_own_condition():
    """The rules metering adds around an answer: tracked under the request's usage key (route 0
    when none matched), counted by the answer's condition, or by a rule of its own when an OR
    could let the count slip past the other terms."""
    from gateway_agent.metering import KEY, NO_ROUTE, UNMATCHED_KEY, count_answers

    lines = [
        "    http-request set-var(txn.x) str(1)",
        f"    http-request return status 404 string 'no' if {NO_ROUTE}",
        "    http-request return status 401 string 'who or what' if { var(txn.ka) -m str g0 }",
        "    http-request redirect scheme https if { var(txn.rd) -m str g0 } || { ssl_fc }",
        "    http-request return status 200 string 'mock'",
    ]
    assert count_answers(lines) == [
        "    http-request set-var(txn.x) str(1)",
        f"    http-request track-sc2 {UNMATCHED_KEY} table usage/counts if {NO_ROUTE}",
        f"    http-request return status 404 string 'no' if {NO_ROUTE} {{ sc_inc_gpc(3,2) -m int gt 0 }}",
        f"    http-request track-sc2 {KEY} table usage/counts if {{ var(txn.ka) -m str g0 }}",
        "    http-request return status 401 string 'who or what' if { var(txn.ka) -m str g0 } "
        "{ sc_inc_gpc(3,2) -m int gt 0 }",
        f"    http-request track-sc2 {KEY} table usage/counts if {{ var(txn.rd) -m str g0 }} || {{ ssl_fc }}",
        "    http-request sc-inc-gpc(2,2) if { var(txn.rd) -m str g0 } || { ssl_fc }",
        "    http-request redirect scheme https if { var(txn.rd) -m str g0 } || { ssl_fc }",
        f"    http-request track-sc2 {KEY} table usage/counts",
        "    http-request return status 200 string 'mock' if { sc_inc_gpc(1,2) -m int gt 0 }",
    ]


def _sections(config: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    for block in config.split("\n\n"):
        lines = block.strip().splitlines()
        if lines:
            sections[lines[0]] = lines[1:]
    return sections


def test_each_route_backend_holds_only_its_own_plugins_and_tracks_the_upstreams_checks(tmp_path):
    """HAProxy evaluates every rule of a section for each request it handles: plugin rules live
    in the backends of the routes that use them, shared by routes of the same settings."""
    routes = [
        route_document(1, "a", "/a"),
        route_document(2, "b", "/b"),
        route_document(
            3,
            "limited",
            "/limited",
            plugins=[{"name": "limit-count", "config": {"count": 5, "time_window": 60, "key": "route"}}],
        ),
        route_document(4, "open", "/open", service_id=2),
    ]
    files = render_routes(routes, tmp_path)
    backend_of = dict(line.split() for line in files["maps/route_backend.map"].splitlines())
    assert backend_of["1"] == backend_of["2"] != backend_of["3"]  # the service's key-auth alone
    assert backend_of["4"] == "plain_up_2"
    sections = _sections(files["haproxy.cfg"])
    frontend = "\n".join(sections["frontend gateway"])
    assert "txn.key" not in frontend and "rl_g" not in frontend
    keyed, limited = ("\n".join(sections[f"backend {backend_of[r]}"]) for r in ("1", "3"))
    assert "txn.key" in keyed and "rl_g" not in keyed
    assert "txn.key" in limited and "track-sc0" in limited
    assert "txn.key" not in "\n".join(sections["backend plain_up_2"])
    # Upstream 1's active checks run once, in up_1; every backend to it follows their verdict.
    assert any(" check inter " in line for line in sections["backend up_1"])
    for name in (backend_of["1"], backend_of["3"]):
        [server] = [line for line in sections[f"backend {name}"] if line.strip().startswith("server ")]
        assert server.endswith("track up_1/t0") and " check" not in server
    # Upstream 2's passive checks observe each backend's own traffic.
    [server] = [line for line in sections["backend plain_up_2"] if line.strip().startswith("server ")]
    assert "observe layer7" in server
    assert haproxy_check(write(files, tmp_path)).returncode == 0


def test_a_plugins_checks_record_their_reason_and_one_rule_answers_with_it():
    """A check costs one rule: it records why it refuses, and one answer gives the reason of the
    last check that held, in the one JSON error shape."""
    from gateway_agent.directives import deny_refused, refuse_if

    assert refuse_if("Unknown HMAC key id", "!{ var(txn.k) -m found }") == (
        "http-request set-var(txn.refusal) \"str('Unknown HMAC key id')\" if !{ var(txn.k) -m found }"
    )
    assert deny_refused(401, "unauthorized") == (
        "http-request return status 401 content-type application/json lf-string "
        '\'{"error":"unauthorized","message":"%[var(txn.refusal)]"}\' if { var(txn.refusal) -m found }'
    )
    with pytest.raises(RenderError):
        refuse_if("Can't say", "{ always_true }")
