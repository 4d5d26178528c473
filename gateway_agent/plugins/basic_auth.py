"""basic-auth: HTTP Basic username and password, checked by HAProxy against the consumers'
crypt(3) hashes (a userlist). 401 in JSON with WWW-Authenticate when missing or wrong.

crypt(3) with thousands of SHA-512 rounds costs milliseconds of CPU, so a verified
Authorization header is remembered for five minutes by its SHA-256 in a stick table (never the
password itself). A reload (which a password change brings) forgets them all."""

from __future__ import annotations

from ..directives import PluginRules, Settings, deny, when
from .context import RenderContext

USERLIST = "consumers"
USERS_MAP = "maps/basic_users.map"
CACHE_TABLE = "ba_verified"


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    challenge = {"WWW-Authenticate": '\'Basic realm="gateway", charset="UTF-8"\''}
    for group, config in groups.items():
        cond = when(var, group)
        rules.request += [
            deny(401, "unauthorized", "Missing basic credentials", challenge)
            + f" if {cond} !{{ http_auth_type -m str -i basic }}",
            f"http-request set-var(txn.ba_seen) req.hdr(authorization),sha2(256),hex if {cond}",
            f"http-request track-sc2 var(txn.ba_seen) table {CACHE_TABLE} if {cond}",
            deny(401, "unauthorized", "Invalid username or password", challenge)
            + f" if {cond} !{{ sc_get_gpc0(2) gt 0 }} !{{ http_auth({USERLIST}) }}",
            f"http-request sc-inc-gpc0(2) if {cond} !{{ sc_get_gpc0(2) gt 0 }}",
            f"http-request set-var(txn.consumer) http_auth_user,map({ctx.path(USERS_MAP)}) if {cond}",
        ]
        if config.get("hide_credentials"):
            rules.request.append(f"http-request del-header Authorization if {cond}")
    rules.sections.append(
        [f"backend {CACHE_TABLE}", "    stick-table type string len 64 size 100k expire 5m store gpc0"]
    )
    return rules
