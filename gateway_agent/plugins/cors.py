"""cors: preflight requests (OPTIONS with Origin and Access-Control-Request-Method) are answered
at the gateway with 204; other requests from an allowed origin get the CORS response headers.
A disallowed origin gets no CORS header at all (its preflight is answered 204 without them).

`allow_origins` is a list of exact origins, or ["*"]. With credentials allowed, the Fetch
standard forbids `*` in Access-Control-Allow-Origin, so the request's origin is echoed instead.
Unset `allow_methods` allows the usual methods; unset `allow_headers` echoes the headers the
preflight asks for."""

from __future__ import annotations

from ..directives import PluginRules, Settings, group_file, literal, pattern_file, when
from .context import RenderContext

DEFAULT_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def render(groups: Settings, var: str, ctx: RenderContext) -> PluginRules:
    rules = PluginRules()
    preflight = (
        "{ method OPTIONS } { req.hdr(origin) -m found } { req.hdr(access-control-request-method) -m found }"
    )
    for group, config in groups.items():
        cond = when(var, group)
        origins = config["allow_origins"]
        credentials = bool(config.get("allow_credentials", False))
        if "*" in origins:
            allowed = "{ req.hdr(origin) -m found }"
        else:
            relative, absolute = group_file(ctx.options, var, group)
            rules.files[relative] = pattern_file(origins)
            allowed = f"{{ req.hdr(origin) -m str -f {absolute} }}"
        value = "req.hdr(origin)" if credentials or "*" not in origins else "str(*)"
        rules.request.append(f"http-request set-var(txn.cors_origin) {value} if {cond} {allowed}")
        methods = ",".join(config.get("allow_methods") or DEFAULT_METHODS)
        headers = {
            "Access-Control-Allow-Origin": "%[var(txn.cors_origin)]",
            "Access-Control-Allow-Methods": literal(methods),
            "Access-Control-Allow-Headers": (
                literal(",".join(config["allow_headers"]))
                if config.get("allow_headers")
                else "%[req.fhdr(access-control-request-headers)]"
            ),
            "Access-Control-Max-Age": str(int(config.get("max_age", 5))),
        }
        if credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        found = "{ var(txn.cors_origin) -m found }"
        hdrs = "".join(f" hdr {name} {value}" for name, value in headers.items())
        rules.request += [
            f"http-request return status 204{hdrs} if {cond} {preflight} {found}",
            f"http-request return status 204 hdr Vary Origin if {cond} {preflight}",
        ]
        # After-response rules: the gateway's own answers (401, 429...) carry them too, so a
        # browser can read why it was refused.
        actual = [
            f"http-after-response set-header Access-Control-Allow-Origin %[var(txn.cors_origin)] if {cond} {found}",
            f"http-after-response add-header Vary Origin if {cond} {found}",
        ]
        if config.get("expose_headers"):
            actual.append(
                f"http-after-response set-header Access-Control-Expose-Headers {literal(','.join(config['expose_headers']))} "
                f"if {cond} {found}"
            )
        if credentials:
            actual.append(
                f"http-after-response set-header Access-Control-Allow-Credentials true if {cond} {found}"
            )
        rules.response += actual
    return rules
