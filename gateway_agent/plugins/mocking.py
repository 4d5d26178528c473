"""mocking: answer with a fixed status, content type, headers and body; the upstream is never
called. Runs last in the request, so authentication and limits still apply to mocked routes."""

from __future__ import annotations

from ..directives import PluginRules, Settings, literal, quote, when
from .context import RenderContext


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        status = int(config.get("status_code", 200))
        line = f"http-request return status {status}"
        body = str(config.get("body", ""))
        if body:
            line += f" content-type {quote(str(config.get('content_type', 'application/json')))} string {quote(body)}"
        for name, value in config.get("headers", {}).items():
            line += f" hdr {quote(name)} {literal(value)}"
        rules.request.append(f"{line} if {when(var, group)}")
    return rules
