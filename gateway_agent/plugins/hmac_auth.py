"""hmac-auth: requests signed as with APISIX's hmac-auth. The client sends

    Authorization: Signature keyId="<key id>",algorithm="hmac-sha256",
                   headers="@request-target date",signature="<base64 HMAC>"

over the signing string: the key id, then one line per listed header (`@request-target` is
"<METHOD> <path?query>", any other "<name>: <value>"), each ending with a newline. The Date
header must be signed and within `clock_skew_s` of the gateway's clock; `signed_headers` must
all be signed; no signed header may appear twice; the algorithm must be allowed. 401 in JSON
naming the reason otherwise.

All of it is HAProxy's own converters, no Lua (a Lua action cost 85k instructions a request,
the cost of two and a half requests through plain HAProxy):

- one regular expression reads the Authorization header's parameters: the usual order in one
  pass, any other by a look-ahead per parameter;
- the usual list, `@request-target date` as written here, makes its signing string from the
  request line and the Date header. Any other list takes one global substitution, since HAProxy 2.6 can neither
  loop nor fetch a header whose name it learns at run time: over the list followed by the
  request line and the header block, it replaces each name with its line, finding the header by
  a back-reference to the name (case-insensitively; a header that appears twice is refused);
- the Date header becomes a sortable YYYYMMDDhhmmss number by one more regular expression (with
  a table of month names appended to its subject), compared with the clock's own at -/+ skew,
  which each connection formats once a second;
- `hmac` computes the signature, `secure_memcmp` compares it in constant time, and maps give
  the secret and the consumer of a key id. Each check records its reason (`refuse_if`) and one
  rule answers, so the success path evaluates each check once."""

from __future__ import annotations

import base64

from ..directives import PluginRules, Settings, deny_refused, expression, refuse_if, when
from .context import RenderContext

SECRETS_MAP = "maps/hmac_secrets.map"  # key id -> base64 secret (a private file)
CONSUMERS_MAP = "maps/hmac_consumers.map"  # key id -> consumer
ALGORITHMS = {"hmac-sha1": "sha1", "hmac-sha256": "sha256", "hmac-sha512": "sha512"}

# `Signature k="v",...` -> `"<algorithm>"<keyId>"<signature>"<headers>`: a value cannot hold a
# double quote, so it separates them, and the algorithm comes first for a prefix test to find.
# A header it cannot read stays as it is: not starting with `"`.
_PARAM = r'(?:\w+="[^"]*"\s*,?\s*)*?'
_PARAMETERS = (
    r'^Signature (?:keyId="([^"]*)",\s*algorithm="([^"]*)",\s*headers="([^"]*)",\s*signature="([^"]*)"$'
    rf'|(?={_PARAM}keyId="([^"]*)")(?={_PARAM}algorithm="([^"]*)")'
    rf'(?={_PARAM}signature="([^"]*)")(?:(?={_PARAM}headers="([^"]*)"))?[\s\S]*$)'
)
_PARAMETERS_OUT = '"\\2\\6"\\1\\5"\\4\\7"\\3\\8'
# Each name of `headers` costs a scan of the header block: the list is bounded, so that a client
# cannot multiply it.
MAX_HEADERS_CHARS = 512
# Applied, globally, to `<headers>" <METHOD> <path?query>\n<header block>`: each name of
# `headers` becomes its signing line with its newline, found by a back-reference to the name in
# the block (case-insensitively); a name that is no header of the request becomes " ". A name
# that is a header more than once gets one more newline: an upstream reading another occurrence
# would act on a value the signature does not cover, so the request is refused. The first
# occurrence is matched atomically and the rest of the block searched once for another: one
# scan of the block a name. The spaces between names and the rest become nothing.
_LINES = (
    r'@request-target(?=[\s"])(?=[^"]*" (\S+ \S+\n))'
    r'|([^\s"]+)(?=[^"]*"[^\n]*(\n)(?>(?:[^\n]*\n)*?\2(: [^\r\n]+)\r\n)'
    r"(?:(?=(?:[^\n]*\n)*?\2: )(?<=(\n))|))"
    r'|[^\s"]+(?=[^"]*"( ))'
    r'|\s+(?=[^"]*")'
    r'|"[\s\S]*'
)
_LINES_OUT = "\\1\\2\\4\\3\\5\\6"

_MONTHS = "|Jan01Feb02Mar03Apr04May05Jun06Jul07Aug08Sep09Oct10Nov11Dec12"
# "Sun, 06 Nov 1994 08:49:37 GMT|Jan01..." -> 19941106084937, sortable like the clock's own; any
# other Date becomes "|", which is no number.
_DATE = (
    r"^[A-Z][a-z]{2}, (\d\d) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT\|[\s\S]*?\2(\d\d)[\s\S]*$"
    r"|^[\s\S]*?(\|)[\s\S]*$"
)
_CLOCK = "utime('%Y%m%d%H%M%S')"


def _parameter(index: int) -> str:
    """One parameter of the Authorization header, by its place in txn.hmac_parameters."""
    return f"var(txn.hmac_parameters),field({index},'\"')"


KEY_ID, SIGNATURE, HEADERS = (_parameter(index) for index in (3, 4, 5))
# The same as words of their own (in a condition, or before a converter).
KEY_ID_WORD, HEADERS_WORD = expression(KEY_ID), expression(HEADERS)


def _algorithm_is(names: list[str]) -> str:
    return "{ var(txn.hmac_parameters) -m beg " + " ".join(f"'\"{name}\"'" for name in names) + " }"


def _consumer_files(ctx: RenderContext, rules: PluginRules) -> None:
    secrets, consumers = [], []
    for credential in ctx.consumers.hmac:
        secrets.append(f"{credential.key_id} {base64.b64encode(credential.secret.encode()).decode()}")
        consumers.append(f"{credential.key_id} {credential.username}")
    rules.files[SECRETS_MAP] = "".join(f"{line}\n" for line in sorted(secrets))
    rules.files[CONSUMERS_MAP] = "".join(f"{line}\n" for line in sorted(consumers))


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    _consumer_files(ctx, rules)
    secrets, consumers = ctx.path(SECRETS_MAP), ctx.path(CONSUMERS_MAP)
    for group, config in groups.items():
        cond = when(var, group)
        allowed = [name for name in ALGORITHMS if name in (config.get("allowed_algorithms") or ALGORITHMS)]
        skew = int(config.get("clock_skew_s", 300))
        at, earliest, latest = (f"sess.hmac_{name}_{skew}" for name in ("at", "earliest", "latest"))
        parameters = expression(f"req.fhdr(authorization),regsub('{_PARAMETERS}','{_PARAMETERS_OUT}')")
        request = expression(f'%[{HEADERS}]" %[method] %[pathq]\n%[req.hdrs]')
        signing = expression(f"%[{KEY_ID}]\n%[var(txn.hmac_request),regsub('{_LINES}','{_LINES_OUT}','ig')]")
        usual = expression(f"%[{KEY_ID}]\n%[method] %[pathq]\ndate: %[req.fhdr(date)]\n")
        date = expression(f"req.fhdr(date),concat('{_MONTHS}'),regsub('{_DATE}','\\3\\7\\1\\4\\5\\6\\8')")
        rules.request += [
            f"http-request set-var(txn.hmac_parameters) {parameters} if {cond}",
            # The usual list, `@request-target date`, needs no copy of the header block (a
            # repeated Date takes the general path, which refuses it).
            f"http-request set-var-fmt(txn.hmac_signing) {usual} if {cond} "
            f"{{ {HEADERS_WORD} -m str '@request-target date' }} {{ req.fhdr_cnt(date) -m int eq 1 }}",
            f"http-request set-var-fmt(txn.hmac_request) {request} if {cond} !{{ var(txn.hmac_signing) -m found }} "
            f"{{ {HEADERS_WORD} -m len le {MAX_HEADERS_CHARS} }}",
            f"http-request set-var-fmt(txn.hmac_signing) {signing} if {cond} {{ var(txn.hmac_request) -m found }}",
            f"http-request set-var(txn.hmac_key) {KEY_ID_WORD},map({secrets}) if {cond}",
            *(
                f"http-request set-var(txn.hmac_expected) var(txn.hmac_signing),hmac({ALGORITHMS[name]},txn.hmac_key),base64 "
                f"if {cond} {_algorithm_is([name])}"
                for name in allowed
            ),
            # A connection's requests within a second share their Date: parsed once.
            f"http-request set-var(txn.hmac_date) var(sess.hmac_date) if {cond} "
            "{ req.fhdr(date),strcmp(sess.hmac_date_of) -m int eq 0 }",
            f"http-request set-var(sess.hmac_date) {date} if {cond} !{{ var(txn.hmac_date) -m found }}",
            f"http-request set-var(sess.hmac_date_of) req.fhdr(date) if {cond} !{{ var(txn.hmac_date) -m found }}",
            f"http-request set-var(txn.hmac_date) var(sess.hmac_date) if {cond} !{{ var(txn.hmac_date) -m found }} "
            "{ req.fhdr(date),strcmp(sess.hmac_date_of) -m int eq 0 }",
            # The window of acceptable Dates, formatted once a second per connection (`utime`
            # costs 2k): sess.hmac_at_<skew> is the second it was formatted for.
            f"http-request set-var(txn.hmac_tick) bool(1) if {cond} !{{ date,sub({at}) -m int eq 0 }}",
            f"http-request set-var({earliest}) date(-{skew}),{_CLOCK} if {cond} {{ var(txn.hmac_tick) -m found }}",
            f"http-request set-var({latest}) date({skew}),{_CLOCK} if {cond} {{ var(txn.hmac_tick) -m found }}",
            f"http-request set-var({at}) date if {cond} {{ var(txn.hmac_tick) -m found }}",
        ]
        # The checks, the least fundamental first: the last that holds is the answer.
        refusals = [
            (
                "Invalid HMAC signature",
                f"!{{ {expression(SIGNATURE + ',secure_memcmp(txn.hmac_expected)')} }}",
            ),
            # This one, the algorithm's, the malformed and the missing signature all leave no
            # expected signature (its rules need the parsed parameters, which start with `"`), so
            # the request is refused already: they are tested only then.
            ("Unknown HMAC key id", "{ var(txn.refusal) -m found } !{ var(txn.hmac_key) -m found }"),
            (
                "Request date outside the allowed clock skew",
                # Each alternative carries the group's condition: AND binds tighter than OR.
                f" || {cond} ".join(
                    [
                        f"!{{ var(txn.hmac_date),sub({earliest}) -m int ge 0 }}",
                        f"!{{ var({latest}),sub(txn.hmac_date) -m int ge 0 }}",
                    ]
                ),
            ),
            *(
                (
                    f"The {header} header must be signed",
                    f"!{{ var(txn.hmac_signing) -m sub -i {expression(chr(10) + header.lower() + ': ')} }}",
                )
                for header in reversed(config.get("signed_headers", []))
            ),
            # The usual list signs the Date, which it found: these two are the general path's.
            (
                "The Date header must be signed",
                '{ var(txn.hmac_request) -m found } !{ var(txn.hmac_signing) -m sub -i "\\ndate: " }',
            ),
            (
                "HMAC algorithm not allowed",
                f"{{ var(txn.refusal) -m found }} !{_algorithm_is(allowed)}",
            ),
            (
                "A signed header appears more than once in the request",
                '{ var(txn.hmac_request) -m found } { var(txn.hmac_signing) -m sub "\\n\\n" }',
            ),
            (
                "A signed header is missing from the request",
                '{ var(txn.hmac_request) -m found } { var(txn.hmac_signing) -m sub "\\n " }',
            ),
            (
                "Malformed HMAC signature",
                f"{{ var(txn.refusal) -m found }} {{ var(txn.hmac_parameters) -m beg 'Signature ' }} "
                f"|| {cond} {{ var(txn.refusal) -m found }} "
                f"{{ {HEADERS_WORD} -m len gt {MAX_HEADERS_CHARS} }}",
            ),
            (
                "Missing HMAC signature",
                "{ var(txn.refusal) -m found } !{ var(txn.hmac_parameters) -m beg '\"' 'Signature ' }",
            ),
        ]
        rules.request += [refuse_if(message, f"{cond} {condition}") for message, condition in refusals]
        rules.request += [
            deny_refused(401, "unauthorized"),
            f"http-request set-var(txn.consumer) {KEY_ID_WORD},map({consumers}) if {cond}",
        ]
        if config.get("hide_credentials"):
            rules.request.append(f"http-request del-header Authorization if {cond}")
    return rules
