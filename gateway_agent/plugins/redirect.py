"""redirect: to a fixed URI, or from http to https (same host and path), with 301, 302, 307 or
308 (default 302). The URI is taken literally."""

from __future__ import annotations

from ..directives import PluginRules, Settings, literal, when
from .context import RenderContext


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        code = int(config.get("status_code", 302))
        cond = when(var, group)
        if config.get("http_to_https"):
            rules.request.append(f"http-request redirect scheme https code {code} if {cond} !{{ ssl_fc }}")
        else:
            rules.request.append(
                f"http-request redirect location {literal(config['uri'])} code {code} if {cond}"
            )
    return rules
