"""proxy-rewrite: the path, Host and headers sent upstream; and a route's strip_path_prefix."""

from __future__ import annotations

import re
from typing import Any

from ..directives import PluginRules, Settings, literal, quote, when
from .context import RenderContext


def header_operations(direction: str, headers: dict[str, Any], cond: str) -> list[str]:
    """set / add / remove on request or response headers (direction: request or response)."""
    lines = []
    for name, value in headers.get("set", {}).items():
        lines.append(f"http-{direction} set-header {quote(name)} {literal(value)} if {cond}")
    for name, value in headers.get("add", {}).items():
        lines.append(f"http-{direction} add-header {quote(name)} {literal(value)} if {cond}")
    for name in headers.get("remove", []):
        lines.append(f"http-{direction} del-header {quote(name)} if {cond}")
    return lines


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        cond = when(var, group)
        if "uri" in config:
            rules.request.append(f"http-request set-path {literal(config['uri'])} if {cond}")
        if "host" in config:
            rules.request.append(f"http-request set-header Host {literal(config['host'])} if {cond}")
        rules.request += header_operations("request", config.get("headers", {}), cond)
    return rules


def render_strip_prefix(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        pattern = quote("^" + re.escape(str(config["prefix"]).rstrip("/")) + "/?(.*)")
        rules.request.append(
            f"http-request replace-path {pattern} {quote('/' + chr(92) + '1')} if {when(var, group)}"
        )
    return rules
