"""request-size-limit: 413 for a body above `max_body_bytes`, by its Content-Length, and for a
body streamed without one (chunked) by waiting for up to the limit plus one byte of it.

A streamed body can be measured this way up to HAProxy's buffer (tune.bufsize, raised here to
cover the largest limit up to 1 MiB); above that, only Content-Length is enforced."""

from __future__ import annotations

from ..directives import PluginRules, Settings, deny, when
from .context import RenderContext

STREAMED_LIMIT_MAX = 1024 * 1024 - 1


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        limit = int(config["max_body_bytes"])
        cond = when(var, group)
        too_large = deny(413, "payload_too_large", f"The request body exceeds {limit} bytes")
        rules.request.append(f"{too_large} if {cond} {{ req.hdr_val(content-length) gt {limit} }}")
        if limit <= STREAMED_LIMIT_MAX:
            chunked = "!{ req.hdr(content-length) -m found } { req.hdr(transfer-encoding) -m found }"
            rules.request += [
                f"http-request wait-for-body time 10s at-least {limit + 1} if {cond} {chunked}",
                f"{too_large} if {cond} {{ req.body_size gt {limit} }}",
            ]
    return rules


def buffer_size(groups: Settings) -> int | None:
    """The tune.bufsize the streamed checks need, when above HAProxy's 16 kB default."""
    limits = [
        int(c["max_body_bytes"]) for c in groups.values() if int(c["max_body_bytes"]) <= STREAMED_LIMIT_MAX
    ]
    needed = max(limits, default=0) + 1024 + 1  # headers and the extra byte share the buffer
    return needed if needed > 16384 else None
