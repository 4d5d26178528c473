"""What a user may write into the catalog, validated once for the REST API and the declarative
YAML alike (both call the services, which parse with these models), so both refuse the same
things with the same messages. References between entities are by name."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from core.errors import InvalidInput
from core.specs import Spec, invalid_input_from, parse_spec
from gateway_agent import pcre

__all__ = ["Spec", "parse_spec"]

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}$")
_NAME = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE")


def check_regex(value: str) -> None:
    """A regex as the gateways compile an ACL's: HAProxy's PCRE2, without captures (see
    gateway_agent/pcre.py); Python's `re` takes many a pattern PCRE2 refuses, and the other way."""
    try:
        pcre.check(value)
    except pcre.RegexError as exc:
        raise ValueError(f"value: invalid regular expression: {exc}") from exc
    check_pattern(value)


def check_pattern(value: str) -> None:
    """A value HAProxy matches in a braced condition: a pattern `}` would end the condition."""
    if value == "}":
        raise ValueError("value: '}' alone cannot be matched (write \\} in a regex)")


def is_host(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return "%" not in value  # an IPv6 zone (fe80::1%eth0) names no interface of the gateway
    except ValueError:
        return bool(_HOSTNAME.match(value))


class TargetSpec(Spec):
    host: str = Field(max_length=253)
    port: int = Field(ge=1, le=65535)
    weight: int = Field(default=100, ge=0, le=256)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not is_host(value):
            raise ValueError("must be a host name or an IP address")
        return value


class TimeoutsSpec(Spec):
    connect_s: float = Field(default=5, gt=0, le=3600)
    send_s: float = Field(default=60, gt=0, le=3600)
    read_s: float = Field(default=60, gt=0, le=3600)


class ActiveHealthCheckSpec(Spec):
    path: str = Field(default="/", pattern=r"^/[^\s]*$", max_length=1000)
    interval_s: float = Field(default=5, gt=0, le=3600)
    healthy_threshold: int = Field(default=2, ge=1, le=100)
    unhealthy_threshold: int = Field(default=3, ge=1, le=100)


class PassiveHealthCheckSpec(Spec):
    max_fails: int = Field(default=3, ge=1, le=100)
    fail_timeout_s: float = Field(default=10, gt=0, le=3600)


class UpstreamSpec(Spec):
    name: _NAME
    targets: list[TargetSpec] = Field(min_length=1, max_length=1000)
    load_balancing: Literal["roundrobin", "leastconn", "hash_header", "hash_client_ip", "hash_uri"] = (
        "roundrobin"
    )
    hash_header: str | None = None
    scheme: Literal["http", "https"] = "http"
    tls_sni: str | None = None
    tls_verify: bool = False
    tls_ca_pem: str | None = Field(default=None, max_length=100_000)
    timeouts: TimeoutsSpec = TimeoutsSpec()
    retries: int = Field(default=1, ge=0, le=10)
    active_health_check: ActiveHealthCheckSpec | None = None
    passive_health_check: PassiveHealthCheckSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> UpstreamSpec:
        if self.load_balancing == "hash_header":
            if not self.hash_header or not _HEADER_NAME.match(self.hash_header):
                raise ValueError("hash_header: name the header to hash on when load_balancing is hash_header")
        elif self.hash_header:
            raise ValueError("hash_header: only used with load_balancing hash_header")
        if self.tls_sni is not None and not _HOSTNAME.match(self.tls_sni):
            raise ValueError("tls_sni: must be a host name")
        if self.scheme == "http" and (self.tls_sni or self.tls_verify or self.tls_ca_pem):
            raise ValueError("scheme: TLS settings need scheme https")
        if self.tls_ca_pem is not None and "-----BEGIN CERTIFICATE-----" not in self.tls_ca_pem:
            raise ValueError("tls_ca_pem: must be PEM certificates")
        return self


Plugins = dict[str, dict[str, Any]]


class ServiceSpec(Spec):
    name: _NAME
    description: str = Field(default="", max_length=500)
    upstream: _NAME
    plugins: Plugins = Field(default_factory=dict)


class PathSpec(Spec):
    type: Literal["prefix", "exact", "regex"] = "prefix"
    value: str = Field(min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f\x7f]+$")

    @model_validator(mode="after")
    def _valid(self) -> PathSpec:
        if self.type == "regex":
            check_regex(self.value)
        elif not self.value.startswith("/") or any(c.isspace() for c in self.value):
            raise ValueError("value: a path starts with / and has no spaces")
        return self


class HeaderSpec(Spec):
    name: str = Field(pattern=_HEADER_NAME.pattern)
    value: str = Field(min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f\x7f]+$")
    type: Literal["exact", "regex"] = "exact"

    @model_validator(mode="after")
    def _valid(self) -> HeaderSpec:
        if self.type == "regex":
            check_regex(self.value)
        else:
            check_pattern(self.value)
        return self


class RouteSpec(Spec):
    name: _NAME
    service: _NAME
    hosts: list[str] = Field(default_factory=list, max_length=100)
    paths: list[PathSpec] = Field(min_length=1, max_length=100)
    methods: list[Literal[HTTP_METHODS]] = Field(default_factory=list)  # type: ignore[valid-type]
    headers: list[HeaderSpec] = Field(default_factory=list, max_length=20)
    priority: int = Field(default=0, ge=-10000, le=10000)
    strip_path_prefix: str | None = Field(default=None, pattern=r"^/[^\s]*$", max_length=1000)
    plugins: Plugins = Field(default_factory=dict)

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            bare = host[2:] if host.startswith("*.") else host
            if not _HOSTNAME.match(bare):
                raise ValueError(f"{host!r} is not a host name (a leading *. wildcard is allowed)")
        return sorted({host.lower() for host in hosts})

    @field_validator("methods")
    @classmethod
    def _methods(cls, methods: list[str]) -> list[str]:
        return sorted(set(methods))


class ConsumerSpec(Spec):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")
    labels: dict[Annotated[str, Field(max_length=63)], Annotated[str, Field(max_length=253)]] = Field(
        default_factory=dict, max_length=50
    )
    plugins: Plugins = Field(default_factory=dict)


class KeyAuthSpec(Spec):
    type: Literal["key-auth"]
    key: str | None = Field(default=None, min_length=16, max_length=256, pattern=r"^[\x21-\x7e]+$")


class JwtAuthSpec(Spec):
    type: Literal["jwt-auth"]
    # Both end up in the gateway's configuration: printable, no spaces, the key not starting with #
    # (a comment in a map file), the secret without what delimits HAProxy converter arguments.
    key: str = Field(min_length=1, max_length=200, pattern=r"^[\x21\x22\x24-\x7e][\x21-\x7e]*$")
    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"] = "HS256"
    secret: str | None = Field(default=None, min_length=32, max_length=1024, pattern=r"^[^\s,()'\"\\]+$")
    public_key: str | None = Field(default=None, max_length=20_000)

    @model_validator(mode="after")
    def _key_material(self) -> JwtAuthSpec:
        if self.algorithm.startswith("HS"):
            if self.public_key is not None:
                raise ValueError("public_key: HS algorithms use a shared secret, not a public key")
        elif self.public_key is None:
            raise ValueError(f"public_key: {self.algorithm} needs the consumer's PEM public key")
        elif self.secret is not None:
            raise ValueError(f"secret: {self.algorithm} uses a public key, not a secret")
        return self


class BasicAuthSpec(Spec):
    type: Literal["basic-auth"]
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")
    password: str = Field(min_length=8, max_length=256)


class HmacAuthSpec(Spec):
    type: Literal["hmac-auth"]
    key_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._@+-]+$")
    secret: str | None = Field(default=None, min_length=32, max_length=1024, pattern=r"^[\x21-\x7e]+$")


CredentialSpec = Annotated[
    KeyAuthSpec | JwtAuthSpec | BasicAuthSpec | HmacAuthSpec, Field(discriminator="type")
]


class CredentialInput(BaseModel):
    credential: CredentialSpec


class CertificateSpec(Spec):
    name: _NAME
    certificate: str = Field(min_length=1, max_length=100_000)
    private_key: str = Field(min_length=1, max_length=100_000)


def parse_credential(data: Any) -> KeyAuthSpec | JwtAuthSpec | BasicAuthSpec | HmacAuthSpec:
    if not isinstance(data, dict):
        raise InvalidInput.field("non_field_errors", "Expected a JSON object.")
    try:
        return CredentialInput.model_validate({"credential": data}).credential
    except ValidationError as exc:
        raise invalid_input_from(exc, "", strip_first=True) from exc
