"""response-rewrite: set, add or remove response headers, and optionally replace the status
code, on what the upstream answers."""

from __future__ import annotations

from ..directives import PluginRules, Settings, when
from .context import RenderContext
from .proxy_rewrite import header_operations


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        cond = when(var, group)
        if "status_code" in config:
            rules.response.append(f"http-response set-status {int(config['status_code'])} if {cond}")
        rules.response += header_operations("response", config.get("headers", {}), cond)
    return rules
