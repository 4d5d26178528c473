"""key-auth: the key from a header (or else a query parameter); its SHA-256 is looked up in the
consumers' key map, so keys never appear in the configuration. 401 when missing or unknown.

The hash is the costliest step of a request (about a tenth of the gateway's work), and a client
sends the same key on every request of a connection: the connection keeps the last key and its
hash, and a request with that same key reuses the hash. The map lookup still runs on every
request, so a key deleted from the map is refused at once, kept connections included."""

from __future__ import annotations

import re

from ..directives import PluginRules, RenderError, Settings, argument, deny_computed, quote, when
from .context import RenderContext

KEYS_MAP = "maps/keys.map"
# A query parameter's name as the catalog accepts it (plugins.py's _PARAMETER_NAME).
_PARAMETER = re.compile(r"[A-Za-z0-9_.~-]{1,100}")
# An empty key is a missing one.
REFUSAL = "var(txn.key,),length,bool,iif('Invalid API key','Missing API key')"


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        header = str(config.get("header", "apikey"))
        query = str(config.get("query", "apikey"))
        if not _PARAMETER.fullmatch(query):  # also written into a regular expression below
            raise RenderError(f"key-auth: {query!r} cannot be a query parameter's name.")
        cond = when(var, group)
        rules.request += [
            # The whole value (req.hdr would split a key at a comma) of the first occurrence,
            # whose search stops where it is found; a query parameter percent-decoded.
            f"http-request set-var(txn.key) req.fhdr({argument(header)},1) if {cond}",
            f"http-request set-var(txn.key) url_param({argument(query)}),url_dec if {cond} !{{ var(txn.key) -m found }}",
            # No key counts as the empty one (`var(txn.key,)`): a fetch that finds nothing sets
            # nothing, and the lookup would take the hash of the connection's previous key. The
            # connection's key is kept (the `set-var` converter) only when it changes: a rule
            # of its own cost every request 560 instructions.
            f"http-request set-var(sess.key_hash) var(txn.key,),set-var(sess.key),sha2(256),hex,lower if {cond} "
            "!{ var(txn.key,),strcmp(sess.key) -m int eq 0 }",
            f"http-request set-var(txn.consumer) var(sess.key_hash),map({ctx.path(KEYS_MAP)}) if {cond}",
            # key-auth acts first of the authentication plugins: no other has named a consumer.
            # One answer for a missing key and an unknown one, which a request that passes
            # evaluates once instead of twice (600 instructions).
            f"{deny_computed(401, 'unauthorized', REFUSAL)} if {cond} !{{ var(txn.consumer) -m found }}",
        ]
        if config.get("hide_credentials"):
            # The header, and the query parameter wherever it sits in the query string.
            without = f"%[query,regsub('(^|&){re.escape(query)}=[^&]*','',g),regsub('^&','')]"
            rules.request += [
                f"http-request del-header {quote(header)} if {cond}",
                f'http-request set-query "{without}" if {cond} {{ url_param({argument(query)}) -m found }}',
            ]
    return rules
