"""jwt-auth: a signed JWT from `Authorization: Bearer` (or the configured header), else the
query parameter, else the cookie. The consumer is found by the token's `key` claim; the token's
`alg` must be the algorithm configured for that consumer's credential (no `none`, no HS/RS
confusion: the configured algorithm is the one verified with). Signature by HAProxy's
`jwt_verify` (HS256/384/512 with the consumer's secret, RS256/384/512 and ES256/384 with its
public key), then `exp` and `nbf` against the gateway's clock with `clock_skew_s`. 401 in JSON
naming the reason otherwise.

The signature check is a request's costliest step, and a client sends the same token on every
request of a connection: the connection keeps the last token whose signature passed and the
credential it passed for, and a request with that same token for that same credential skips
the check. Everything else runs on every request: the credential is looked up again, and `exp`
and `nbf` are checked against the clock. A credential's change (new secret or key, deletion)
changes the configuration, so it reaches a new HAProxy worker, which remembers nothing.

HAProxy 2.6's jwt_verify takes its algorithm and key as literals, not variables, so there is one
verification rule per credential, chosen by a string compare: fine for hundreds of JWT
consumers; HAProxy 2.8 takes variables and would make it one rule."""

from __future__ import annotations

from ..directives import PluginRules, RenderError, Settings, argument, deny, quote, when
from .context import RenderContext

CREDENTIALS_MAP = "maps/jwt_credentials.map"  # key claim -> credential slot
ALGORITHMS_MAP = "maps/jwt_algorithms.map"  # slot -> algorithm
CONSUMERS_MAP = "maps/jwt_consumers.map"  # slot -> consumer
_UNSAFE_IN_ARGUMENT = set(" \t,()'\"\\")


def _credential_rules(ctx: RenderContext, rules: PluginRules) -> None:
    keys, algorithms, consumers = [], [], []
    for consumer in ctx.consumers:
        for credential in consumer.credentials:
            if credential.type != "jwt-auth":
                continue
            slot = f"j{credential.id}"
            if any(c.isspace() for c in credential.key) or credential.key.startswith("#"):
                raise RenderError(f"jwt-auth key {credential.key!r} cannot be used.")
            keys.append(f"{credential.key} {slot}")
            algorithms.append(f"{slot} {credential.algorithm}")
            consumers.append(f"{slot} {consumer.username}")
            if credential.algorithm.startswith("HS"):
                if not credential.secret or _UNSAFE_IN_ARGUMENT & set(credential.secret):
                    raise RenderError(f"jwt-auth credential {credential.id} has no usable secret.")
                key = credential.secret
            else:
                if not credential.public_key_pem:
                    raise RenderError(f"jwt-auth credential {credential.id} has no public key.")
                relative = f"jwt/{credential.id}.pem"
                rules.files[relative] = credential.public_key_pem.rstrip() + "\n"
                key = ctx.path(relative)
            verify = quote(f"var(txn.jwt),jwt_verify({credential.algorithm},{key})")
            rules.request.append(
                f"http-request set-var(txn.jwt_valid) {verify} if {{ var(txn.jwt_cred) -m str {slot} }} "
                "!{ var(txn.jwt_valid) -m found }"
            )
    rules.files[CREDENTIALS_MAP] = "".join(f"{line}\n" for line in sorted(keys))
    rules.files[ALGORITHMS_MAP] = "".join(f"{line}\n" for line in sorted(algorithms))
    rules.files[CONSUMERS_MAP] = "".join(f"{line}\n" for line in sorted(consumers))


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    for group, config in groups.items():
        cond = when(var, group)
        header = str(config.get("header", "Authorization"))
        unset = "!{ var(txn.jwt) -m found }"
        if header.lower() == "authorization":
            rules.request.append(
                f"http-request set-var(txn.jwt) req.hdr(authorization),word(2,' ') if {cond} "
                "{ req.hdr(authorization) -m beg -i 'bearer ' }"
            )
        else:
            rules.request.append(f"http-request set-var(txn.jwt) req.hdr({argument(header)}) if {cond}")
        rules.request += [
            f"http-request set-var(txn.jwt) url_param({argument(str(config.get('query', 'jwt')))}) if {cond} {unset}",
            f"http-request set-var(txn.jwt) req.cook({argument(str(config.get('cookie', 'jwt')))}) if {cond} {unset}",
            f"{deny(401, 'unauthorized', 'Missing JWT')} if {cond} {unset}",
            f"http-request set-var(txn.jwt_alg) var(txn.jwt),jwt_header_query('$.alg') if {cond}",
            f"{deny(401, 'unauthorized', 'Malformed JWT')} if {cond} !{{ var(txn.jwt_alg) -m found }}",
            f"{deny(401, 'unauthorized', 'JWT algorithm none is not accepted')} if {cond} {{ var(txn.jwt_alg) -m str -i none }}",
            f"http-request set-var(txn.jwt_cred) var(txn.jwt),jwt_payload_query('$.key'),map({ctx.path(CREDENTIALS_MAP)}) if {cond}",
            f"{deny(401, 'unauthorized', 'No consumer has the key of this JWT')} if {cond} !{{ var(txn.jwt_cred) -m found }}",
            f"http-request set-var(txn.jwt_expected) var(txn.jwt_cred),map({ctx.path(ALGORITHMS_MAP)}) if {cond}",
            f"{deny(401, 'unauthorized', 'JWT algorithm is not the one configured for this consumer')} "
            f"if {cond} !{{ var(txn.jwt_alg),strcmp(txn.jwt_expected) -m int eq 0 }}",
        ]
    for group in groups:
        # The signature this connection's last request proved, for the same credential.
        rules.request.append(
            f"http-request set-var(txn.jwt_valid) int(1) if {when(var, group)} "
            "{ var(txn.jwt),strcmp(sess.jwt) -m int eq 0 } { var(txn.jwt_cred),strcmp(sess.jwt_cred) -m int eq 0 }"
        )
    _credential_rules(ctx, rules)
    for group, config in groups.items():
        cond = when(var, group)
        skew = int(config.get("clock_skew_s", 0))
        rules.request += [
            f"{deny(401, 'unauthorized', 'Invalid JWT signature')} if {cond} !{{ var(txn.jwt_valid) -m int eq 1 }}",
            f"http-request set-var(sess.jwt) var(txn.jwt) if {cond}",
            f"http-request set-var(sess.jwt_cred) var(txn.jwt_cred) if {cond}",
            f"http-request set-var(txn.jwt_now) date if {cond}",
            f"http-request set-var(txn.jwt_exp) var(txn.jwt),jwt_payload_query('$.exp','int') if {cond}",
            f"{deny(401, 'unauthorized', 'JWT has expired')} if {cond} {{ var(txn.jwt_exp) -m found }} "
            f"{{ var(txn.jwt_exp),add({skew}),sub(txn.jwt_now) -m int le 0 }}",
            f"http-request set-var(txn.jwt_nbf) var(txn.jwt),jwt_payload_query('$.nbf','int') if {cond}",
            f"{deny(401, 'unauthorized', 'JWT is not valid yet')} if {cond} {{ var(txn.jwt_nbf) -m found }} "
            f"{{ var(txn.jwt_nbf),sub({skew}),sub(txn.jwt_now) -m int gt 0 }}",
            f"http-request set-var(txn.consumer) var(txn.jwt_cred),map({ctx.path(CONSUMERS_MAP)}) if {cond}",
        ]
        if config.get("hide_credentials"):
            rules.request.append(f"http-request del-header {quote(header)} if {cond}")
    return rules
