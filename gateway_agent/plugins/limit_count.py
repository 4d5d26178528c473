"""limit-count: at most `count` requests per fixed window (1 s, 1 min, 1 h, 1 day) per consumer,
route or client address. The counter's key carries the route and the window's number, so a new
window starts at zero exactly at its edge. 429 (or `rejected_code`) beyond, with
X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset on every answer."""

from __future__ import annotations

from ..directives import PluginRules, Settings, deny, when
from .context import RenderContext

KEY_SOURCES = {"consumer": "var(txn.consumer)", "route": "var(txn.route)", "client_ip": "src"}


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        window = int(config["time_window"])
        source = KEY_SOURCES[config.get("key", "client_ip")]
        cond = when(var, group)
        table = f"{var}_{group}"
        rules.request += [
            f"http-request set-var(txn.rl_limit) int({int(config['count'])}) if {cond}",
            f"http-request set-var(txn.rl_window) date,div({window}) if {cond}",
            f"http-request set-var(txn.rl_key) {source},concat(:,txn.route),concat(:,txn.rl_window) if {cond}",
            f"http-request track-sc0 var(txn.rl_key) table {table} if {cond}",
            # Counted and read in one step.
            f"http-request set-var(txn.rl_used) sc_inc_gpc0(0) if {cond}",
            f"http-request set-var(txn.rl_reset) date,mod({window}),neg,add({window}) if {cond}",
            deny(
                int(config.get("rejected_code", 429)),
                "rate_limited",
                "Too many requests",
                {
                    "X-RateLimit-Limit": "%[var(txn.rl_limit)]",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": "%[var(txn.rl_reset)]",
                },
            )
            + f" if {cond} {{ var(txn.rl_used) -m int gt {int(config['count'])} }}",
        ]
        rules.sections.append(
            [
                f"backend {table}",
                f"    stick-table type string len 200 size 1m expire {window * 2}s store gpc0",
            ]
        )
    found = "{ var(txn.rl_limit) -m found }"
    rules.response += [
        f"http-response set-header X-RateLimit-Limit %[var(txn.rl_limit)] if {found}",
        f"http-response set-header X-RateLimit-Remaining %[var(txn.rl_limit),sub(txn.rl_used)] if {found}",
        f"http-response set-header X-RateLimit-Reset %[var(txn.rl_reset)] if {found}",
    ]
    return rules
