"""limit-req: a request rate per second with a burst, per consumer, route or client address.

HAProxy counts accepted requests per key over a sliding one-second window (a `gpc0_rate(1s)`
stick table counter, incremented only for requests let through): at most `rate + burst` pass in
any second, so a client idle for a second may send a burst of `rate + burst` at once, and one
sending steadily gets `rate + burst` per second through. (APISIX delays requests within the burst;
this refuses beyond it at once, with 429 or `rejected_code`.) Rates below one per second use a
window of 1/rate seconds."""

from __future__ import annotations

import math

from ..directives import PluginRules, Settings, deny, when
from .context import RenderContext

KEY_SOURCES = {"consumer": "var(txn.consumer)", "route": "var(txn.route)", "client_ip": "src"}


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        rate, burst = float(config["rate"]), int(config["burst"])
        window_s = 1 if rate >= 1 else math.ceil(1 / rate)
        allowed = max(1, math.floor(rate * window_s) + burst)
        cond = when(var, group)
        table = f"{var}_{group}"
        source = KEY_SOURCES[config.get("key", "client_ip")]
        rules.request += [
            f"http-request set-var(txn.lr_key) {source},concat(:,txn.route) if {cond}",
            f"http-request track-sc1 var(txn.lr_key) table {table} if {cond}",
            deny(int(config.get("rejected_code", 429)), "rate_limited", "Request rate too high")
            + f" if {cond} {{ sc_gpc0_rate(1) ge {allowed} }}",
            f"http-request sc-inc-gpc0(1) if {cond}",
        ]
        rules.sections.append(
            [
                f"backend {table}",
                f"    stick-table type string len 200 size 1m expire {max(10, window_s * 2)}s "
                f"store gpc0,gpc0_rate({window_s}s)",
            ]
        )
    return rules
