"""hmac-auth: requests signed as with APISIX's hmac-auth. The client sends

    Authorization: Signature keyId="<key id>",algorithm="hmac-sha256",
                   headers="@request-target date",signature="<base64 HMAC>"

over the signing string: the key id, then one line per listed header (`@request-target` is
"<METHOD> <path?query>", any other "<name>: <value>"), each ending with a newline. The Date
header must be signed and within `clock_skew_s` of the gateway's clock; `signed_headers` must
all be signed; the algorithm must be allowed. 401 in JSON naming the reason otherwise.

HAProxy 2.6 cannot loop over a header list the request chooses, so a small Lua action
(hmac_auth.lua, loaded per thread) builds the signing string; the HMAC, the comparison
(`secure_memcmp`, in constant time) and the consumer lookup are HAProxy converters. The Lua
action costs about 85k instructions a request, three times all the rest of the plugin: HAProxy
2.6 builds a transaction object for it, and each string operation inside costs about a
thousand. (A Lua converter, which gets no transaction object, measured no cheaper once it had
to parse the header block itself.)"""

from __future__ import annotations

import base64
from importlib import resources

from ..directives import PluginRules, Settings, deny, literal, when
from .context import RenderContext

SECRETS_MAP = "maps/hmac_secrets.map"  # key id -> base64 secret (a private file)
CONSUMERS_MAP = "maps/hmac_consumers.map"  # key id -> consumer
SCRIPT = "lua/hmac_auth.lua"
ALGORITHMS = {"hmac-sha1": "sha1", "hmac-sha256": "sha256", "hmac-sha512": "sha512"}


def _consumer_files(ctx: RenderContext, rules: PluginRules) -> None:
    secrets, consumers = [], []
    for consumer in ctx.consumers:
        for credential in consumer.credentials:
            if credential.type == "hmac-auth" and credential.secret:
                secrets.append(f"{credential.key_id} {base64.b64encode(credential.secret.encode()).decode()}")
                consumers.append(f"{credential.key_id} {consumer.username}")
    rules.files[SECRETS_MAP] = "".join(f"{line}\n" for line in sorted(secrets))
    rules.files[CONSUMERS_MAP] = "".join(f"{line}\n" for line in sorted(consumers))


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules(globals=[f"lua-load-per-thread {ctx.path(SCRIPT)}"])
    rules.files[SCRIPT] = resources.files(__package__).joinpath("hmac_auth.lua").read_text()
    _consumer_files(ctx, rules)
    for group, config in groups.items():
        cond = when(var, group)
        allowed = " ".join(config.get("allowed_algorithms") or ALGORITHMS)
        skew = int(config.get("clock_skew_s", 300))
        rules.request += [
            f"http-request lua.hmac_auth_prepare if {cond}",
            f"{deny(401, 'unauthorized', 'Missing HMAC signature')} if {cond} {{ var(txn.hmac_error) -m str missing }}",
            f"{deny(401, 'unauthorized', 'Malformed HMAC signature')} if {cond} {{ var(txn.hmac_error) -m str malformed }}",
            f"{deny(401, 'unauthorized', 'A signed header is missing from the request')} "
            f"if {cond} {{ var(txn.hmac_error) -m str header_missing }}",
            f"{deny(401, 'unauthorized', 'HMAC algorithm not allowed')} if {cond} !{{ var(txn.hmac_algorithm) -m str {allowed} }}",
            f"{deny(401, 'unauthorized', 'The Date header must be signed')} if {cond} !{{ var(txn.hmac_signed) -m sub ' date ' }}",
            f"{deny(401, 'unauthorized', 'Request date outside the allowed clock skew')} "
            f"if {cond} !{{ var(txn.hmac_skew) -m int le {skew} }}",
        ]
        for header in config.get("signed_headers", []):
            rules.request.append(
                f"{deny(401, 'unauthorized', f'The {header} header must be signed')} "
                f"if {cond} !{{ var(txn.hmac_signed) -m sub {literal(' ' + header.lower() + ' ')} }}"
            )
        rules.request += [
            f"http-request set-var(txn.hmac_key) var(txn.hmac_key_id),map({ctx.path(SECRETS_MAP)}) if {cond}",
            f"{deny(401, 'unauthorized', 'Unknown HMAC key id')} if {cond} !{{ var(txn.hmac_key) -m found }}",
        ]
        for name, digest in ALGORITHMS.items():
            rules.request.append(
                f"http-request set-var(txn.hmac_expected) var(txn.hmac_signing),hmac({digest},txn.hmac_key),base64 "
                f"if {cond} {{ var(txn.hmac_algorithm) -m str {name} }}"
            )
        rules.request += [
            # Compared in constant time.
            f"{deny(401, 'unauthorized', 'Invalid HMAC signature')} "
            f"if {cond} !{{ var(txn.hmac_signature),secure_memcmp(txn.hmac_expected) }}",
            f"http-request set-var(txn.consumer) var(txn.hmac_key_id),map({ctx.path(CONSUMERS_MAP)}) if {cond}",
        ]
        if config.get("hide_credentials"):
            rules.request.append(f"http-request del-header Authorization if {cond}")
    return rules
