"""From a config snapshot to HAProxy's files: a pure function, no I/O.

`render(snapshot, options)` returns {relative path: content}: `haproxy.cfg`, the map of hashed
API keys to consumers, certificate bundles and their crt-list, and JSON error pages. The agent
writes them into a fresh folder, checks them with `haproxy -c`, then swaps; the control plane
may call the same function to dry-run a snapshot.

Request flow in the `gateway` frontend:
1. Routing: one rule per route (and path type), highest priority first, sets `txn.route` to the
   first route whose hosts, paths, methods and headers match. No match: 404 in JSON.
2. The route's plugins, in a fixed order: authentication (key-auth: the SHA-256 of the key is
   looked up in a map, so keys never appear in the config), then limit-count, then
   proxy-rewrite and the route's strip_path_prefix.
3. `use_backend` the route's upstream: balancing, health checks, timeouts, retries, TLS.

Plugins of a route come from the route, then its service, then the cluster (the first wins);
consumer-scoped plugins need the consumer known first, which is the next issue's work."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .protocol import Certificate, Consumer, Plugin, Route, Service, Snapshot, Upstream

SUPPORTED_PLUGINS = {"key-auth", "limit-count", "proxy-rewrite"}


@dataclass(frozen=True)
class RenderOptions:
    http_port: int = 8080
    https_port: int | None = 8443
    metrics_port: int | None = 9101
    bind_address: str = "*"
    # Absolute folder the files are written to: HAProxy reads maps and certificates from it.
    config_dir: str = "/var/lib/gateway-agent/current"
    runtime_socket: str = "/run/gateway-agent/haproxy.sock"
    # None lets HAProxy size it from the file-descriptor limit it runs under.
    maxconn: int | None = None


class RenderError(ValueError):
    """The snapshot cannot be turned into a configuration (and must not replace the running one)."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _quote(value: str) -> str:
    """One HAProxy argument. Single quotes take everything literally (no `$` expansion, no
    escapes); a value holding a single quote goes in double quotes with \\, " and $ escaped.
    Control characters are refused: a newline would end the directive and start another."""
    if _CONTROL.search(value):
        raise RenderError(f"Control characters are not allowed in {value!r}.")
    if "'" not in value:
        return "'" + value + "'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def _json_body(error: str, message: str) -> str:
    return json.dumps({"error": error, "message": message}, separators=(",", ":"))


def _return(status: int, error: str, message: str, extra_headers: str = "") -> str:
    return (
        f"http-request return status {status} content-type application/json "
        f"string {_quote(_json_body(error, message))}{extra_headers}"
    )


def _effective_plugins(
    route: Route, service: Service, global_plugins: list[Plugin]
) -> dict[str, dict[str, Any]]:
    plugins: dict[str, dict[str, Any]] = {}
    for source in (global_plugins, service.plugins, route.plugins):  # later, more specific, wins
        for plugin in source:
            plugins[plugin.name] = plugin.config
    return plugins


def _route_conditions(route: Route) -> list[str]:
    """One ACL expression per group of same-typed paths (ACLs on one line are ANDed; patterns
    of one ACL are ORed)."""
    common: list[str] = []
    if route.hosts:
        exact = [h for h in route.hosts if not h.startswith("*.")]
        wildcard = [h[1:] for h in route.hosts if h.startswith("*.")]
        host_acls = []
        if exact:
            host_acls.append("{ req.hdr(host),field(1,:),lower -m str " + " ".join(exact) + " }")
        if wildcard:
            host_acls.append("{ req.hdr(host),field(1,:),lower -m end " + " ".join(wildcard) + " }")
        common.append(" || ".join(host_acls) if len(host_acls) > 1 else host_acls[0])
    if route.methods:
        common.append("{ method " + " ".join(route.methods) + " }")
    for header in route.headers:
        match = "-m reg" if header.type == "regex" else "-m str"
        common.append(f"{{ req.hdr({header.name}) {match} {_quote(header.value)} }}")
    by_type: dict[str, list[str]] = {}
    for path in route.paths:
        by_type.setdefault(path.type, []).append(path.value)
    conditions = []
    fetch = {"prefix": "path_beg", "exact": "path", "regex": "path_reg"}
    for kind in ("exact", "prefix", "regex"):
        if kind in by_type:
            values = " ".join(_quote(v) for v in by_type[kind])
            conditions.append(" ".join([f"{{ {fetch[kind]} {values} }}", *common]))
    return conditions


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _upstream_backend(upstream: Upstream, options: RenderOptions) -> list[str]:
    balance = {
        "roundrobin": "roundrobin",
        "leastconn": "leastconn",
        "hash_header": f"hdr({upstream.hash_header})",
        "hash_client_ip": "source",
        "hash_uri": "uri",
    }[upstream.load_balancing]
    lines = [
        f"backend up_{upstream.id}",
        f"    # upstream {upstream.name}",
        f"    balance {balance}",
        f"    timeout connect {_ms(upstream.timeouts.connect_s)}",
        f"    timeout server {_ms(max(upstream.timeouts.send_s, upstream.timeouts.read_s))}",
        f"    retries {upstream.retries}",
        "    option redispatch",
        f"    errorfile 502 {options.config_dir}/errors/502.http",
        f"    errorfile 503 {options.config_dir}/errors/503.http",
        f"    errorfile 504 {options.config_dir}/errors/504.http",
    ]
    if upstream.load_balancing.startswith("hash"):
        lines.append("    hash-type consistent")
    check = upstream.active_health_check
    if check is not None:
        lines += [f"    option httpchk GET {check.path}", "    http-check expect status 200-399"]
    for index, target in enumerate(upstream.targets):
        server = [f"    server t{index} {target.host}:{target.port} weight {target.weight}"]
        if upstream.scheme == "https":
            sni = upstream.tls_sni or target.host
            if upstream.tls_verify:
                ca = (
                    f"ca-file {options.config_dir}/ca/up_{upstream.id}.pem"
                    if upstream.tls_ca_pem
                    else "ca-file @system-ca"
                )
                server.append(f"ssl verify required {ca} verifyhost {sni}")
            else:
                server.append("ssl verify none")
            server.append(f"sni str({sni})")
        if check is not None:
            interval = _ms(check.interval_s)
            server.append(
                f"check inter {interval} rise {check.healthy_threshold} fall {check.unhealthy_threshold}"
            )
        passive = upstream.passive_health_check
        if passive is not None:
            if check is None:
                server.append("check inter 1h")  # passive needs checks enabled; the active one stays rare
            server.append(f"observe layer7 error-limit {passive.max_fails} on-error mark-down")
        lines.append(" ".join(part for part in server if part))
    return lines


def _groups(by_route: dict[int, Any]) -> tuple[dict[int, str], dict[str, Any]]:
    """Routes with the same setting share one group (g0, g1, ...): the configuration has a few
    rules per distinct setting, found through a map, instead of rules per route."""
    route_group: dict[int, str] = {}
    groups: dict[str, Any] = {}
    names: dict[str, str] = {}
    for route_id, setting in sorted(by_route.items()):
        canonical = json.dumps(setting, sort_keys=True)
        if canonical not in names:
            names[canonical] = f"g{len(names)}"
            groups[names[canonical]] = setting
        route_group[route_id] = names[canonical]
    return route_group, groups


def _map_file(entries: dict[Any, Any]) -> str:
    return "".join(f"{key} {value}\n" for key, value in entries.items())


def _key_auth_rules(groups: dict[str, Any], options: RenderOptions) -> list[str]:
    lines = []
    for group, config in groups.items():
        header = config.get("header", "apikey")
        query = config.get("query", "apikey")
        cond = f"{{ var(txn.ka) -m str {group} }}"
        lines += [
            f"    http-request set-var(txn.key) req.hdr({header}) if {cond} {{ req.hdr({header}) -m found }}",
            f"    http-request set-var(txn.key) url_param({query}) if {cond} !{{ var(txn.key) -m found }} "
            f"{{ url_param({query}) -m found }}",
            f"    {_return(401, 'unauthorized', 'Missing API key')} if {cond} !{{ var(txn.key) -m found }}",
            f"    http-request set-var(txn.consumer) var(txn.key),sha2(256),hex,lower,map({options.config_dir}/maps/keys.map) "
            f"if {cond}",
            f"    {_return(401, 'unauthorized', 'Invalid API key')} if {cond} !{{ var(txn.consumer) -m found }}",
        ]
        if config.get("hide_credentials"):
            lines.append(f"    http-request del-header {header} if {cond}")
    return lines


def _limit_count_rules(groups: dict[str, Any], options: RenderOptions) -> tuple[list[str], list[list[str]]]:
    """Fixed windows: the counter's key carries the route and the window's number, so a new
    window starts at zero exactly at its edge. A table per group; limits from a map."""
    lines = [
        "    http-request set-var(txn.rl_limit) var(txn.route),"
        f"map_str_int({options.config_dir}/maps/route_rl_limit.map) if {{ var(txn.rl) -m found }}",
    ]
    tables = []
    for group, (window, key, rejected) in groups.items():
        source = {"consumer": "var(txn.consumer)", "route": "var(txn.route)", "client_ip": "src"}[key]
        cond = f"{{ var(txn.rl) -m str {group} }}"
        table = f"rl_{group}"
        lines += [
            f"    http-request set-var(txn.rl_window) date,div({window}) if {cond}",
            f"    http-request set-var(txn.rl_key) {source},concat(:,txn.route),concat(:,txn.rl_window) if {cond}",
            f"    http-request track-sc0 var(txn.rl_key) table {table} if {cond}",
            f"    http-request sc-inc-gpc0(0) if {cond}",
            f"    http-request set-var(txn.rl_used) sc_get_gpc0(0) if {cond}",
            f"    http-request set-var(txn.rl_reset) date,mod({window}),neg,add({window}) if {cond}",
            f"    http-request return status {rejected} content-type application/json "
            f"string {_quote(_json_body('rate_limited', 'Too many requests'))} "
            "hdr X-RateLimit-Limit %[var(txn.rl_limit)] hdr X-RateLimit-Remaining 0 "
            "hdr X-RateLimit-Reset %[var(txn.rl_reset)] "
            f"if {cond} {{ var(txn.rl_used),sub(txn.rl_limit) -m int gt 0 }}",
        ]
        tables.append(
            [
                f"backend {table}",
                f"    stick-table type string len 200 size 1m expire {window * 2}s store gpc0",
            ]
        )
    return lines, tables


def _proxy_rewrite_rules(groups: dict[str, Any]) -> list[str]:
    lines = []
    for group, config in groups.items():
        cond = f"if {{ var(txn.pr) -m str {group} }}"
        if "uri" in config:
            lines.append(f"    http-request set-path {_quote(config['uri'])} {cond}")
        if "host" in config:
            lines.append(f"    http-request set-header Host {_quote(config['host'])} {cond}")
        headers = config.get("headers", {})
        for name, value in headers.get("set", {}).items():
            lines.append(f"    http-request set-header {name} {_quote(value)} {cond}")
        for name, value in headers.get("add", {}).items():
            lines.append(f"    http-request add-header {name} {_quote(value)} {cond}")
        for name in headers.get("remove", []):
            lines.append(f"    http-request del-header {name} {cond}")
    return lines


def _strip_prefix_rules(groups: dict[str, Any]) -> list[str]:
    lines = []
    for group, prefix in groups.items():
        pattern = _quote("^" + re.escape(prefix.rstrip("/")) + "/?(.*)")
        lines.append(
            f"    http-request replace-path {pattern} {_quote('/' + chr(92) + '1')} if {{ var(txn.sp) -m str {group} }}"
        )
    return lines


def _is_simple(route: Route) -> bool:
    """Matched by path (exact or prefix) and method alone: found through maps."""
    return not route.hosts and not route.headers and all(p.type in ("exact", "prefix") for p in route.paths)


def _routing(routes: list[Route], options: RenderOptions) -> tuple[list[str], dict[str, str]]:
    """Routes by priority tier (highest first). In a tier: routes with host, header or regex
    conditions as rules (by id), then the others through maps: exact paths before prefixes
    (longest first), method-specific before any-method. Each lookup is one map search in
    HAProxy, whatever the number of routes."""
    lines = [
        "    http-request set-var(txn.path) path",
        "    http-request set-var(txn.mpath) method,concat(|,txn.path)",
    ]
    files: dict[str, str] = {}
    unset = "!{ var(txn.route) -m found }"
    for priority in sorted({r.priority for r in routes}, reverse=True):
        tier = [r for r in routes if r.priority == priority]
        for route in sorted((r for r in tier if not _is_simple(r)), key=lambda r: r.id):
            for condition in _route_conditions(route):
                lines.append(f"    http-request set-var(txn.route) str({route.id}) if {unset} {condition}")
        simple = sorted((r for r in tier if _is_simple(r)), key=lambda r: r.id)
        lookups: list[tuple[str, str, dict[str, int]]] = []
        for kind, converter in (("exact", "map_str"), ("prefix", "map_beg")):
            with_method: dict[str, int] = {}
            any_method: dict[str, int] = {}
            for route in simple:
                for path in (p for p in route.paths if p.type == kind):
                    for method in route.methods:
                        with_method.setdefault(f"{method}|{path.value}", route.id)
                    if not route.methods:
                        any_method.setdefault(path.value, route.id)
            if kind == "prefix":  # the longest prefix first: map_beg returns the first match
                with_method = dict(sorted(with_method.items(), key=lambda item: -len(item[0])))
                any_method = dict(sorted(any_method.items(), key=lambda item: -len(item[0])))
            lookups += [
                (f"{kind}_m", f"var(txn.mpath),{converter}", with_method),
                (kind, f"var(txn.path),{converter}", any_method),
            ]
        tag = f"p{priority}".replace("-", "n")
        for name, expression, entries in lookups:
            if not entries:
                continue
            map_path = f"maps/routes_{tag}_{name}.map"
            files[map_path] = _map_file(entries)
            lines.append(
                f"    http-request set-var(txn.route) {expression}({options.config_dir}/{map_path}) if {unset}"
            )
    lines.append("    " + _return(404, "not_found", "No route matches this request") + f" if {unset}")
    return lines, files


def _keys_map(consumers: list[Consumer]) -> str:
    lines = []
    for consumer in consumers:
        for credential in consumer.credentials:
            if credential.type == "key-auth":
                lines.append(f"{credential.key_sha256} {consumer.username}")
    return "\n".join(sorted(lines)) + "\n"


def _certificate_files(certificates: list[Certificate], options: RenderOptions) -> dict[str, str]:
    files: dict[str, str] = {}
    entries = []
    for certificate in certificates:
        if not certificate.private_key_pem:
            raise RenderError(f"Certificate {certificate.name!r} came without its private key.")
        path = f"certs/{certificate.id}.pem"
        files[path] = (
            certificate.certificate_pem.rstrip() + "\n" + certificate.private_key_pem.rstrip() + "\n"
        )
        entries.append(f"{options.config_dir}/{path} [alpn h2,http/1.1] " + " ".join(certificate.snis))
    if entries:
        files["certs/crt-list.txt"] = "\n".join(entries) + "\n"
    return files


def _error_page(status: int, reason: str, error: str, message: str) -> str:
    body = _json_body(error, message)
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Cache-Control: no-cache\r\nConnection: close\r\n\r\n{body}"
    )


def render(snapshot: Snapshot, options: RenderOptions) -> dict[str, str]:
    upstreams = {u.id: u for u in snapshot.upstreams}
    services = {s.id: s for s in snapshot.services}
    routes = sorted(snapshot.routes, key=lambda r: (-r.priority, r.id))
    certificate_files = _certificate_files(snapshot.certificates, options)

    bind = f"    bind {options.bind_address}:{options.http_port}"
    frontend = ["frontend gateway", bind]
    if options.https_port and "certs/crt-list.txt" in certificate_files:
        frontend.append(
            f"    bind {options.bind_address}:{options.https_port} ssl crt-list {options.config_dir}/certs/crt-list.txt"
        )
    frontend.append("    # 1. routing: the first matching route, by priority")
    routing, files = _routing(routes, options)
    frontend += routing

    # 2. plugins: a few rules per distinct setting; each route finds its groups through maps.
    key_auth: dict[int, Any] = {}
    limits: dict[int, Any] = {}
    limit_counts: dict[int, int] = {}
    rewrites: dict[int, Any] = {}
    strips: dict[int, Any] = {}
    backends: dict[int, str] = {}
    for route in routes:
        service = services.get(route.service_id)
        if service is None or service.upstream_id not in upstreams:
            raise RenderError(
                f"Route {route.name!r} points at a service or upstream missing from the snapshot."
            )
        backends[route.id] = f"up_{service.upstream_id}"
        plugins = _effective_plugins(route, service, snapshot.global_plugins)
        if "key-auth" in plugins:
            key_auth[route.id] = plugins["key-auth"]
        if "limit-count" in plugins:
            config = plugins["limit-count"]
            limits[route.id] = (
                int(config["time_window"]),
                config.get("key", "client_ip"),
                int(config.get("rejected_code", 429)),
            )
            limit_counts[route.id] = int(config["count"])
        if "proxy-rewrite" in plugins:
            rewrites[route.id] = plugins["proxy-rewrite"]
        if route.strip_path_prefix:
            strips[route.id] = route.strip_path_prefix
    tables: list[list[str]] = []
    frontend.append("    # 2. plugins")
    for var, name, by_route in (
        ("ka", "key_auth", key_auth),
        ("rl", "limit_count", limits),
        ("pr", "proxy_rewrite", rewrites),
        ("sp", "strip", strips),
    ):
        if not by_route:
            continue
        route_group, groups = _groups(by_route)
        files[f"maps/route_{name}.map"] = _map_file(route_group)
        frontend.append(
            f"    http-request set-var(txn.{var}) var(txn.route),map({options.config_dir}/maps/route_{name}.map)"
        )
        if var == "ka":
            frontend += _key_auth_rules(groups, options)
        elif var == "rl":
            files["maps/route_rl_limit.map"] = _map_file(limit_counts)
            lines, tables = _limit_count_rules(groups, options)
            frontend += lines
        elif var == "pr":
            frontend += _proxy_rewrite_rules(groups)
        else:
            frontend += _strip_prefix_rules(groups)
    frontend.append("    # 3. the route's upstream")
    files["maps/route_backend.map"] = _map_file(backends)
    frontend.append(
        f"    use_backend %[var(txn.route),map({options.config_dir}/maps/route_backend.map)] if {{ var(txn.route) -m found }}"
    )
    # Rate-limit headers on answers that passed.
    frontend += [
        "    http-response set-header X-RateLimit-Limit %[var(txn.rl_limit)] if { var(txn.rl_limit) -m found }",
        "    http-response set-header X-RateLimit-Remaining %[var(txn.rl_limit),sub(txn.rl_used)] "
        "if { var(txn.rl_limit) -m found }",
        "    http-response set-header X-RateLimit-Reset %[var(txn.rl_reset)] if { var(txn.rl_limit) -m found }",
    ]

    sections = [
        "global",
        *([f"    maxconn {options.maxconn}"] if options.maxconn else []),
        f"    stats socket {options.runtime_socket} mode 600 level admin expose-fd listeners",
        "    tune.ssl.default-dh-param 2048",
        "",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        # On reload, an old worker answers its idle keep-alive clients' next request (with
        # Connection: close) instead of closing under them: reloads lose no request.
        "    option idle-close-on-response",
        "    http-reuse safe",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 60s",
        # A target host that does not resolve yet must not keep the gateway from starting.
        "    default-server init-addr last,libc,none resolvers system",
        "",
        "resolvers system",
        "    parse-resolv-conf",
        "    hold valid 10s",
        "",
        *frontend,
        "",
    ]
    if options.metrics_port:
        sections += [
            "frontend metrics",
            f"    bind {options.bind_address}:{options.metrics_port}",
            "    http-request use-service prometheus-exporter if { path /metrics }",
            "    http-request return status 404",
            "",
        ]
    for upstream in snapshot.upstreams:
        sections += [*_upstream_backend(upstream, options), ""]
    for table in tables:
        sections += [*table, ""]

    files.update(
        {
            "haproxy.cfg": "\n".join(sections),
            "maps/keys.map": _keys_map(snapshot.consumers),
            **certificate_files,
        }
    )
    for upstream in snapshot.upstreams:
        if upstream.scheme == "https" and upstream.tls_verify and upstream.tls_ca_pem:
            files[f"ca/up_{upstream.id}.pem"] = upstream.tls_ca_pem
    files["errors/502.http"] = _error_page(502, "Bad Gateway", "bad_gateway", "The upstream failed to answer")
    files["errors/503.http"] = _error_page(
        503, "Service Unavailable", "unavailable", "No healthy upstream target"
    )
    files["errors/504.http"] = _error_page(
        504, "Gateway Timeout", "upstream_timeout", "The upstream took too long"
    )
    return files
