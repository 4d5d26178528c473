"""From a config snapshot to HAProxy's files: a pure function, no I/O.

`render(snapshot, options)` returns {relative path: content}: `haproxy.cfg`, map and pattern
files (hashed API keys to consumers, routes to backends, consumers to plugin settings),
certificate bundles and their crt-list, and JSON error pages. The agent writes them into a fresh
folder, checks them with `haproxy -c`, then swaps; the control plane may call the same function
to dry-run a snapshot.

Request flow:
1. The `gateway` frontend routes: highest priority first, the first route whose hosts, paths,
   methods and headers match sets `txn.route`. traffic-split, where a route has it, picks the
   upstream. Then `use_backend` the route's backend; no match goes to `no_route`, a 404 in JSON
   (unless it is a CORS preflight of a route with `cors`, matched there by the method it
   announces: `_preflight`).
2. The route's backend runs the route's plugins in the order of `gateway_agent.plugins.ORDER`:
   those before authentication, authentication (which names `txn.consumer`), then the rest; a
   consumer's own plugin settings apply once it is known. Then usage metering, and the upstream:
   balancing, health checks, timeouts, retries, TLS.

Routes with the same plugin settings to the same upstream share one backend
(`plugins_<digest of the settings>_up_<upstream id>`, or `plain_up_<id>` without plugins).
HAProxy evaluates every rule of a section for every request it handles, so plugin rules in the
frontend would cost every request every plugin any route uses; in backends, a request pays for
its own route's alone, and the route's settings need no test of which applies. Active health
checks run once per upstream, in `up_<id>`, and the route backends' servers track them.

Plugins of a route come from the route, then its service, then the cluster (the first wins).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from . import metering, pcre
from .consumer_set import ConsumerSet
from .directives import (
    MAX_WORDS,
    PluginRules,
    RenderError,
    RenderOptions,
    argument,
    condition_of,
    deny,
    json_body,
    patterns,
    quote,
    too_long,
    when,
    words,
)
from .plugins import BY_NAME, ORDER, SUPPORTED, GatewayPlugin, RenderContext, traffic_split
from .plugins.basic_auth import USERLIST, USERS_MAP
from .plugins.key_auth import KEYS_HMAC_MAP, KEYS_MAP
from .plugins.request_size_limit import buffer_size
from .protocol import Certificate, Plugin, Route, Service, Snapshot, Upstream

__all__ = ["SUPPORTED", "RenderError", "RenderOptions", "render"]

TRAFFIC_SPLIT = "traffic-split"
ROUTE_BACKEND_MAP = "maps/route_backend.map"  # route id -> its backend
ROUTE_PLUGINS_MAP = "maps/route_plugins.map"  # route id -> its backends' name before _up_<id>
ROUTE_TRAFFIC_SPLIT_MAP = "maps/route_traffic_split.map"
NO_ROUTE_BACKEND = "no_route"
ROUTE_CORS_MAP = "maps/route_cors.map"  # route id -> its cors group: preflights no route took


def _effective_plugins(
    route: Route, service: Service, global_plugins: list[Plugin]
) -> dict[str, dict[str, Any]]:
    plugins: dict[str, dict[str, Any]] = {}
    for source in (global_plugins, service.plugins, route.plugins):  # later, more specific, wins
        for plugin in source:
            plugins[plugin.name] = plugin.config
    return plugins


_METHOD = re.compile(r"[A-Z]{1,20}")


# `http-request set-var(txn.route) str(<id>) if !{ var(txn.route) -m found }`: the words of a
# route's rule before its conditions.
_RULE_WORDS = 9
# Patterns an `acl` line declares at most (the line's other words: 6 at most).
_ACL_PATTERNS = 50
_HOST = "req.hdr(host),field(1,:),lower"
_PATH = {"prefix": "path_beg", "exact": "path", "regex": "path_reg"}


@dataclass(frozen=True)
class _Pass:
    """How one routing pass tells a request's method and where it puts the route it finds. The
    gateway's pass: the request's own method, into `txn.route`. The CORS preflight pass (in
    `no_route`, see `_preflight`): the method the preflight announces, for preflights alone."""

    target: str = "txn.route"
    method: str = "method"  # the fetch (and match) a route's methods are tested with
    gate: str = ""  # a term every rule tests first: requests outside the pass stop at it

    @property
    def unset(self) -> str:
        return f"!{{ var({self.target}) -m found }}"

    def methods(self, methods: list[str]) -> str:
        return f"{{ {self.method} {' '.join(methods)} }}"

    @property
    def rule_words(self) -> int:
        return _RULE_WORDS + (words(self.gate) if self.gate else 0)


_GATEWAY_PASS = _Pass()


def _fits(condition: str, rule_words: int = _RULE_WORDS) -> bool:
    """A route's rule with this condition stays within HAProxy's words a line (a condition has
    at most one word more than it has blanks: most are told by those alone)."""
    return rule_words + condition.count(" ") + 1 <= MAX_WORDS or rule_words + words(condition) <= MAX_WORDS


def _route_regex(route: Route, pattern: str) -> None:
    """A route's regex as HAProxy compiles an ACL's (PCRE2, no captures): one it would refuse
    stops the snapshot here, with the route's name, instead of at `haproxy -c`."""
    try:
        pcre.check(pattern)
    except pcre.RegexError as exc:
        raise RenderError(f"Route {route.name!r}: regex {pattern!r} is invalid: {exc}") from None


def _route_conditions(route: Route, matching: _Pass = _GATEWAY_PASS) -> tuple[list[str], list[str]]:
    """The route's match as alternative conditions, one rule each: one per kind of path (exact,
    prefix, regex) and kind of host (exact, wildcard). ACLs on one line are ANDed and the
    patterns of one ACL ORed; an `||` would bind looser than the other terms, so alternatives
    are separate rules. Every value is quoted (`patterns`, `argument`).

    HAProxy reads 64 words a line: when a rule would hold more, the route's paths, hosts and
    headers are named ACLs instead, declared in `acl` lines (returned first; an ACL declared on
    several lines holds the patterns of all), and its rules refer to them by name: the same
    rules, each a few words long."""
    methods = [matching.methods(route.methods)] if route.methods else []
    headers: list[str] = []
    for header in route.headers:
        if header.type == "regex":
            _route_regex(route, header.value)
        match = "-m reg" if header.type == "regex" else "-m str"
        headers.append(f"req.hdr({argument(header.name)}) {match} {patterns([header.value])}")
    hosts = {
        "str": [h for h in route.hosts if not h.startswith("*.")],
        "end": [h[1:] for h in route.hosts if h.startswith("*.")],
    }
    paths: dict[str, list[str]] = {}
    for path in route.paths:
        if path.type == "regex":
            _route_regex(route, path.value)
        paths.setdefault(path.type, []).append(path.value)
    host_terms = [f"{_HOST} -m {match} {patterns(values)}" for match, values in hosts.items() if values]
    path_terms = [
        f"{_PATH[kind]} {patterns(paths[kind])}" for kind in ("exact", "prefix", "regex") if kind in paths
    ]
    tail = "".join(f" {term}" for term in methods) + "".join(f" {{ {header} }}" for header in headers)
    hosts_of = [f" {{ {host} }}" for host in host_terms] or [""]
    conditions = [f"{{ {path} }}{host}{tail}" for path in path_terms for host in hosts_of]
    if all(_fits(condition, matching.rule_words) for condition in conditions):
        return [], conditions
    name = f"route{route.id}"
    acls: list[str] = []

    def declare(acl: str, fetch: str, values: list[str]) -> str:
        for start in range(0, len(values), _ACL_PATTERNS):
            acls.append(f"acl {acl} {fetch} {patterns(values[start : start + _ACL_PATTERNS])}")
        return acl

    host_names = [
        declare(f"{name}_host_{match}", f"{_HOST} -m {match}", values)
        for match, values in hosts.items()
        if values
    ]
    path_names = [
        declare(f"{name}_{kind}", _PATH[kind], paths[kind])
        for kind in ("exact", "prefix", "regex")
        if kind in paths
    ]
    header_names = [f"{name}_header{index}" for index in range(len(headers))]
    acls += [f"acl {acl} {term}" for acl, term in zip(header_names, headers, strict=True)]
    conditions = [
        " ".join([path, *host_names[i : i + 1], *methods, *header_names])
        for path in path_names
        for i in (range(len(host_names)) if host_names else [0])
    ]
    return acls, conditions


def _ms(seconds: float) -> str:
    return f"{max(1, round(seconds * 1000))}ms"


def _balancing(upstream: Upstream, options: RenderOptions) -> list[str]:
    """How a backend sends to an upstream's targets: balancing, timeouts, retries, error pages."""
    if upstream.load_balancing == "hash_header" and not upstream.hash_header:
        raise RenderError(f"Upstream {upstream.name!r} hashes on a header it does not name.")
    balance = {
        "roundrobin": "roundrobin",
        "leastconn": "leastconn",
        "hash_header": f"hdr({quote(upstream.hash_header or '')})",
        "hash_client_ip": "source",
        "hash_uri": "uri",
    }[upstream.load_balancing]
    lines = [
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
    return lines


def _checks_apart(upstream: Upstream) -> bool:
    """Active checks run once, in the upstream's own backend (`up_<id>`), and every backend
    sending to the upstream follows their verdict (`track`). Passive checks observe a backend's
    own traffic, which a tracking server cannot: each backend then checks its targets itself."""
    return upstream.active_health_check is not None and upstream.passive_health_check is None


# A target's host name or IP address, and its TLS server name: written as they are.
_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9.:-]*|::[A-Fa-f0-9.:]*")


def _servers(upstream: Upstream, options: RenderOptions, *, checked: bool) -> list[str]:
    """The upstream's targets as server lines: health-checked (`checked`), or tracking the
    checks of its own backend when those run apart."""
    check = upstream.active_health_check
    lines = []
    if checked and check is not None:
        lines += [f"    option httpchk GET {quote(check.path)}", "    http-check expect status 200-399"]
    for index, target in enumerate(upstream.targets):
        sni = upstream.tls_sni or target.host
        if not _ADDRESS.fullmatch(target.host) or not _ADDRESS.fullmatch(sni):
            raise RenderError(f"Upstream {upstream.name!r}: {target.host!r} is not a host name or address.")
        server = [f"    server t{index} {target.host}:{target.port} weight {target.weight}"]
        if upstream.scheme == "https":
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
        if not checked:
            server.append(f"track up_{upstream.id}/t{index}")
        elif check is not None:
            interval = _ms(check.interval_s)
            server.append(
                f"check inter {interval} rise {check.healthy_threshold} fall {check.unhealthy_threshold}"
            )
        passive = upstream.passive_health_check
        if checked and passive is not None:
            if check is None:
                server.append("check inter 1h")  # passive needs checks enabled; the active one stays rare
            server.append(f"observe layer7 error-limit {passive.max_fails} on-error mark-down")
        lines.append(" ".join(part for part in server if part))
    return lines


def _groups(
    by_route: dict[int, Any], by_consumer: dict[str, Any]
) -> tuple[dict[int, str], dict[str, str], dict[str, Any]]:
    """Routes and consumers with the same setting share one group (g0, g1, ...)."""
    names: dict[str, str] = {}
    groups: dict[str, Any] = {}

    def group_of(setting: Any) -> str:
        canonical = json.dumps(setting, sort_keys=True)
        if canonical not in names:
            names[canonical] = f"g{len(names)}"
            groups[names[canonical]] = setting
        return names[canonical]

    route_group = {route_id: group_of(setting) for route_id, setting in sorted(by_route.items())}
    consumer_group = {name: group_of(setting) for name, setting in sorted(by_consumer.items())}
    return route_group, consumer_group, groups


def _map_file(entries: dict[Any, Any]) -> str:
    return "".join(f"{key} {value}\n" for key, value in entries.items())


def _is_simple(route: Route) -> bool:
    """Matched by path (exact or prefix) and method alone: found through maps."""
    return not route.hosts and not route.headers and all(p.type in ("exact", "prefix") for p in route.paths)


def _routing(
    routes: list[Route], options: RenderOptions, matching: _Pass = _GATEWAY_PASS
) -> tuple[list[str], dict[str, str]]:
    """Routes by priority tier (highest first). In a tier: routes with host, header or regex
    conditions as rules (by id), then the others through maps: exact paths before prefixes
    (longest first), method-specific before any-method. Each lookup is one map search in
    HAProxy, whatever the number of routes. Routes naming methods have a map per method, looked
    up by the request's path under a test of its method: one map keyed by method and path needed
    both kept in variables first, which cost more than the lookup (1,700 instructions a
    request). A method's map holds the any-method routes too (`_with_any_method`), so a request
    of that method finds its route in one search; the any-method map serves the other methods.

    `matching` says how methods are told and where the route goes (`_Pass`); with a gate, every
    rule tests it first, unless it starts with a method test (which fails outside the pass too)."""
    lines: list[str] = []
    files: dict[str, str] = {}
    unset = matching.unset
    first = True

    def rule(action: str, terms: tuple[str, ...]) -> None:
        nonlocal first
        if first:  # the first lookup needs no test that none found a route yet
            terms, first = tuple(term for term in terms if term != unset), False
        if matching.gate and not (terms and terms[0].startswith(f"{{ {matching.method} ")):
            terms = (matching.gate, *terms)
        condition = " ".join(term for term in terms if term)
        lines.append(
            f"    http-request {action} if {condition}" if condition else f"    http-request {action}"
        )

    for priority in sorted({r.priority for r in routes}, reverse=True):
        tier = [r for r in routes if r.priority == priority]
        for route in sorted((r for r in tier if not _is_simple(r)), key=lambda r: r.id):
            acls, conditions = _route_conditions(route, matching)
            lines += [f"    {acl}" for acl in acls]
            for condition in conditions:
                rule(f"set-var({matching.target}) str({route.id})", (unset, condition))
        simple = sorted((r for r in tier if _is_simple(r)), key=lambda r: r.id)
        # (map name, converter, entries, the lookup's terms in the order they are tested)
        lookups: list[tuple[str, str, dict[str, int], tuple[str, ...]]] = []
        for kind, converter in (("exact", "map_str"), ("prefix", "map_beg")):
            by_method: dict[str, dict[str, int]] = {}
            any_method: dict[str, int] = {}
            for route in simple:
                for path in (p for p in route.paths if p.type == kind):
                    for method in route.methods:
                        by_method.setdefault(method, {}).setdefault(path.value, route.id)
                    if not route.methods:
                        any_method.setdefault(path.value, route.id)
            # A method's map: its method first, the one term evaluated for other methods' requests.
            for method, entries in sorted(by_method.items()):
                merged = _with_any_method(entries, any_method, prefixes=kind == "prefix")
                lookups.append((f"{kind}_{method}", converter, merged, (matching.methods([method]), unset)))
            # The any-method map: whether a route was found first, the one term evaluated for found
            # requests; then not a method with a map of its own, where every route was found.
            others = f"!{matching.methods(sorted(by_method))}" if by_method else ""
            lookups.append((kind, converter, any_method, (unset, others)))
        tag = f"p{priority}".replace("-", "n")
        for name, converter, entries, terms in lookups:
            if not entries:
                continue
            if converter == "map_beg":  # the longest prefix first: map_beg returns the first match
                entries = dict(sorted(entries.items(), key=lambda item: -len(item[0])))
            map_path = f"maps/routes_{tag}_{name}.map"
            files[map_path] = _map_file(entries)
            rule(f"set-var({matching.target}) path,{converter}({options.config_dir}/{map_path})", terms)
    return lines, files


def _with_any_method(own: dict[str, int], any_method: dict[str, int], *, prefixes: bool) -> dict[str, int]:
    """A method's map: its own routes' paths, then the any-method routes' paths, except a prefix
    that starts with one of the method's own prefixes, where the method's route comes first (as
    it does when the maps are searched one after the other). The same path stays the method's."""
    merged = dict(own)
    for path, route_id in any_method.items():
        if prefixes and any(path[:end] in own for end in range(1, len(path))):
            continue
        merged.setdefault(path, route_id)
    return merged


def _consumer_files(consumers: ConsumerSet) -> dict[str, str]:
    """The maps from credentials to consumers."""
    files = {
        KEYS_MAP: "\n".join(sorted(consumers.key_lines)) + "\n",
        USERS_MAP: "\n".join(sorted(consumers.user_lines)) + "\n",
    }
    if consumers.hmac_key_lines:
        files[KEYS_HMAC_MAP] = "\n".join(sorted(consumers.hmac_key_lines)) + "\n"
    return files


# A certificate's host name, maybe a wildcard: a crt-list filter (a leading `!` would negate it).
_SNI = re.compile(
    r"(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*"
)


def _certificate_files(certificates: list[Certificate], options: RenderOptions) -> dict[str, str]:
    files: dict[str, str] = {}
    entries = []
    for certificate in certificates:
        if not certificate.private_key_pem:
            raise RenderError(f"Certificate {certificate.name!r} came without its private key.")
        for sni in certificate.snis:  # filters of the crt-list's line, as they are
            if not _SNI.fullmatch(sni):
                raise RenderError(f"Certificate {certificate.name!r} names {sni!r}, which is no host name.")
        path = f"certs/{certificate.id}.pem"
        files[path] = (
            certificate.certificate_pem.rstrip() + "\n" + certificate.private_key_pem.rstrip() + "\n"
        )
        entries.append(f"{options.config_dir}/{path} [alpn h2,http/1.1] " + " ".join(certificate.snis))
    if entries:
        files["certs/crt-list.txt"] = "\n".join(entries) + "\n"
    return files


def _error_page(status: int, reason: str, error: str, message: str) -> str:
    body = json_body(error, message)
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"Cache-Control: no-cache\r\nConnection: close\r\n\r\n{body}"
    )


def _plugin_settings(
    snapshot: Snapshot, routes: list[Route], services: dict[int, Service], consumers: ConsumerSet
) -> tuple[dict[str, dict[int, Any]], dict[str, dict[str, Any]]]:
    """Each plugin's setting by route id, and by consumer name where a consumer sets its own."""
    by_route: dict[str, dict[int, Any]] = {plugin.name: {} for plugin in ORDER}
    for route in routes:
        for name, config in _effective_plugins(
            route, services[route.service_id], snapshot.global_plugins
        ).items():
            if name not in by_route:
                raise RenderError(f"Plugin {name!r} (route {route.name!r}) is not supported by this agent.")
            by_route[name][route.id] = config
        if route.strip_path_prefix:
            by_route["strip-prefix"][route.id] = {"prefix": route.strip_path_prefix}
    by_consumer = {plugin.name: consumers.plugins.get(plugin.name, {}) for plugin in ORDER}
    return by_route, by_consumer


@dataclass(frozen=True)
class _Grouping:
    """One plugin's distinct settings (g0, g1, ...) and which route or consumer uses which."""

    settings: dict[str, Any]
    of_route: dict[int, str]
    of_consumer: dict[str, str]


def _groupings(
    snapshot: Snapshot, routes: list[Route], services: dict[int, Service], consumers: ConsumerSet
) -> dict[str, _Grouping]:
    by_route, by_consumer = _plugin_settings(snapshot, routes, services, consumers)
    groupings = {}
    for plugin in ORDER:
        consumers_of = by_consumer[plugin.name] if plugin.consumer_scoped else {}
        route_group, consumer_group, groups = _groups(by_route[plugin.name], consumers_of)
        groupings[plugin.name] = _Grouping(groups, route_group, consumer_group)
    return groupings


def _without(condition: str, line: str) -> str:
    """The line with one of its condition's terms gone (and its `if` when nothing is left); the
    action before the condition, which may quote a user's text, is left alone."""
    terms = condition_of(line)
    if terms is None:
        return line
    action = line[: len(line) - len(terms) - 4]
    if terms == condition:
        return action
    terms = f" {terms} ".replace(f" {condition} ", " ").strip()
    return f"{action} if {terms}" if terms else action


def _unconditional(plugin: GatewayPlugin, group: str, setting: Any, ctx: RenderContext) -> PluginRules:
    """A plugin's rules for the one setting every request of a backend has: without the test of
    which setting applies, which HAProxy would otherwise evaluate on every request."""
    rules = plugin.render({group: setting}, plugin.var, ctx)
    condition = when(plugin.var, group)
    rules.request = [_without(condition, line) for line in rules.request]
    rules.response = [_without(condition, line) for line in rules.response]
    return rules


def _by_number(groups: set[str]) -> list[str]:
    return sorted(groups, key=lambda group: int(group[1:]))


def _backend_plugin_rules(route_id: int, groupings: dict[str, _Grouping], ctx: RenderContext) -> PluginRules:
    """The plugin lines of a route's backend, in request order: before authentication,
    authentication, consumers' own settings, after. The route's own setting of each plugin
    applies unconditionally; once authentication names the consumer, a consumer's own setting
    adds to it (before authentication's plugins) or takes over from it (the others)."""
    authenticates = any(route_id in groupings[p.name].of_route for p in ORDER if p.stage == "auth")
    stages: dict[str, list[str]] = {"before_auth": [], "auth": [], "consumer": [], "after_auth": []}
    out = PluginRules()

    def add(rules: PluginRules, request: list[str]) -> None:
        request += rules.request
        out.response += rules.response
        out.sections += rules.sections
        out.files.update(rules.files)
        out.globals += rules.globals

    for plugin in ORDER:
        if plugin.name == TRAFFIC_SPLIT:
            continue  # chosen in the frontend: it picks the backend
        grouping = groupings[plugin.name]
        own = grouping.of_route.get(route_id)
        theirs = set(grouping.of_consumer.values()) if authenticates else set()
        lines = stages[plugin.stage]
        by_consumer = f"var(txn.consumer),map({ctx.path(_consumer_map(plugin))})"
        if theirs and plugin.stage == "before_auth":
            stages["consumer"].append(f"http-request set-var(txn.{plugin.var}c) {by_consumer}")
            settings = {g: grouping.settings[g] for g in _by_number(theirs)}
            add(plugin.render(settings, f"{plugin.var}c", ctx), stages["consumer"])
        elif theirs:
            if own is not None:
                lines.append(f"http-request set-var(txn.{plugin.var}) str({own})")
            lines.append(f"http-request set-var(txn.{plugin.var}) {by_consumer}")
            groups = theirs | ({own} if own is not None else set())
            add(plugin.render({g: grouping.settings[g] for g in _by_number(groups)}, plugin.var, ctx), lines)
            continue
        if own is not None:
            add(_unconditional(plugin, own, grouping.settings[own], ctx), lines)
    if stages["auth"]:
        # Replacing any the client sent: every authentication plugin refuses a request it
        # cannot name a consumer for.
        stages["auth"].append("http-request set-header X-Consumer-Username %[var(txn.consumer)]")
    else:
        stages["before_auth"].insert(0, "http-request del-header X-Consumer-Username")
    out.request = [*stages["before_auth"], *stages["auth"], *stages["consumer"], *stages["after_auth"]]
    return out


def _consumer_map(plugin: GatewayPlugin) -> str:
    return f"maps/consumer_{plugin.name.replace('-', '_')}.map"


def _plugins_name(route_id: int, groupings: dict[str, _Grouping]) -> tuple[str, list[str]]:
    """The name part a route's backends share with every route of the same plugin settings:
    named by those settings, so adding or removing other routes renames nothing."""
    settings = {
        name: grouping.settings[grouping.of_route[route_id]]
        for name, grouping in groupings.items()
        if name != TRAFFIC_SPLIT and route_id in grouping.of_route
    }
    if not settings:
        return "plain", []
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return f"plugins_{digest[:12]}", [p.name for p in ORDER if p.name in settings]


def _backend(
    name: str, about: str, upstream: Upstream, plugins: PluginRules, options: RenderOptions
) -> list[str]:
    """A backend for the routes of one set of plugin settings to one upstream: the plugins'
    rules and the request's tracking, then its count as sent, then the upstream's targets. HAProxy
    evaluates only the rules of the backend a request goes to, so a request pays for its own
    route's plugins alone."""
    lines = [f"backend {name}", f"    # {about}", *_balancing(upstream, options)]
    rules = [f"    {line}" for line in [*plugins.request, *metering.UPSTREAM_LINES]]
    lines += metering.count_route_answers(rules)
    lines += [f"    {line}" for line in plugins.response]
    lines += _servers(upstream, options, checked=not _checks_apart(upstream))
    return lines


def _backends(
    routes: list[Route],
    services: dict[int, Service],
    upstreams: dict[int, Upstream],
    groupings: dict[str, _Grouping],
    ctx: RenderContext,
) -> tuple[list[list[str]], PluginRules, dict[int, str]]:
    """(every route backend's lines; the plugins' shared sections, files and global lines; each
    route's plugins name). A route's backends: one to its own upstream, and one to each upstream
    its traffic-split may choose."""
    sections: list[list[str]] = []
    shared = PluginRules()
    names: dict[int, str] = {}
    rules_of: dict[str, PluginRules] = {}  # the plugin rules of each plugins name
    done: set[str] = set()
    split = groupings[TRAFFIC_SPLIT]
    for route in routes:
        plugins_name, plugin_list = _plugins_name(route.id, groupings)
        names[route.id] = plugins_name
        if plugins_name not in rules_of:
            rules_of[plugins_name] = rules = _backend_plugin_rules(route.id, groupings, ctx)
            for section in rules.sections:
                if section not in shared.sections:
                    shared.sections.append(section)
            shared.files.update(rules.files)
            shared.globals += [line for line in rules.globals if line not in shared.globals]
        targets = {services[route.service_id].upstream_id}
        if route.id in split.of_route:
            targets |= {
                ctx.upstream_id(u) for u in traffic_split.upstreams(split.settings[split.of_route[route.id]])
            }
        for upstream_id in sorted(targets):
            name = f"{plugins_name}_up_{upstream_id}"
            if name not in done:
                done.add(name)
                upstream = upstreams[upstream_id]
                about = f"upstream {upstream.name}, plugins: {', '.join(plugin_list) or 'none'}"
                sections.append(_backend(name, about, upstream, rules_of[plugins_name], ctx.options))
    return sections, shared, names


def _traffic_split(grouping: _Grouping, ctx: RenderContext) -> tuple[list[str], dict[str, str]]:
    """Frontend lines choosing, for routes with traffic-split, the backend to their chosen
    upstream (with the route's plugins) instead of their own upstream's."""
    if not grouping.of_route:
        return [], {}
    path = ctx.options.config_dir
    rules = traffic_split.render(grouping.settings, "ts", ctx)
    lines = [
        f"http-request set-var(txn.ts) var(txn.route),map({path}/{ROUTE_TRAFFIC_SPLIT_MAP})",
        *rules.request,
        f"http-request set-var(txn.backend) var(txn.route),map({path}/{ROUTE_PLUGINS_MAP}),concat(_,txn.split) "
        "if { var(txn.split) -m found }",
        "use_backend %[var(txn.backend)] if { var(txn.backend) -m found }",
    ]
    return lines, {ROUTE_TRAFFIC_SPLIT_MAP: _map_file(grouping.of_route)}


# A CORS preflight (OPTIONS with an Origin) matched by the method it announces.
_PREFLIGHT = _Pass(
    target="txn.pf_route", method="var(txn.pf_method) -m str", gate="{ var(txn.pf_method) -m found }"
)


def _preflight(
    routes: list[Route], grouping: _Grouping, ctx: RenderContext
) -> tuple[PluginRules, dict[str, str]]:
    """The `no_route` backend's lines answering the CORS preflights of routes with `cors`.

    A preflight is `OPTIONS`: a route naming its methods (GET, say, as an OpenAPI import makes
    them) does not match it, and a browser could never call the route from another origin. When
    no route takes the `OPTIONS` request itself, it is matched again here by the method it
    announces (`Access-Control-Request-Method`), against the same routes in the same order (the
    same maps); if that route has `cors`, its settings answer the preflight, 204, as its own
    backend would. Anything else is the 404 it was. Only requests no route matched evaluate
    these lines, and a configuration without `cors` has none of them: a routed request pays
    nothing for them."""
    if not grouping.of_route:
        return PluginRules(), {}
    routing, _ = _routing(routes, ctx.options, _PREFLIGHT)  # the gateway pass's maps, read again
    rules = BY_NAME["cors"].render(grouping.settings, BY_NAME["cors"].var, ctx)
    cors_map = ctx.path(ROUTE_CORS_MAP)
    request = [
        "http-request set-var(txn.pf_method) req.fhdr(access-control-request-method) "
        "if { method OPTIONS } { req.hdr(origin) -m found }",
        *(line.strip() for line in routing),
        f"http-request set-var(txn.cors) var(txn.pf_route),map({cors_map}) if {{ var(txn.pf_route) -m found }}",
        # Counted as the route's call, as a preflight its own backend answers.
        "http-request set-var(txn.route) var(txn.pf_route) if { var(txn.cors) -m found }",
        *rules.request,
    ]
    return PluginRules(request=request, response=rules.response, files=rules.files), {
        ROUTE_CORS_MAP: _map_file(grouping.of_route)
    }


def render(
    snapshot: Snapshot, options: RenderOptions, consumers: ConsumerSet | None = None
) -> dict[str, str]:
    """The files HAProxy serves `snapshot` from. `consumers`: the snapshot's consumers as the
    agent holds them, shard by shard (`ConsumerSet`); by default, those of `snapshot`."""
    if consumers is None:
        consumers = ConsumerSet.of(snapshot.consumers)
    upstreams = {u.id: u for u in snapshot.upstreams}
    services = {s.id: s for s in snapshot.services}
    routes = sorted(snapshot.routes, key=lambda r: (-r.priority, r.id))
    for route in routes:
        service = services.get(route.service_id)
        if service is None or service.upstream_id not in upstreams:
            raise RenderError(
                f"Route {route.name!r} points at a service or upstream missing from the snapshot."
            )
        for method in route.methods:  # written into ACLs and map file names as it is
            if not _METHOD.fullmatch(method):
                raise RenderError(f"Route {route.name!r}: {method!r} is not an HTTP method.")
    certificate_files = _certificate_files(snapshot.certificates, options)
    ctx = RenderContext(
        options,
        {u.name: u.id for u in snapshot.upstreams},
        consumers,
        snapshot.key_auth.secret if snapshot.key_auth else None,
    )
    groupings = _groupings(snapshot, routes, services, consumers)
    backends, plugins, plugins_names = _backends(routes, services, upstreams, groupings, ctx)

    bind = f"    bind {options.bind_address}:{options.http_port}"
    frontend = ["frontend gateway", bind]
    if options.https_port and "certs/crt-list.txt" in certificate_files:
        frontend.append(
            f"    bind {options.bind_address}:{options.https_port} ssl crt-list {options.config_dir}/certs/crt-list.txt"
        )
    frontend.append("    # 1. routing: the first matching route, by priority")
    routing, files = _routing(routes, options)
    frontend += routing
    frontend.append("    # 2. the route's backend: its plugins, then its upstream")
    split_lines, split_files = _traffic_split(groupings[TRAFFIC_SPLIT], ctx)
    frontend += [f"    {line}" for line in split_lines]
    files.update(split_files)
    files[ROUTE_BACKEND_MAP] = _map_file(
        {
            route.id: f"{plugins_names[route.id]}_up_{services[route.service_id].upstream_id}"
            for route in routes
        }
    )
    if split_files:
        files[ROUTE_PLUGINS_MAP] = _map_file(
            {route_id: plugins_names[route_id] for route_id in groupings[TRAFFIC_SPLIT].of_route}
        )
    frontend.append(f"    use_backend %[var(txn.route),map({options.config_dir}/{ROUTE_BACKEND_MAP})]")
    # No route: a backend of its own answers, so routed requests evaluate none of its rules.
    frontend.append(f"    default_backend {NO_ROUTE_BACKEND}")
    # 3. the upstream's answer counted, after the route's own response rules (a rewritten
    # status is counted as the client sees it)
    frontend += [f"    {line}" for line in metering.answer_lines()]
    frontend = metering.count_answers(frontend)
    if snapshot.quota is not None:
        # First, and not counted: calls refused for a used-up allowance are not billed.
        quota = snapshot.quota
        refusal = deny(
            429,
            "quota_exceeded",
            f"The {quota.name} allowance of {quota.limit} calls is used up; it resets at {quota.resets_at}.",
            {"X-Quota-Resets-At": quote(quota.resets_at)},
        )
        frontend.insert(
            frontend.index("    # 1. routing: the first matching route, by priority") + 1, f"    {refusal}"
        )
    for plugin in ORDER:
        grouping = groupings[plugin.name]
        if grouping.of_consumer:
            files[_consumer_map(plugin)] = _map_file(grouping.of_consumer)
    size_limits = groupings["request-size-limit"].settings
    if size_limits and (size := buffer_size(size_limits)):
        plugins.globals.append(f"tune.bufsize {size}")
    files.update(plugins.files)

    consumer_files = _consumer_files(consumers)
    userlist = [f"userlist {USERLIST}", *consumers.userlist]
    sections = [
        "global",
        *([f"    maxconn {options.maxconn}"] if options.maxconn else []),
        *[f"    {line}" for line in plugins.globals],
        *[f"    {line}" for line in metering.global_lines()],
        f"    stats socket {options.runtime_socket} mode 600 level admin expose-fd listeners",
        "    tune.ssl.default-dh-param 2048",
        "",
        *userlist,
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
    not_found = deny(404, "not_found", "No route matches this request") + f" if {metering.NO_ROUTE}"
    preflight, preflight_files = _preflight(routes, groupings["cors"], ctx)
    files.update(preflight.files)
    files.update(preflight_files)
    sections += [
        f"backend {NO_ROUTE_BACKEND}",
        *metering.count_answers([f"    {line}" for line in [*preflight.request, not_found]]),
        *[f"    {line}" for line in preflight.response],
        "",
    ]
    for backend in backends:
        sections += [*backend, ""]
    for upstream in snapshot.upstreams:
        if _checks_apart(upstream):  # the health checks the route backends' servers track
            sections += [
                f"backend up_{upstream.id}",
                f"    # upstream {upstream.name}: health checks",
                *_servers(upstream, options, checked=True),
                "",
            ]
    for section in [metering.table_section(), *plugins.sections]:
        sections += [*section, ""]

    for line in sections:
        if too_long(line):
            raise RenderError(
                f"A line would hold more than the {MAX_WORDS} words HAProxy reads: {line[:200]!r}"
            )
    files.update({"haproxy.cfg": "\n".join(sections), **consumer_files, **certificate_files})
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
