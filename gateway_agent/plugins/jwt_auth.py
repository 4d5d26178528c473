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
consumers; HAProxy 2.8 takes variables and would make it one rule.

`exp` and `nbf`, when present, must be NumericDates the gateway reads exactly (see
`_numeric_date`); `claims_to_verify` names the ones that must be present (the control plane
writes `["exp"]` into every configuration saved without it; one stored before the option existed
has none and requires none, as before); `maximum_expiration` bounds `exp - now`, as Kong's
option of that name does. `iat` is not read."""

from __future__ import annotations

from ..directives import (
    PluginRules,
    RenderError,
    Settings,
    argument,
    deny,
    deny_refused,
    quote,
    refuse_if,
    when,
)
from .context import RenderContext

CREDENTIALS_MAP = "maps/jwt_credentials.map"  # key claim -> credential slot
ALGORITHMS_MAP = "maps/jwt_algorithms.map"  # slot -> algorithm
CONSUMERS_MAP = "maps/jwt_consumers.map"  # slot -> consumer
_UNSAFE_IN_ARGUMENT = set(" \t,()'\"\\")
CLAIMS = ("exp", "nbf")
# What a configuration stored before `claims_to_verify` existed requires: nothing, as then. New
# configurations carry the option (the control plane fills in `["exp"]`).
LEGACY_CLAIMS_TO_VERIFY: tuple[str, ...] = ()
# The NumericDates accepted: ten-digit JSON numbers, 2001-09-09 to 2286-11-20.
_FIRST, _LAST = 10**9, 10**10 - 1


def _credential_rules(ctx: RenderContext, rules: PluginRules) -> None:
    keys, algorithms, consumers = [], [], []
    for credential in ctx.consumers.jwt:
        slot = f"j{credential.credential_id}"
        if any(c.isspace() for c in credential.key) or credential.key.startswith("#"):
            raise RenderError(f"jwt-auth key {credential.key!r} cannot be used.")
        keys.append(f"{credential.key} {slot}")
        algorithms.append(f"{slot} {credential.algorithm}")
        consumers.append(f"{slot} {credential.username}")
        if credential.algorithm.startswith("HS"):
            if not credential.secret or _UNSAFE_IN_ARGUMENT & set(credential.secret):
                raise RenderError(f"jwt-auth credential {credential.credential_id} has no usable secret.")
            key = credential.secret
        else:
            if not credential.public_key_pem:
                raise RenderError(f"jwt-auth credential {credential.credential_id} has no public key.")
            relative = f"jwt/{credential.credential_id}.pem"
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
        maximum = int(config.get("maximum_expiration", 0))
        required = config.get("claims_to_verify", list(LEGACY_CLAIMS_TO_VERIFY))
        if not isinstance(required, list) or not set(required) <= set(CLAIMS) or maximum < 0:
            raise RenderError(f"jwt-auth setting {group} has invalid claims_to_verify or maximum_expiration.")
        # The checks after the signature's record their reason and one rule answers, the most
        # fundamental last (a malformed claim also fails the clock's checks, which its own
        # reason replaces). HAProxy 2.6's add and sub answer LLONG_MAX for two negative operands:
        # each sum starts from the claim, positive once it is well-formed.
        refusals = [
            (
                "JWT is not valid yet",
                "{ var(txn.jwt_nbf) -m found } "
                f"{{ var(txn.jwt_nbf),sub({skew}),sub(txn.jwt_now) -m int gt 0 }}",
            ),
            (
                "JWT has expired",
                "{ var(txn.jwt_exp) -m found } "
                f"{{ var(txn.jwt_exp),add({skew}),sub(txn.jwt_now) -m int le 0 }}",
            ),
        ]
        if maximum:
            # Kong's maximum_expiration: how far in the future `exp` may be (exp - now).
            refusals.append(
                (
                    "JWT exp exceeds the maximum expiration",
                    f"{{ var(txn.jwt_exp),sub({skew}),sub(txn.jwt_now) -m int gt {maximum} }}",
                )
            )
        refusals += [
            _numeric_date("nbf", "nbf" in required),
            _numeric_date("exp", "exp" in required or maximum > 0),
        ]
        rules.request += [
            f"{deny(401, 'unauthorized', 'Invalid JWT signature')} if {cond} !{{ var(txn.jwt_valid) -m int eq 1 }}",
            f"http-request set-var(sess.jwt) var(txn.jwt) if {cond}",
            f"http-request set-var(sess.jwt_cred) var(txn.jwt_cred) if {cond}",
            f"http-request set-var(txn.jwt_now) date if {cond}",
            *(
                f"http-request set-var(txn.jwt_{claim}{suffix}) var(txn.jwt),jwt_payload_query('$.{claim}'{kind}) if {cond}"
                for claim in CLAIMS
                for suffix, kind in (("", ",'int'"), ("_text", ""))
            ),
            *(
                refuse_if(message, " || ".join(f"{cond} {term}" for term in terms.split(" || ")))
                for message, terms in refusals
            ),
            deny_refused(401, "unauthorized"),
            f"http-request set-var(txn.consumer) var(txn.jwt_cred),map({ctx.path(CONSUMERS_MAP)}) if {cond}",
        ]
        if config.get("hide_credentials"):
            rules.request.append(f"http-request del-header {quote(header)} if {cond}")
    return rules


def _numeric_date(claim: str, required: bool) -> tuple[str, str]:
    """The refusal of a token whose `claim` (read into txn.jwt_<claim> as an integer and into
    txn.jwt_<claim>_text as text) is not a JSON number the gateway reads exactly, or is absent
    and required: its message and its condition (alternatives joined by ` || `).

    HAProxy 2.6 reads a claim two ways, neither enough alone. `jwt_payload_query(<path>,'int')`
    gives a number's text read by strtoll (so `1.5e9` reads 1, `1e400` 1, `017` 15), nothing for
    2^53 and beyond, and a string claim's own text (`"-1"`, `"5x"`), which `-m int` then reads
    as a number; `jwt_payload_query(<path>)` gives a number printed by %g (`1.7e+09`) and a
    string's own text. `null`, lists and objects give nothing either way, like an absent claim:
    only the payload's text tells them apart (the regular expression, read only then).
    Accepted when (1) the integer reading is ten digits (2001-09-09 to 2286-11-20), (2) the %g
    reading ends in `e+09` (a number of ten digits before its point) and (3) the %g reading's
    first digit times 10^9 is within 10^9 of the integer reading. A string fails (1) or (3), its
    two readings being the same text; a fraction or exponent that makes strtoll read another
    number than the claim's fails (2) or (3) (`17000000001e-1`, `9999999999.9e-1`, `01700000000`)."""
    value, text = f"var(txn.jwt_{claim})", f"var(txn.jwt_{claim}_text)"
    found = f"{{ {text} -m found }}"
    wrong = [
        f"{found} !{{ {value} -m int {_FIRST}:{_LAST} }}",
        f"{found} !{{ {text} -m end e+09 }}",
        f"{found} !{{ {text},mul({_FIRST}),sub(txn.jwt_{claim}),add({_FIRST}) -m int 1:{_FIRST + 5000} }}",
    ]
    if required:
        wrong.append(f"!{found}")
        return f"JWT {claim} claim is missing or not a valid NumericDate", " || ".join(wrong)
    key = quote(f'"{claim}"\\s*:')
    wrong.append(f"!{found} {{ var(txn.jwt),field(2,.),ub64dec -m reg {key} }}")
    return f"JWT {claim} claim is not a valid NumericDate", " || ".join(wrong)
