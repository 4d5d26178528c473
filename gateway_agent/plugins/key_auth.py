"""key-auth: the key from a header (or else a query parameter); its SHA-256 is looked up in the
consumers' key map, so keys never appear in the configuration. 401 when missing or unknown.

The hash is the costliest step of a request (about a tenth of the gateway's work), and a client
sends the same key on every request of a connection: the connection keeps the last key and its
hash, and a request with that same key reuses the hash. The map lookup still runs on every
request, so a key deleted from the map is refused at once, kept connections included."""

from __future__ import annotations

import re

from ..directives import PluginRules, Settings, deny, when
from .context import RenderContext

KEYS_MAP = "maps/keys.map"


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        header = config.get("header", "apikey")
        query = config.get("query", "apikey")
        cond = when(var, group)
        rules.request += [
            # A fetch that finds nothing sets nothing.
            f"http-request set-var(txn.key) req.hdr({header}) if {cond}",
            f"http-request set-var(txn.key) url_param({query}) if {cond} !{{ var(txn.key) -m found }}",
            f"{deny(401, 'unauthorized', 'Missing API key')} if {cond} !{{ var(txn.key) -m found }}",
            f"http-request set-var(sess.key_hash) var(txn.key),sha2(256),hex,lower if {cond} "
            "!{ var(txn.key),strcmp(sess.key) -m int eq 0 }",
            f"http-request set-var(sess.key) var(txn.key) if {cond}",
            f"http-request set-var(txn.consumer) var(sess.key_hash),map({ctx.path(KEYS_MAP)}) if {cond}",
            f"{deny(401, 'unauthorized', 'Invalid API key')} if {cond} !{{ var(txn.consumer) -m found }}",
        ]
        if config.get("hide_credentials"):
            # The header, and the query parameter wherever it sits in the query string.
            without = f"%[query,regsub('(^|&){re.escape(query)}=[^&]*','',g),regsub('^&','')]"
            rules.request += [
                f"http-request del-header {header} if {cond}",
                f'http-request set-query "{without}" if {cond} {{ url_param({query}) -m found }}',
            ]
    return rules
