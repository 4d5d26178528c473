"""basic-auth: HTTP Basic username and password, checked by HAProxy against the consumers'
crypt(3) hashes (a userlist). 401 in JSON with WWW-Authenticate when missing or wrong.

crypt(3) with thousands of SHA-512 rounds costs milliseconds of CPU, so a verified
Authorization header is remembered by its SHA-256 (never the password itself) in a map HAProxy
fills as requests pass. A reload, which a password change brings, forgets them all."""

from __future__ import annotations

from ..directives import PluginRules, Settings, deny, when
from .context import RenderContext

USERLIST = "consumers"
USERS_MAP = "maps/basic_users.map"
# SHA-256 of Authorization headers already verified. Filled by HAProxy as requests pass (the
# file stays empty); a reload, which a password change brings, starts it empty.
VERIFIED_MAP = "maps/basic_verified.map"


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    challenge = {"WWW-Authenticate": '\'Basic realm="gateway", charset="UTF-8"\''}
    verified = ctx.path(VERIFIED_MAP)
    rules.files[VERIFIED_MAP] = ""
    for group, config in groups.items():
        cond = when(var, group)
        known = f"{{ var(txn.ba_seen),map({verified}) -m found }}"
        rules.request += [
            deny(401, "unauthorized", "Missing basic credentials", challenge)
            + f" if {cond} !{{ http_auth_type -m str -i basic }}",
            f"http-request set-var(txn.ba_seen) req.hdr(authorization),sha2(256),hex if {cond}",
            deny(401, "unauthorized", "Invalid username or password", challenge)
            + f" if {cond} !{known} !{{ http_auth({USERLIST}) }}",
            f"http-request set-map({verified}) %[var(txn.ba_seen)] 1 if {cond} !{known}",
            f"http-request set-var(txn.consumer) http_auth_user,map({ctx.path(USERS_MAP)}) if {cond}",
        ]
        if config.get("hide_credentials"):
            rules.request.append(f"http-request del-header Authorization if {cond}")
    return rules
