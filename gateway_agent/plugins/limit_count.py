"""limit-count: at most `count` requests per fixed window (1 s, 1 min, 1 h, 1 day) per consumer,
route or client address, on each route (or, `per_route` false, on all of them together). The
counter's key carries the route and the window's number, so a new
window starts at zero exactly at its edge. 429 (or `rejected_code`) beyond, with
X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset on every answer. The counters
outlive a reload (see gateway_agent/limit_counters.py)."""

from __future__ import annotations

from .. import limit_counters
from ..directives import PluginRules, Settings, deny, when
from .context import RenderContext


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        window, count = int(config["time_window"]), int(config["count"])
        scope = config.get("key", "client_ip")
        cond = when(var, group)
        table = limit_counters.table_ref(window, scope)
        # The counter's key, <window number>:<route>[:<consumer or client address>], computed
        # where it is tracked: every rule costs every request of the route.
        key = f"date,div({window})"
        # Per route unless told otherwise: a portal plan's allowance spans every route of it.
        if config.get("per_route", True):
            key += ",concat(:,txn.route)"
        if scope == "consumer":
            key += ",concat(:,txn.consumer)"
        elif scope == "client_ip":
            rules.request.append(f"http-request set-var(txn.rl_src) src if {cond}")
            key += ",concat(:,txn.rl_src)"
        reset = f"%[date,mod({window}),neg,add({window})]"
        rules.request += [
            f"http-request track-sc0 {key} table {table} if {cond}",
            # Counted and read in one step.
            f"http-request set-var(txn.rl_used) sc_inc_gpc0(0) if {cond}",
            deny(
                int(config.get("rejected_code", 429)),
                "rate_limited",
                "Too many requests",
                {"X-RateLimit-Limit": str(count), "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
            )
            + f" if {cond} {{ var(txn.rl_used) -m int gt {count} }}",
        ]
        rules.response += [
            f"http-response set-header X-RateLimit-Limit {count} if {cond}",
            f"http-response set-header X-RateLimit-Remaining %[int({count}),sub(txn.rl_used)] if {cond}",
            f"http-response set-header X-RateLimit-Reset {reset} if {cond}",
        ]
        rules.sections.append(limit_counters.table_section(window, scope))
    return rules
