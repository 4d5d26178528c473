"""ip-restriction: allow or deny client addresses, IPv4 and IPv6, single addresses or CIDR
blocks, from a pattern file per setting. 403 in JSON when refused."""

from __future__ import annotations

import ipaddress

from ..directives import PluginRules, RenderError, Settings, deny, group_file, pattern_file, when
from .context import RenderContext


def _networks(entries: list[str]) -> list[str]:
    networks = []
    for entry in entries:
        try:
            networks.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise RenderError(f"ip-restriction: {entry!r} is not an IP address or CIDR block.") from None
    return networks


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        allow = "allowlist" in config
        relative, absolute = group_file(ctx.options, var, group)
        rules.files[relative] = pattern_file(_networks(config["allowlist" if allow else "denylist"]))
        listed = f"{{ src -f {absolute} }}"
        rules.request.append(
            f"{deny(403, 'forbidden', 'Your IP address is not allowed')} if {when(var, group)} "
            f"{'!' if allow else ''}{listed}"
        )
    return rules
