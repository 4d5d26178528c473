"""The gateway's plugins: each module turns its validated config into HAProxy directives.

Routes (and consumers) that share one setting of a plugin form a group (g0, g1, ...). A route's
backend holds its own groups' rules; a consumer's own setting is picked at run time by a map from
consumer name to group, so each plugin renders a few rules per distinct setting, not per
consumer. `ORDER` is the order plugins act in a request (the `Stage` says where authentication
sits); `render` in gateway_agent/renderer.py walks it (traffic-split apart: it picks the backend).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..directives import PluginRules, Settings
from . import (
    basic_auth,
    consumer_restriction,
    cors,
    hmac_auth,
    ip_restriction,
    jwt_auth,
    key_auth,
    limit_count,
    limit_req,
    mocking,
    proxy_rewrite,
    redirect,
    request_size_limit,
    response_rewrite,
    traffic_split,
)
from .context import RenderContext

Stage = Literal["before_auth", "auth", "after_auth"]


@dataclass(frozen=True)
class GatewayPlugin:
    name: str
    var: str  # the transaction variable holding a request's group for this plugin
    stage: Stage
    render: Callable[[Settings, str, RenderContext], PluginRules]
    # May be set on a consumer: it then applies once authentication has named the consumer,
    # and the consumer's setting wins over the route's.
    consumer_scoped: bool = False


ORDER: tuple[GatewayPlugin, ...] = (
    GatewayPlugin("ip-restriction", "ipr", "before_auth", ip_restriction.render, consumer_scoped=True),
    GatewayPlugin("cors", "cors", "before_auth", cors.render),
    GatewayPlugin("redirect", "rd", "before_auth", redirect.render),
    GatewayPlugin(
        "request-size-limit", "rsl", "before_auth", request_size_limit.render, consumer_scoped=True
    ),
    GatewayPlugin("key-auth", "ka", "auth", key_auth.render),
    GatewayPlugin("jwt-auth", "ja", "auth", jwt_auth.render),
    GatewayPlugin("basic-auth", "ba", "auth", basic_auth.render),
    GatewayPlugin("hmac-auth", "ha", "auth", hmac_auth.render),
    # First once the consumer is known: a refused consumer uses none of the limits below.
    GatewayPlugin("consumer-restriction", "cr", "after_auth", consumer_restriction.render),
    GatewayPlugin("limit-req", "lr", "after_auth", limit_req.render, consumer_scoped=True),
    GatewayPlugin("limit-count", "rl", "after_auth", limit_count.render, consumer_scoped=True),
    GatewayPlugin("proxy-rewrite", "pr", "after_auth", proxy_rewrite.render),
    GatewayPlugin("strip-prefix", "sp", "after_auth", proxy_rewrite.render_strip_prefix),
    # Rendered in the frontend, before every other plugin: its choice of upstream picks the backend.
    GatewayPlugin("traffic-split", "ts", "after_auth", traffic_split.render),
    GatewayPlugin("response-rewrite", "rr", "after_auth", response_rewrite.render, consumer_scoped=True),
    GatewayPlugin("mocking", "mk", "after_auth", mocking.render),
)
BY_NAME = {plugin.name: plugin for plugin in ORDER}
SUPPORTED = frozenset(BY_NAME) - {"strip-prefix"}

__all__ = ["BY_NAME", "ORDER", "SUPPORTED", "GatewayPlugin", "RenderContext", "Stage"]
