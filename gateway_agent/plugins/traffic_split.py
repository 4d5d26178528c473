"""traffic-split: rules first, in order: the first whose every header, query argument and cookie
matches sends the request to its upstream (blue-green, beta users). Otherwise a weighted draw
between `weighted_upstreams` (canary: 90/10); weights are relative. Requests that match no rule
and no weight stay on the route's own upstream.

Runs in the frontend, before the route's plugins: the choice of upstream is the choice of
backend. `txn.split` names the chosen upstream (up_<id>); the renderer turns that into the
route's backend to it (<the route's plugins name>_up_<id>)."""

from __future__ import annotations

from typing import Any

from ..directives import PluginRules, Settings, argument, patterns, when
from .context import RenderContext


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    unset = "!{ var(txn.split) -m found }"
    for group, config in groups.items():
        cond = when(var, group)
        for rule in config.get("rules", []):
            match = rule["match"]
            checks = [
                f"{{ {fetch}({argument(name)}) -m str {patterns([value])} }}"
                for kind, fetch in (("header", "req.hdr"), ("query", "url_param"), ("cookie", "req.cook"))
                for name, value in match.get(kind, {}).items()
            ]
            rules.request.append(
                f"http-request set-var(txn.split) str(up_{ctx.upstream_id(rule['upstream'])}) if {cond} {unset} {' '.join(checks)}"
            )
        weighted = [
            (w["upstream"], int(w["weight"]))
            for w in config.get("weighted_upstreams", [])
            if int(w["weight"]) > 0
        ]
        total = sum(weight for _, weight in weighted)
        if weighted:
            rules.request.append(f"http-request set-var(txn.split_draw) rand({total}) if {cond} {unset}")
            threshold = 0
            for upstream, weight in weighted:
                threshold += weight
                rules.request.append(
                    f"http-request set-var(txn.split) str(up_{ctx.upstream_id(upstream)}) if {cond} {unset} "
                    f"{{ var(txn.split_draw) -m int lt {threshold} }}"
                )
    return rules


def upstreams(config: dict[str, Any]) -> set[str]:
    """The upstreams a setting may send requests to."""
    return {rule["upstream"] for rule in config.get("rules", [])} | {
        w["upstream"] for w in config.get("weighted_upstreams", []) if int(w["weight"]) > 0
    }
