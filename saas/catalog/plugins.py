"""The plugins a gateway can run, each with the JSON Schema of its config (served at
/api/v1/plugins/ so the console can render forms) and the scopes it may be attached at.

Precedence, when the same plugin is set at several scopes, is APISIX's: consumer over route over
service over global (cluster). The most specific configuration wins whole; configs are not
merged field by field."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator

SCOPES = ("global", "service", "route", "consumer")
PRECEDENCE = ("consumer", "route", "service", "global")


def _field(schema: dict[str, Any], title: str, description: str = "") -> dict[str, Any]:
    """A property as forms show it: a title, and a description when the title is not enough.
    Every property has both (a test keeps it so), and a new one shows in the console at once."""
    return {**schema, "title": title, **({"description": description} if description else {})}


_HEADER_NAME = {"type": "string", "pattern": "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}$"}
# A header's value: HAProxy takes no empty one (`set-header X ''` is refused).
_HEADER_VALUE = {"type": "string", "minLength": 1, "maxLength": 4096}
_HEADER_MAP = {
    "type": "object",
    "propertyNames": _HEADER_NAME,
    "additionalProperties": _HEADER_VALUE,
}
_HEADER_OPERATIONS = {
    "type": "object",
    "title": "Headers",
    "properties": {
        "set": {**_HEADER_MAP, "title": "Set", "description": "Headers set to a value, replacing any sent."},
        "add": {**_HEADER_MAP, "title": "Add", "description": "Headers added, keeping any already there."},
        "remove": {
            "type": "array",
            "items": _HEADER_NAME,
            "title": "Remove",
            "description": "Header names removed.",
        },
    },
    "additionalProperties": False,
}
# A consumer's username, as specs.py's ConsumerSpec takes it.
_USERNAME = {"type": "string", "pattern": "^[A-Za-z0-9._@+-]{1,100}$"}
# A query parameter or cookie name: it is matched and rewritten inside HAProxy expressions.
_PARAMETER_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_.~-]{1,100}$"}
_METHODS = {
    "type": "array",
    "items": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"]},
    "uniqueItems": True,
}
_LIMIT_KEY = {"enum": ["consumer", "route", "client_ip"], "default": "client_ip"}
_LIMIT_KEY_FIELD = _field(
    _LIMIT_KEY,
    "Counted per",
    "client_ip: each client address; consumer: each authenticated consumer; route: the route as a whole.",
)
_REJECTED_CODE = _field(
    {"type": "integer", "minimum": 400, "maximum": 599, "default": 429},
    "Status when refused",
    "The HTTP status answered beyond the limit.",
)
# A traffic-split rule's conditions (headers, query arguments and cookies together) share one
# HAProxy rule, and HAProxy reads at most 64 words a line: 6 conditions of 7 words each fit.
MAX_SPLIT_CONDITIONS = 6
# A mocked answer's headers share its line too (3 words each).
MAX_MOCK_HEADERS = 12


def _schema(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": properties,
        "required": required or [],
        "additionalProperties": False,
        **extra,
    }


@dataclass(frozen=True)
class PluginDefinition:
    name: str
    description: str
    scopes: tuple[str, ...]
    schema: dict[str, Any]
    # What the schema's top-level anyOf or oneOf asks, said for people: jsonschema's own message
    # ("... is not valid under any of the given schemas") names no field.
    requirement: str = ""

    @property
    def validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.schema)


_AUTH_SCOPES = ("global", "service", "route")
_ALL = SCOPES

PLUGINS: dict[str, PluginDefinition] = {
    p.name: p
    for p in [
        PluginDefinition(
            "key-auth",
            "Authenticate consumers by an API key in a header or query parameter.",
            _AUTH_SCOPES,
            _schema(
                {
                    "header": _field(
                        {**_HEADER_NAME, "default": "apikey"},
                        "Header",
                        "The request header that holds the key.",
                    ),
                    "query": _field(
                        {**_PARAMETER_NAME, "default": "apikey"},
                        "Query parameter",
                        "Tried when the header is absent (letters, digits and _ . ~ -).",
                    ),
                    "hide_credentials": _field(
                        {"type": "boolean", "default": False},
                        "Hide credentials",
                        "Remove the key from the request before it goes upstream.",
                    ),
                }
            ),
        ),
        PluginDefinition(
            "jwt-auth",
            "Authenticate consumers by a signed JWT; the consumer is found by the token's key claim.",
            _AUTH_SCOPES,
            _schema(
                {
                    "header": _field(
                        {**_HEADER_NAME, "default": "Authorization"},
                        "Header",
                        "Authorization: Bearer <token>, or the bare token in another header.",
                    ),
                    "query": _field({**_PARAMETER_NAME, "default": "jwt"}, "Query parameter", "Tried next."),
                    "cookie": _field({**_PARAMETER_NAME, "default": "jwt"}, "Cookie", "Tried last."),
                    # Leeway for exp and nbf (and maximum_expiration): APISIX's lifetime_grace_period.
                    "clock_skew_s": _field(
                        {"type": "integer", "minimum": 0, "maximum": 3600, "default": 0},
                        "Clock skew (seconds)",
                        "Leeway for the exp and nbf claims and the maximum expiration.",
                    ),
                    # Kong's options. The claims that must be present: `exp` unless said otherwise,
                    # also for a config stored before the option existed.
                    "claims_to_verify": _field(
                        {
                            "type": "array",
                            "items": {"enum": ["exp", "nbf"]},
                            "uniqueItems": True,
                            "default": ["exp"],
                        },
                        "Required claims",
                        "Claims every token must carry; those present are always checked.",
                    ),
                    # At most this many seconds between now and exp (0: no limit); requires exp.
                    "maximum_expiration": _field(
                        {
                            "type": "integer",
                            "minimum": 0,
                            "maximum": 31536000,
                            "default": 0,
                        },
                        "Maximum expiration (seconds)",
                        "At most this long from now to the token's exp (0: no limit; needs exp).",
                    ),
                    "hide_credentials": _field(
                        {"type": "boolean", "default": False},
                        "Hide credentials",
                        "Remove the token from the request before it goes upstream.",
                    ),
                }
            ),
        ),
        PluginDefinition(
            "hmac-auth",
            "Authenticate consumers by an HMAC signature over the request line and headers "
            "(APISIX's hmac-auth: Authorization: Signature keyId=...,algorithm=...,headers=...,signature=...).",
            _AUTH_SCOPES,
            _schema(
                {
                    "allowed_algorithms": _field(
                        {
                            "type": "array",
                            "items": {"enum": ["hmac-sha1", "hmac-sha256", "hmac-sha512"]},
                            "minItems": 1,
                            "uniqueItems": True,
                            "default": ["hmac-sha1", "hmac-sha256", "hmac-sha512"],
                        },
                        "Allowed algorithms",
                        "The signature algorithms accepted.",
                    ),
                    "clock_skew_s": _field(
                        {"type": "integer", "minimum": 1, "maximum": 86400, "default": 300},
                        "Clock skew (seconds)",
                        "How far the signed Date header may be from the gateway's clock.",
                    ),
                    "signed_headers": _field(
                        {"type": "array", "items": _HEADER_NAME, "uniqueItems": True},
                        "Signed headers",
                        "Headers every request must sign.",
                    ),
                    "hide_credentials": _field(
                        {"type": "boolean", "default": False},
                        "Hide credentials",
                        "Remove the Authorization header before the request goes upstream.",
                    ),
                }
            ),
        ),
        PluginDefinition(
            "basic-auth",
            "Authenticate consumers by HTTP Basic username and password.",
            _AUTH_SCOPES,
            _schema(
                {
                    "hide_credentials": _field(
                        {"type": "boolean", "default": False},
                        "Hide credentials",
                        "Remove the Authorization header before the request goes upstream.",
                    )
                }
            ),
        ),
        PluginDefinition(
            "limit-count",
            "At most a number of requests per time window for each key (client, consumer or route); "
            "429 beyond.",
            _ALL,
            _schema(
                {
                    "count": _field(
                        {"type": "integer", "minimum": 1, "maximum": 10**9},
                        "Requests",
                        "Requests allowed in each time window.",
                    ),
                    "time_window": _field(
                        {"type": "integer", "enum": [1, 60, 3600, 86400]},
                        "Time window (seconds)",
                        "1 (a second), 60 (a minute), 3600 (an hour) or 86400 (a day).",
                    ),
                    "key": _LIMIT_KEY_FIELD,
                    "per_route": _field(
                        {"type": "boolean", "default": True},
                        "Counted per route",
                        "On: each route has its own count. Off: the requests of every route count together "
                        "(as a developer portal plan does).",
                    ),
                    "rejected_code": _REJECTED_CODE,
                },
                ["count", "time_window"],
            ),
        ),
        PluginDefinition(
            "limit-req",
            "A request rate per second with a burst, per key (leaky bucket); 429 beyond.",
            _ALL,
            _schema(
                {
                    "rate": _field(
                        {"type": "number", "exclusiveMinimum": 0, "maximum": 10**6},
                        "Rate (requests per second)",
                        "The steady rate allowed; may be below 1.",
                    ),
                    "burst": _field(
                        {"type": "integer", "minimum": 0, "maximum": 10**6},
                        "Burst",
                        "Extra requests allowed at once above the rate.",
                    ),
                    "key": _LIMIT_KEY_FIELD,
                    "rejected_code": _REJECTED_CODE,
                },
                ["rate", "burst"],
            ),
        ),
        PluginDefinition(
            "ip-restriction",
            "Allow or deny client addresses (IPv4, IPv6, CIDR); 403 when refused.",
            _ALL,
            _schema(
                {
                    "allowlist": _field(
                        {
                            "type": "array",
                            "items": {"type": "string"},
                            "minItems": 1,
                            "maxItems": 1000,
                        },
                        "Allow",
                        "Only these addresses or CIDR blocks are let through (set this or Deny).",
                    ),
                    "denylist": _field(
                        {
                            "type": "array",
                            "items": {"type": "string"},
                            "minItems": 1,
                            "maxItems": 1000,
                        },
                        "Deny",
                        "These addresses or CIDR blocks are refused (set this or Allow).",
                    ),
                },
                oneOf=[{"required": ["allowlist"]}, {"required": ["denylist"]}],
            ),
        ),
        PluginDefinition(
            "consumer-restriction",
            "Let only the named consumers, or consumers with one of the labels, call; others are "
            "refused (403 by default), and so are requests without an authenticated consumer.",
            _AUTH_SCOPES,
            _schema(
                {
                    "consumers": _field(
                        {"type": "array", "items": _USERNAME, "uniqueItems": True, "maxItems": 1000},
                        "Consumers",
                        "Usernames of the consumers let through (give consumers, labels or both).",
                    ),
                    "labels": _field(
                        {
                            "type": "object",
                            "propertyNames": {"type": "string", "maxLength": 63},
                            "additionalProperties": {"type": "string", "maxLength": 253},
                            "maxProperties": 50,
                        },
                        "Labels",
                        "Consumers with any one of these label values are let through.",
                    ),
                    "rejected_code": _field(
                        {"type": "integer", "minimum": 400, "maximum": 599, "default": 403},
                        "Status when refused",
                        "The HTTP status answered to a request whose consumer is not let through.",
                    ),
                },
                # At least one non-empty: with neither, nobody could call (an empty one may come
                # with the other, as a form sends a field left empty).
                anyOf=[
                    {"required": ["consumers"], "properties": {"consumers": {"minItems": 1}}},
                    {"required": ["labels"], "properties": {"labels": {"minProperties": 1}}},
                ],
            ),
            requirement="give consumers or labels (or both); with neither, nobody could call.",
        ),
        PluginDefinition(
            "cors",
            "Cross-origin resource sharing, preflight answered at the gateway.",
            ("global", "service", "route"),
            _schema(
                {
                    "allow_origins": _field(
                        {
                            "type": "array",
                            "items": {"type": "string", "maxLength": 500},
                            "minItems": 1,
                        },
                        "Allowed origins",
                        "Exact origins such as https://app.example.com, or * for any.",
                    ),
                    "allow_methods": _field(
                        _METHODS,
                        "Allowed methods",
                        "None chosen: GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS.",
                    ),
                    "allow_headers": _field(
                        {"type": "array", "items": _HEADER_NAME},
                        "Allowed headers",
                        "None: the headers the preflight asks for.",
                    ),
                    "expose_headers": _field(
                        {"type": "array", "items": _HEADER_NAME},
                        "Exposed headers",
                        "Response headers the browser may show to scripts.",
                    ),
                    "max_age": _field(
                        {"type": "integer", "minimum": 0, "maximum": 86400, "default": 5},
                        "Max age (seconds)",
                        "How long a browser may cache a preflight answer.",
                    ),
                    "allow_credentials": _field(
                        {"type": "boolean", "default": False},
                        "Allow credentials",
                        "Let browsers send cookies and authorization with cross-origin requests.",
                    ),
                },
                ["allow_origins"],
            ),
        ),
        PluginDefinition(
            "proxy-rewrite",
            "Rewrite the path, host and headers sent upstream.",
            ("global", "service", "route"),
            _schema(
                {
                    "uri": _field(
                        {"type": "string", "pattern": "^/", "maxLength": 4096},
                        "Path",
                        "The path (and query) sent upstream instead of the client's.",
                    ),
                    "host": _field(
                        {"type": "string", "minLength": 1, "maxLength": 253},
                        "Host",
                        "The Host header sent upstream.",
                    ),
                    "headers": _field(
                        _HEADER_OPERATIONS, "Request headers", "Headers changed on the way upstream."
                    ),
                }
            ),
        ),
        PluginDefinition(
            "response-rewrite",
            "Set, add or remove response headers; optionally override the status code.",
            _ALL,
            _schema(
                {
                    "status_code": _field(
                        {"type": "integer", "minimum": 200, "maximum": 599},
                        "Status code",
                        "Answer with this status instead of the upstream's.",
                    ),
                    "headers": _field(
                        _HEADER_OPERATIONS, "Response headers", "Headers changed on the way back."
                    ),
                }
            ),
        ),
        PluginDefinition(
            "traffic-split",
            "Weighted split between upstreams, and rules sending matching requests to an upstream.",
            ("service", "route"),
            _schema(
                {
                    "weighted_upstreams": _field(
                        {
                            "type": "array",
                            "minItems": 1,
                            "items": _schema(
                                {
                                    "upstream": _field(
                                        {"type": "string", "minLength": 1}, "Upstream", "An upstream's name."
                                    ),
                                    "weight": _field(
                                        {"type": "integer", "minimum": 0, "maximum": 100},
                                        "Weight",
                                        "Its share of the requests, against the others' weights.",
                                    ),
                                },
                                ["upstream", "weight"],
                            ),
                        },
                        "Weighted upstreams",
                        "Requests no rule matched are shared between these upstreams by weight.",
                    ),
                    "rules": _field(
                        {
                            "type": "array",
                            "items": _schema(
                                {
                                    "match": _field(
                                        _schema(
                                            {
                                                "header": _field(
                                                    _HEADER_MAP, "Headers", "Header name and exact value."
                                                ),
                                                "query": _field(
                                                    {
                                                        "type": "object",
                                                        "propertyNames": _PARAMETER_NAME,
                                                        "additionalProperties": _HEADER_VALUE,
                                                    },
                                                    "Query arguments",
                                                    "Argument name and exact value.",
                                                ),
                                                "cookie": _field(
                                                    {
                                                        "type": "object",
                                                        "propertyNames": _PARAMETER_NAME,
                                                        "additionalProperties": _HEADER_VALUE,
                                                    },
                                                    "Cookies",
                                                    "Cookie name and exact value.",
                                                ),
                                            }
                                        ),
                                        "Match",
                                        f"Every condition must hold (at most {MAX_SPLIT_CONDITIONS} in all).",
                                    ),
                                    "upstream": _field(
                                        {"type": "string", "minLength": 1},
                                        "Upstream",
                                        "Where matching requests go: an upstream's name.",
                                    ),
                                },
                                ["match", "upstream"],
                            ),
                        },
                        "Rules",
                        "Requests matching a rule go to its upstream; the first matching rule wins.",
                    ),
                }
            ),
        ),
        PluginDefinition(
            "request-size-limit",
            "Refuse request bodies larger than a maximum size with 413.",
            _ALL,
            _schema(
                {
                    "max_body_bytes": _field(
                        {"type": "integer", "minimum": 1, "maximum": 10**10},
                        "Maximum body size (bytes)",
                        "Larger request bodies are refused with 413.",
                    )
                },
                ["max_body_bytes"],
            ),
        ),
        PluginDefinition(
            "redirect",
            "Redirect to a URI or to HTTPS.",
            ("global", "service", "route"),
            _schema(
                {
                    "uri": _field(
                        {"type": "string", "minLength": 1, "maxLength": 4096},
                        "Redirect to",
                        "The address clients are sent to (set this or Redirect HTTP to HTTPS).",
                    ),
                    "http_to_https": _field(
                        {"type": "boolean"},
                        "Redirect HTTP to HTTPS",
                        "Send plain-HTTP requests to the same address over HTTPS.",
                    ),
                    "status_code": _field(
                        {"enum": [301, 302, 307, 308], "default": 302},
                        "Status code",
                        "301 and 308 are permanent, 302 and 307 temporary.",
                    ),
                },
                oneOf=[{"required": ["uri"]}, {"required": ["http_to_https"]}],
            ),
        ),
        PluginDefinition(
            "mocking",
            "Answer with a fixed status, headers and body, without calling the upstream.",
            ("service", "route"),
            _schema(
                {
                    # HAProxy answers with 200 to 599 itself (`http-request return`).
                    "status_code": _field(
                        {"type": "integer", "minimum": 200, "maximum": 599, "default": 200},
                        "Status code",
                        "The status of the mocked answer.",
                    ),
                    "content_type": _field(
                        {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 200,
                            "default": "application/json",
                        },
                        "Content type",
                        "The answer's Content-Type header.",
                    ),
                    "headers": _field(
                        {**_HEADER_MAP, "maxProperties": MAX_MOCK_HEADERS},
                        "Headers",
                        f"Other headers of the answer (at most {MAX_MOCK_HEADERS}).",
                    ),
                    "body": _field(
                        {"type": "string", "maxLength": 65536, "default": ""},
                        "Body",
                        "The answer's body, as sent.",
                    ),
                }
            ),
        ),
    ]
}


def _control_characters(value: Any) -> bool:
    if isinstance(value, str):
        return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    if isinstance(value, dict):
        return any(_control_characters(k) or _control_characters(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_control_characters(v) for v in value)
    return False


def _ip_restriction_errors(config: dict[str, Any]) -> list[str]:
    messages = []
    for field in ("allowlist", "denylist"):
        for index, entry in enumerate(config.get(field, [])):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                messages.append(f"{field}/{index}: {entry!r} is not an IP address or CIDR block.")
    return messages


def _traffic_split_errors(config: dict[str, Any]) -> list[str]:
    messages = []
    for index, rule in enumerate(config.get("rules", [])):
        match = rule["match"]
        if sum(len(match.get(kind, {})) for kind in ("header", "query", "cookie")) > MAX_SPLIT_CONDITIONS:
            messages.append(
                f"rules/{index}/match: at most {MAX_SPLIT_CONDITIONS} conditions (headers, query "
                "arguments and cookies together) a rule."
            )
        for kind in ("header", "query", "cookie"):
            for key, value in match.get(kind, {}).items():
                if value == "}":  # HAProxy would read it as the end of the condition
                    messages.append(f"rules/{index}/match/{kind}/{key}: '}}' alone cannot be matched.")
    return messages


def _mocking_errors(config: dict[str, Any]) -> list[str]:
    status = config.get("status_code", 200)
    if status in (204, 304) and config.get("body"):
        return [f"body: a {status} answer has no body."]
    return []


# Checks beyond the schema, run once it holds: what HAProxy would refuse in a valid-looking config.
_CHECKS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "ip-restriction": _ip_restriction_errors,
    "traffic-split": _traffic_split_errors,
    "mocking": _mocking_errors,
}


def plugin_config_errors(name: str, config: Any, scope: str) -> list[str]:
    """Messages for a plugin config that is not acceptable at `scope`; empty when it is."""
    definition = PLUGINS.get(name)
    if definition is None:
        return [f"Unknown plugin {name!r}. Known plugins: {', '.join(sorted(PLUGINS))}."]
    if scope not in definition.scopes:
        return [
            f"{name} cannot be attached to a {scope}; it can be attached to: {', '.join(definition.scopes)}."
        ]
    if _control_characters(config):
        # Configs end up in the gateway's configuration file, where a newline starts a directive.
        return [f"{name}: control characters (newlines, tabs...) are not allowed in plugin settings."]
    messages = []
    for error in sorted(definition.validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path)
        if not where and error.validator in ("anyOf", "oneOf") and definition.requirement:
            messages.append(f"{name}: {definition.requirement}")
            continue
        messages.append(f"{name}{'.' + where if where else ''}: {error.message}")
    if not messages and name in _CHECKS:
        messages = [f"{name}.{message}" for message in _CHECKS[name](config)]
    return messages


# Settings a plugin configuration takes when it is written (created, or changed) without them,
# where the gateway's own default for a configuration stored before the setting existed is the
# old behaviour: jwt-auth requires `exp` in new configurations, and existing routes keep
# accepting the tokens they accepted until someone edits their jwt-auth settings.
NEW_CONFIGURATION_DEFAULTS: dict[str, dict[str, Any]] = {"jwt-auth": {"claims_to_verify": ["exp"]}}


def with_new_config_defaults(
    plugins: dict[str, Any], previous: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`plugins` with NEW_CONFIGURATION_DEFAULTS filled into each configuration that is new or
    changed since `previous` (an unchanged one is left as stored)."""
    result = dict(plugins)
    for name, defaults in NEW_CONFIGURATION_DEFAULTS.items():
        config = result.get(name)
        if isinstance(config, dict) and (previous or {}).get(name) != config:
            result[name] = {**defaults, **config}
    return result
