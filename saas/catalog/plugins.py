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
    "properties": {
        "set": _HEADER_MAP,
        "add": _HEADER_MAP,
        "remove": {"type": "array", "items": _HEADER_NAME},
    },
    "additionalProperties": False,
}
# A query parameter or cookie name: it is matched and rewritten inside HAProxy expressions.
_PARAMETER_NAME = {"type": "string", "pattern": "^[A-Za-z0-9_.~-]{1,100}$"}
_METHODS = {
    "type": "array",
    "items": {"enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE"]},
    "uniqueItems": True,
}
_LIMIT_KEY = {"enum": ["consumer", "route", "client_ip"], "default": "client_ip"}
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
                    "header": {**_HEADER_NAME, "default": "apikey"},
                    "query": {**_PARAMETER_NAME, "default": "apikey"},
                    "hide_credentials": {"type": "boolean", "default": False},
                }
            ),
        ),
        PluginDefinition(
            "jwt-auth",
            "Authenticate consumers by a signed JWT; the consumer is found by its `key` claim.",
            _AUTH_SCOPES,
            _schema(
                {
                    "header": {**_HEADER_NAME, "default": "Authorization"},
                    "query": {**_PARAMETER_NAME, "default": "jwt"},
                    "cookie": {**_PARAMETER_NAME, "default": "jwt"},
                    # Leeway for exp and nbf (and maximum_expiration): APISIX's lifetime_grace_period.
                    "clock_skew_s": {"type": "integer", "minimum": 0, "maximum": 3600, "default": 0},
                    # Kong's options. The claims that must be present: `exp` unless said otherwise,
                    # also for a config stored before the option existed.
                    "claims_to_verify": {
                        "type": "array",
                        "items": {"enum": ["exp", "nbf"]},
                        "uniqueItems": True,
                        "default": ["exp"],
                    },
                    # At most this many seconds between now and exp (0: no limit); requires exp.
                    "maximum_expiration": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 31536000,
                        "default": 0,
                    },
                    "hide_credentials": {"type": "boolean", "default": False},
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
                    "allowed_algorithms": {
                        "type": "array",
                        "items": {"enum": ["hmac-sha1", "hmac-sha256", "hmac-sha512"]},
                        "minItems": 1,
                        "uniqueItems": True,
                        "default": ["hmac-sha1", "hmac-sha256", "hmac-sha512"],
                    },
                    "clock_skew_s": {"type": "integer", "minimum": 1, "maximum": 86400, "default": 300},
                    "signed_headers": {"type": "array", "items": _HEADER_NAME, "uniqueItems": True},
                    "hide_credentials": {"type": "boolean", "default": False},
                }
            ),
        ),
        PluginDefinition(
            "basic-auth",
            "Authenticate consumers by HTTP Basic username and password.",
            _AUTH_SCOPES,
            _schema({"hide_credentials": {"type": "boolean", "default": False}}),
        ),
        PluginDefinition(
            "limit-count",
            "At most `count` requests per `time_window` seconds per key; 429 beyond.",
            _ALL,
            _schema(
                {
                    "count": {"type": "integer", "minimum": 1, "maximum": 10**9},
                    "time_window": {"type": "integer", "enum": [1, 60, 3600, 86400]},
                    "key": _LIMIT_KEY,
                    "rejected_code": {"type": "integer", "minimum": 400, "maximum": 599, "default": 429},
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
                    "rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 10**6},
                    "burst": {"type": "integer", "minimum": 0, "maximum": 10**6},
                    "key": _LIMIT_KEY,
                    "rejected_code": {"type": "integer", "minimum": 400, "maximum": 599, "default": 429},
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
                    "allowlist": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": 1000,
                    },
                    "denylist": {
                        "type": "array",
                        "items": {"type": "string"},
                        "minItems": 1,
                        "maxItems": 1000,
                    },
                },
                oneOf=[{"required": ["allowlist"]}, {"required": ["denylist"]}],
            ),
        ),
        PluginDefinition(
            "cors",
            "Cross-origin resource sharing, preflight answered at the gateway.",
            ("global", "service", "route"),
            _schema(
                {
                    "allow_origins": {
                        "type": "array",
                        "items": {"type": "string", "maxLength": 500},
                        "minItems": 1,
                    },
                    "allow_methods": _METHODS,
                    "allow_headers": {"type": "array", "items": _HEADER_NAME},
                    "expose_headers": {"type": "array", "items": _HEADER_NAME},
                    "max_age": {"type": "integer", "minimum": 0, "maximum": 86400, "default": 5},
                    "allow_credentials": {"type": "boolean", "default": False},
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
                    "uri": {"type": "string", "pattern": "^/", "maxLength": 4096},
                    "host": {"type": "string", "minLength": 1, "maxLength": 253},
                    "headers": _HEADER_OPERATIONS,
                }
            ),
        ),
        PluginDefinition(
            "response-rewrite",
            "Set, add or remove response headers; optionally override the status code.",
            _ALL,
            _schema(
                {
                    "status_code": {"type": "integer", "minimum": 200, "maximum": 599},
                    "headers": _HEADER_OPERATIONS,
                }
            ),
        ),
        PluginDefinition(
            "traffic-split",
            "Weighted split between upstreams, and rules sending matching requests to an upstream.",
            ("service", "route"),
            _schema(
                {
                    "weighted_upstreams": {
                        "type": "array",
                        "minItems": 1,
                        "items": _schema(
                            {
                                "upstream": {"type": "string", "minLength": 1},
                                "weight": {"type": "integer", "minimum": 0, "maximum": 100},
                            },
                            ["upstream", "weight"],
                        ),
                    },
                    "rules": {
                        "type": "array",
                        "items": _schema(
                            {
                                "match": _schema(
                                    {
                                        "header": _HEADER_MAP,
                                        "query": {
                                            "type": "object",
                                            "propertyNames": _PARAMETER_NAME,
                                            "additionalProperties": _HEADER_VALUE,
                                        },
                                        "cookie": {
                                            "type": "object",
                                            "propertyNames": _PARAMETER_NAME,
                                            "additionalProperties": _HEADER_VALUE,
                                        },
                                    }
                                ),
                                "upstream": {"type": "string", "minLength": 1},
                            },
                            ["match", "upstream"],
                        ),
                    },
                }
            ),
        ),
        PluginDefinition(
            "request-size-limit",
            "Refuse request bodies larger than `max_body_bytes` with 413.",
            _ALL,
            _schema(
                {"max_body_bytes": {"type": "integer", "minimum": 1, "maximum": 10**10}}, ["max_body_bytes"]
            ),
        ),
        PluginDefinition(
            "redirect",
            "Redirect to a URI or to HTTPS.",
            ("global", "service", "route"),
            _schema(
                {
                    "uri": {"type": "string", "minLength": 1, "maxLength": 4096},
                    "http_to_https": {"type": "boolean"},
                    "status_code": {"enum": [301, 302, 307, 308], "default": 302},
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
                    "status_code": {"type": "integer", "minimum": 200, "maximum": 599, "default": 200},
                    "content_type": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "default": "application/json",
                    },
                    "headers": {**_HEADER_MAP, "maxProperties": MAX_MOCK_HEADERS},
                    "body": {"type": "string", "maxLength": 65536, "default": ""},
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
