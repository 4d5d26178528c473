"""key-auth: the key from a header (or else a query parameter); its digest is looked up in the
consumers' key maps, so keys never appear in the configuration. 401 when missing or unknown.

Keys are hashed with HMAC-SHA256 under the cluster's secret (the snapshot's `key_auth`): a copy
of the maps, a snapshot or the database gives no digest a guess can be tested against. Keys
stored before the cluster had a secret are plain SHA-256 in a map of their own, looked up when
the first finds nothing; a cluster with only one kind evaluates only its rules.

The hash is the costliest step of a request (about a tenth of the gateway's work), and a client
sends the same key on every request of a connection: the connection keeps the last key and its
hash, and a request with that same key reuses the hash. The map lookup still runs on every
request, so a key deleted from the map is refused at once, kept connections included."""

from __future__ import annotations

import re

from ..directives import PluginRules, RenderError, Settings, argument, deny_computed, quote, when
from .context import RenderContext

KEYS_MAP = "maps/keys.map"  # plain SHA-256 digests
KEYS_HMAC_MAP = "maps/keys_hmac.map"  # HMAC-SHA256 digests under the cluster's secret
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
            *_lookups(ctx, cond),
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


def _lookups(ctx: RenderContext, cond: str) -> list[str]:
    """The key's digests, and the consumer they name. No key counts as the empty one
    (`var(txn.key,)`): a fetch that finds nothing sets nothing, and the lookup would take the
    hash of the connection's previous key. The connection's key is kept (the `set-var`
    converter) only when it changes: a rule of its own cost every request 560 instructions."""
    hmac_keys = "hmac-sha256" in ctx.key_schemes
    sha256_keys = "sha256" in ctx.key_schemes or not hmac_keys
    if hmac_keys and ctx.key_auth_secret is None:
        raise RenderError("key-auth: keys are hashed with the cluster's secret, which the snapshot lacks.")
    changed = "!{ var(txn.key,),strcmp(sess.key) -m int eq 0 }"
    digest = f"hmac(sha256,{ctx.key_auth_secret})" if hmac_keys else "sha2(256)"
    lines = []
    if hmac_keys and sha256_keys:  # before the next rule keeps the key: same condition
        lines.append(
            f"http-request set-var(sess.key_sha256) var(txn.key,),sha2(256),hex,lower if {cond} {changed}"
        )
    lines += [
        f"http-request set-var(sess.key_hash) var(txn.key,),set-var(sess.key),{digest},hex,lower if {cond} {changed}",
        f"http-request set-var(txn.consumer) var(sess.key_hash),map({ctx.path(KEYS_HMAC_MAP if hmac_keys else KEYS_MAP)}) if {cond}",
    ]
    if hmac_keys and sha256_keys:
        lines.append(
            f"http-request set-var(txn.consumer) var(sess.key_sha256),map({ctx.path(KEYS_MAP)}) "
            f"if {cond} !{{ var(txn.consumer) -m found }}"
        )
    return lines
