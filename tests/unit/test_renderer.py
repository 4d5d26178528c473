"""The renderer: a pure function from snapshot to files, which `haproxy -c` accepts."""

import shutil
import subprocess
from pathlib import Path

import pytest

from gateway_agent.directives import words
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
    from gateway_agent.metering import KEY, UPSTREAM_LINES, count_route_answers, status_gpc

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
        "    http-request return status 403 string 'no' if { src 10.0.0.1 } "
        f"{{ sc_inc_gpc({status_gpc(403)},2) -m int gt 0 }}",
        "    http-request set-var(txn.consumer) var(txn.key),map(keys.map)",
        track,
        "    http-request return status 401 string 'who' if !{ var(txn.consumer) -m found } "
        f"{{ sc_inc_gpc({status_gpc(401)},2) -m int gt 0 }}",
        "    http-request set-var(txn.rl) var(txn.consumer),map(rl.map)",
        "    http-request return status 429 string 'slow' if { var(txn.rl_used) -m int gt 5 } "
        f"{{ sc_inc_gpc({status_gpc(429)},2) -m int gt 0 }}",
        "    http-request set-var(txn.sent_ms) date(0,ms) if { sc_inc_gpc(5,2) -m int gt 0 }",
    ]
    # A route without authentication: tracked first thing.
    unnamed = count_route_answers([lines[0], *lines[-1:]])
    assert (
        unnamed[0] == track and unnamed[1] == lines[0] + f" {{ sc_inc_gpc({status_gpc(403)},2) -m int gt 0 }}"
    )


def test_each_answer_the_gateway_gives_is_tracked_and_counted_once_by_its_own_condition():
    """The rules metering adds around an answer: tracked under the request's usage key (route 0
    when none matched), counted by the answer's condition, or by a rule of its own when an OR
    could let the count slip past the other terms."""
    from gateway_agent.metering import KEY, NO_ROUTE, UNMATCHED_KEY, count_answers, status_gpc

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
        f"    http-request return status 404 string 'no' if {NO_ROUTE} {{ sc_inc_gpc({status_gpc(404)},2) -m int gt 0 }}",
        f"    http-request track-sc2 {KEY} table usage/counts if {{ var(txn.ka) -m str g0 }}",
        "    http-request return status 401 string 'who or what' if { var(txn.ka) -m str g0 } "
        f"{{ sc_inc_gpc({status_gpc(401)},2) -m int gt 0 }}",
        f"    http-request track-sc2 {KEY} table usage/counts if {{ var(txn.rd) -m str g0 }} || {{ ssl_fc }}",
        f"    http-request sc-inc-gpc({status_gpc(302)},2) if {{ var(txn.rd) -m str g0 }} || {{ ssl_fc }}",
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
    # A message holding a single quote (a header name may) goes in double quotes for HAProxy's
    # argument reader, inside the word's own.
    assert refuse_if("The x'y header must be signed", "{ always_true }") == (
        'http-request set-var(txn.refusal) "str(\\"The x\'y header must be signed\\")" if { always_true }'
    )


# Every character a header name may hold (RFC 9110's tchar) that means something to HAProxy.
HOSTILE_NAMES = ["x#y", "x'y", "x$y", "-x", "x%y", "x'#$%&*+.^_`|~!-z"]
HOSTILE_TEXT = "-a'b\"c$d\\e#f%g ${HOME} \\x41 }"


def test_every_users_string_is_quoted_and_haproxy_reads_it_as_written(tmp_path):
    """Header names, values, paths, regexes, plugin settings holding what HAProxy's line and
    argument readers treat specially (#, quotes, $, \\, %, a leading -): quoted by the shared
    functions, so `haproxy -c` accepts the whole configuration."""
    header_ops = {
        "set": {name: HOSTILE_TEXT for name in HOSTILE_NAMES},
        "add": {"x'y": "1"},
        "remove": HOSTILE_NAMES,
    }
    routes = [
        route_document(
            10,
            "hostile",
            "-(?i)/x#y'$",
            kind="regex",
            headers=[
                *({"name": name, "value": HOSTILE_TEXT} for name in HOSTILE_NAMES),
                {"name": "x'y", "value": "-a'b(?i)c#", "type": "regex"},
            ],
            plugins=[
                {"name": "proxy-rewrite", "config": {"headers": header_ops, "host": HOSTILE_TEXT}},
                {"name": "response-rewrite", "config": {"headers": header_ops}},
                {"name": "cors", "config": {"allow_origins": ["https://a"], "allow_headers": HOSTILE_NAMES}},
                {"name": "hmac-auth", "config": {"signed_headers": HOSTILE_NAMES}},
            ],
        ),
        route_document(
            11,
            "mocked",
            "/mock",
            plugins=[
                {
                    "name": "mocking",
                    "config": {"body": HOSTILE_TEXT, "headers": {n: HOSTILE_TEXT for n in HOSTILE_NAMES}},
                },
                {"name": "jwt-auth", "config": {"header": "x'#y", "hide_credentials": True}},
            ],
        ),
        route_document(
            12,
            "split",
            "/split",
            service_id=2,
            plugins=[
                {
                    "name": "traffic-split",
                    "config": {
                        "rules": [
                            {
                                "match": {
                                    "header": {"x#'y": "-v", "x$y": HOSTILE_TEXT},
                                    "query": {"q.-~": "}x"},
                                    "cookie": {"c_": "'"},
                                },
                                "upstream": "orders",
                            }
                        ]
                    },
                },
                {"name": "redirect", "config": {"uri": HOSTILE_TEXT}},
            ],
        ),
        # Paths as the catalog takes them (a slash first, no blank): in a rule, and in a map.
        route_document(13, "ruled", "/a'b\"c#d\\e$f%g", kind="exact", hosts=["a.example.com"]),
        route_document(14, "mapped", "/a'b\"c#d\\e$f%g/"),
    ]
    document = snapshot_document(routes=routes, certificates=[])
    document["services"][0]["plugins"] = [
        {"name": "key-auth", "config": {"header": "x'y#z", "hide_credentials": True}}
    ]
    document["upstreams"][1]["hash_header"] = "x#y'z"
    document["upstreams"][0]["active_health_check"]["path"] = "/a'b#c\"d\\e$f"
    options = RenderOptions(config_dir=str(tmp_path), runtime_socket=str(tmp_path / "s.sock"))
    files = render(Snapshot.model_validate(document), options)
    config = files["haproxy.cfg"]
    result = haproxy_check(write(files, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "{ req.hdr('x#y') -m str -- " in config
    assert 'balance hdr("x#y\'z")' in config
    assert "    http-request del-header 'x#y'" in config
    assert 'req.fhdr("\\"x\'y#z\\"",1)' in config  # in double quotes for the argument reader too
    assert '{ path "/a\'b\\"c#d\\\\e\\$f%g" }' in config
    assert files["maps/routes_p0_prefix.map"] == "/a'b\"c#d\\e$f%g/ 14\n/split 12\n/mock 11\n"


def test_a_route_with_more_conditions_than_a_line_holds_names_them_in_acls(tmp_path):
    """HAProxy reads 64 words a line: a route whose rule would hold more names its paths, hosts
    and headers in `acl` lines (an ACL declared on several lines holds all their patterns) and
    keeps its rules, one per alternative; a usual route is written as before."""
    headers = [{"name": f"X-H{index}", "value": f"-{index}"} for index in range(20)]
    hosts = [f"h{index}.example.com" for index in range(60)] + [
        f"*.w{index}.example.com" for index in range(40)
    ]
    paths = [{"type": "regex", "value": f"^/p{index}$"} for index in range(100)]
    big = {
        "id": 10,
        "name": "big",
        "service_id": 1,
        "paths": paths,
        "hosts": hosts,
        "headers": headers,
        "methods": ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE", "CONNECT"],
    }
    usual = route_document(11, "usual", "^/u$", kind="regex", headers=headers[:2], hosts=["a.example.com"])
    files = render_routes([big, usual], tmp_path)
    config = files["haproxy.cfg"]
    assert all(words(line) <= 64 for line in config.splitlines())
    lines = config.splitlines()
    assert "    acl route10_header19 req.hdr('X-H19') -m str -- '-19'" in lines
    assert sum(line.startswith("    acl route10_regex path_reg '^/p0$' ") for line in lines) == 1
    assert sum(line.startswith("    acl route10_regex ") for line in lines) == 2
    assert sum(line.startswith("    acl route10_host_str ") for line in lines) == 2
    assert sum(line.startswith("    acl route10_host_end ") for line in lines) == 1
    names = " ".join(f"route10_header{index}" for index in range(20))
    methods = "{ method DELETE GET HEAD OPTIONS PATCH POST PUT TRACE CONNECT }"
    assert [line for line in lines if "str(10)" in line] == [
        f"    http-request set-var(txn.route) str(10) if route10_regex route10_host_str {methods} {names}",
        "    http-request set-var(txn.route) str(10) if !{ var(txn.route) -m found } route10_regex "
        f"route10_host_end {methods} {names}",
    ]
    [usual_rule] = [line for line in lines if "str(11)" in line]
    assert usual_rule == (
        "    http-request set-var(txn.route) str(11) if !{ var(txn.route) -m found } { path_reg '^/u$' } "
        "{ req.hdr(host),field(1,:),lower -m str 'a.example.com' } { req.hdr('X-H0') -m str -- '-0' } "
        "{ req.hdr('X-H1') -m str -- '-1' }"
    )
    result = haproxy_check(write(files, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (route_document(10, "u", "(?u)/x", kind="regex"), "Route 'u': regex '\\(\\?u\\)/x' is invalid"),
        (
            route_document(10, "h", "/h", headers=[{"name": "X", "value": "(a)\\1", "type": "regex"}]),
            "non-existent subpattern",
        ),
        (route_document(10, "b", "/b", headers=[{"name": "X", "value": "}"}]), "cannot be a pattern"),
        (route_document(10, "e", "}", kind="regex"), "cannot be a pattern"),
    ],
)
def test_what_haproxy_would_refuse_in_a_route_stops_the_render(tmp_path, route, message):
    with pytest.raises(RenderError, match=message):
        render_routes([route], tmp_path)


def test_an_answers_condition_is_found_past_quoted_text_and_escapes():
    """Metering tracks an answer by its condition: a user's text (a mocked body) holding an
    escaped quote and ` if ` must not be taken for it, nor its `status 500` for the answer's."""
    from gateway_agent.directives import condition_of, quote
    from gateway_agent.metering import count_answers

    body = quote('\' " if { always_true } status 500 "')
    line = f"    http-request return status 200 content-type 'a' string {body} if {{ var(txn.mk) -m str g0 }}"
    assert condition_of(line) == "{ var(txn.mk) -m str g0 }"
    tracking, counted = count_answers([line])
    assert tracking.endswith(" if { var(txn.mk) -m str g0 }")
    assert counted == line + " { sc_inc_gpc(1,2) -m int gt 0 }"


def test_arguments_are_quoted_for_the_line_and_the_argument_reader():
    from gateway_agent.directives import argument, patterns

    assert argument("X-Beta") == "'X-Beta'"
    assert argument("x#y") == "'x#y'"
    assert argument("x'y") == '"\\"x\'y\\""'
    assert argument("a,b)") == "'\"a,b)\"'"
    assert patterns(["/a", "/b"]) == "'/a' '/b'"
    assert patterns(["/a", "-b"]) == "-- '/a' '-b'"


def _restricted_snapshot(routes: list[dict]) -> dict:
    """The sample snapshot (no certificate) with consumers to restrict and these routes."""
    consumers = [
        ("app", {"portal-v1": "subscribed"}),
        ("named", {}),
        ("trial", {"portal-v1": "trial"}),
        ("gold", {"tier": "gold"}),
    ]
    return snapshot_document(
        routes=routes,
        certificates=[],
        consumers=[
            {
                "id": index,
                "username": name,
                "labels": labels,
                "credentials": [{"type": "key-auth", "id": index, "key_sha256": f"{index:02x}" * 32}],
            }
            for index, (name, labels) in enumerate(consumers, start=1)
        ],
    )


def test_consumer_restriction_lets_through_the_consumers_named_or_with_one_of_the_labels(tmp_path):
    """The consumers a setting lets through are resolved at render time into a pattern file per
    setting, looked up once a request's consumer is named: after authentication, before the
    limits. A setting nobody matches writes an empty file, which matches no name: everybody is
    refused, as is a request no authentication named."""
    limit = {"name": "limit-count", "config": {"count": 5, "time_window": 60, "key": "consumer"}}

    def restricted(route_id: int, config: dict, **more: object) -> dict:
        plugins = [{"name": "consumer-restriction", "config": config}, limit]
        return route_document(route_id, f"r{route_id}", f"/r{route_id}", plugins=plugins, **more)

    routes = [
        restricted(3, {"labels": {"portal-v1": "subscribed", "tier": "gold"}}),
        restricted(4, {"consumers": ["named", "ghost"], "labels": {"tier": "none"}, "rejected_code": 401}),
        restricted(5, {"labels": {"portal-v1": "nobody"}}),
        restricted(6, {"consumers": ["app"]}, service_id=2),  # no authentication: nobody passes
    ]
    snapshot = Snapshot.model_validate(_restricted_snapshot(routes))
    files = render(snapshot, RenderOptions(config_dir=str(tmp_path)))
    # Any one label pair; names of consumers the snapshot lacks are left out.
    assert files["acl/cr_g0.lst"] == "app\ngold\n"
    assert files["acl/cr_g1.lst"] == "named\n"
    assert files["acl/cr_g2.lst"] == ""
    assert files["acl/cr_g3.lst"] == "app\n"

    sections = _sections(files["haproxy.cfg"])
    backend_of = dict(line.split() for line in files["maps/route_backend.map"].splitlines())
    body = '\'{"error":"forbidden","message":"The consumer is not allowed to call this route"}\''
    for route_id, group, status in (("3", "g0", 403), ("4", "g1", 401), ("6", "g3", 403)):
        lines = [line.strip() for line in sections[f"backend {backend_of[route_id]}"]]
        [rule] = [line for line in lines if f"cr_{group}.lst" in line]
        assert rule.startswith(
            f"http-request return status {status} content-type application/json string {body} "
            f"if !{{ var(txn.consumer) -m str -f {tmp_path}/acl/cr_{group}.lst }}"
        )
        at = lines.index(rule)
        # Before the limits, which a refused consumer must not use up.
        assert at < min(i for i, line in enumerate(lines) if "track-sc0" in line)
        if route_id != "6":  # after authentication has named the consumer
            assert at > lines.index("http-request set-header X-Consumer-Username %[var(txn.consumer)]")
    assert haproxy_check(write(files, tmp_path)).returncode == 0


def test_consumer_restriction_refuses_a_consumer_name_a_pattern_file_cannot_hold(tmp_path):
    restriction = {"name": "consumer-restriction", "config": {"consumers": ["#x"]}}
    document = _restricted_snapshot([route_document(3, "r", "/r", plugins=[restriction])])
    document["consumers"][0]["username"] = "#x"  # HAProxy would skip the line as a comment
    with pytest.raises(RenderError, match="cannot be a consumer's name"):
        render(Snapshot.model_validate(document), RenderOptions(config_dir=str(tmp_path)))


def test_a_disabled_consumers_credentials_open_nothing_and_a_plan_can_span_every_route(tmp_path):
    """A suspended (disabled) consumer stays in the snapshot but its key is in no map: 401. A
    limit-count with per_route false counts a consumer's calls to every route together."""
    limit = {
        "name": "limit-count",
        "config": {"count": 5, "time_window": 1, "key": "consumer", "per_route": False},
    }
    document = _restricted_snapshot([route_document(3, "r", "/r", plugins=[limit])])
    document["consumers"][1]["enabled"] = False
    files = render(Snapshot.model_validate(document), RenderOptions(config_dir=str(tmp_path)))
    keys = files.get("maps/keys.map", "") + files.get("maps/keys_hmac.map", "")
    assert "01" * 32 in keys and "02" * 32 not in keys
    tracked = [line for line in files["haproxy.cfg"].splitlines() if "track-sc0" in line]
    assert tracked and all("txn.route" not in line and "txn.consumer" in line for line in tracked)


def test_a_preflight_no_route_took_is_matched_by_its_announced_method_in_no_route_alone(
    tmp_path: Path,
) -> None:
    """A CORS preflight is OPTIONS, which a route naming its methods does not match. The
    `no_route` backend matches such a preflight again by the method it announces, against the
    same routes (the same maps), and a route with cors answers it with its settings. Routed
    requests never see those lines: the frontend is the same with and without cors, and a
    configuration without cors has none of them."""
    cors = {"name": "cors", "config": {"allow_origins": ["https://portal.example"]}}
    key_auth = {"name": "key-auth", "config": {}}
    hosts = [f"h{index}.example.com" for index in range(60)]

    def routes(with_cors: bool) -> list[dict]:
        plugins = [cors, key_auth] if with_cors else [key_auth]
        return [
            route_document(3, "pet", "^/pets/[^/]+$", kind="regex", methods=["GET"], plugins=plugins),
            route_document(4, "inventory", "/inventory", kind="exact", methods=["GET"], plugins=plugins),
            route_document(5, "any", "/any", service_id=2),
            route_document(6, "hosted", "/h", methods=["GET", "POST"], hosts=hosts, plugins=plugins),
        ]

    plain = render_routes(routes(with_cors=False), tmp_path)
    files = render_routes(routes(with_cors=True), tmp_path)
    assert (
        _sections(plain["haproxy.cfg"])["frontend gateway"]
        == _sections(files["haproxy.cfg"])["frontend gateway"]
    )
    assert "pf_method" not in plain["haproxy.cfg"] and "maps/route_cors.map" not in plain

    no_route = [line.strip() for line in _sections(files["haproxy.cfg"])["backend no_route"]]
    assert no_route[0] == (
        "http-request set-var(txn.pf_method) req.fhdr(access-control-request-method) "
        "if { method OPTIONS } { req.hdr(origin) -m found }"
    )
    matching = [line for line in no_route if line.startswith("http-request set-var(txn.pf_route) ")]
    # Every rule stops at its first term for a request that is no preflight.
    assert matching and all(line.split(" if ")[1].startswith("{ var(txn.pf_method) ") for line in matching)
    assert any(f"map_str({tmp_path}/maps/routes_p0_exact_GET.map)" in line for line in matching)
    assert any("route6_host_str" in line for line in no_route)  # its hosts as named ACLs here too
    assert files["maps/route_cors.map"] == "3 g0\n4 g0\n6 g0\n"
    preflight = no_route.index(
        next(line for line in no_route if line.startswith("http-request return status 204"))
    )
    assert preflight < no_route.index(next(line for line in no_route if "status 404" in line))
    assert all(words(line) <= 64 for line in files["haproxy.cfg"].splitlines())
    assert haproxy_check(write(files, tmp_path)).returncode == 0
