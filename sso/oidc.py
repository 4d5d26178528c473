"""The OpenID Connect relying party, on Authlib: discovery, the authorization code flow with PKCE
(S256), state and nonce, the code exchanged at the token endpoint, the ID token's signature checked
against the provider's published keys and its claims (iss, aud, azp, exp, iat, nonce, at_hash),
and the userinfo endpoint for the claims the ID token does not carry.

No business rules here (who may sign in, which role): services.py decides on the claims this
returns. Every failure is a ProviderError saying what went wrong, in words for the person signing
in or configuring."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.integrations.base_client import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.django_client import (  # type: ignore[import-untyped]
    DjangoIntegration,
    DjangoOAuth2App,
)
from django.conf import settings
from django.core.cache import cache
from joserfc import errors as jose_errors

logger = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
# How long a provider's discovery document is reused (its keys are fetched at every sign-in).
DISCOVERY_CACHE_SECONDS = 300
# Only signatures with the provider's public keys: never `none`, nor HMAC with the client secret.
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
    "Ed25519",
)
BASE_SCOPES = ("openid", "email", "profile")
_REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class ProviderError(Exception):
    """The provider cannot be used, or its answer is refused: the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Client:
    """This control plane as a client of one provider."""

    issuer: str
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what must come back with it (kept in the session)."""

    url: str
    state: str
    nonce: str
    code_verifier: str


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _internal_address(host: str) -> str | None:
    """An address of `host` that is not on the public internet (this machine, a private network,
    link-local such as a cloud's metadata service), or None when all are public."""
    try:
        found = socket.getaddrinfo(host.strip("[]"), 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise ProviderError(f"The provider's host {host} cannot be resolved: {exc}") from exc
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if not ip.is_global:
            return str(ip)
    return None


def check_url(url: str, what: str) -> None:
    """HTTPS to a public address, or (SSO_ALLOW_HTTP_ISSUER, tests and development) to any, and
    plain HTTP to this machine. The control plane fetches what an organization's owner names:
    an internal service must not be reachable that way."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        if not settings.SSO_ALLOW_HTTP_ISSUER and (internal := _internal_address(parts.hostname)):
            raise ProviderError(
                f"The provider's {what} must be on the public internet: {parts.hostname} is {internal}."
            )
        return
    if parts.scheme == "http" and parts.hostname:
        if settings.SSO_ALLOW_HTTP_ISSUER and _is_loopback(parts.hostname):
            return
        raise ProviderError(f"The provider's {what} must use HTTPS: {url}")
    raise ProviderError(f"The provider's {what} is not a web address: {url}")


def normalized_issuer(issuer: str) -> str:
    """The issuer as written, without a trailing slash (most providers publish it so), checked."""
    issuer = issuer.strip()
    check_url(issuer, "issuer URL")
    parts = urlsplit(issuer)
    if parts.query or parts.fragment:
        raise ProviderError("The issuer URL has no query or fragment.")
    return issuer.rstrip("/")


def _http() -> requests.Session:
    session = requests.Session()
    session.headers["Accept"] = "application/json"
    return session


def discover(issuer: str) -> dict[str, Any]:
    """The provider's discovery document, checked: it names the same issuer, and the endpoints a
    sign-in uses are there, over HTTPS."""
    key = "sso:discovery:" + hashlib.sha256(issuer.encode()).hexdigest()
    cached = cache.get(key)
    if isinstance(cached, dict):
        return cached
    url = issuer + DISCOVERY_PATH
    try:
        with _http() as http:
            answer = http.get(url, timeout=settings.SSO_PROVIDER_TIMEOUT)
        answer.raise_for_status()
        metadata = answer.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderError(f"Could not read the provider's discovery document at {url}: {exc}") from exc
    if not isinstance(metadata, dict):
        raise ProviderError(f"The provider's discovery document at {url} is not a JSON object.")
    missing = [name for name in _REQUIRED_METADATA if not isinstance(metadata.get(name), str)]
    if missing:
        raise ProviderError(f"The provider's discovery document at {url} lacks {', '.join(missing)}.")
    # OpenID Connect Discovery 4.3: the issuer in the document must be exactly the one asked.
    if metadata["issuer"].rstrip("/") != issuer:
        raise ProviderError(
            f"The provider's discovery document names the issuer {metadata['issuer']}, not {issuer}."
        )
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        if isinstance(metadata.get(name), str):
            check_url(metadata[name], name.replace("_", " "))
    cache.set(key, metadata, DISCOVERY_CACHE_SECONDS)
    return metadata


def scopes_for(metadata: dict[str, Any], role_claim: str) -> str:
    """openid, email and profile; and the role claim's name too when the provider offers a scope
    by that name (`groups` at many providers releases the groups claim)."""
    scopes = list(BASE_SCOPES)
    supported = metadata.get("scopes_supported")
    if role_claim and isinstance(supported, list) and role_claim in supported and role_claim not in scopes:
        scopes.append(role_claim)
    return " ".join(scopes)


def _app(client: Client, metadata: dict[str, Any], scope: str = "openid") -> DjangoOAuth2App:
    methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    # client_secret_basic unless the provider says it takes the secret only in the body.
    auth_method = (
        "client_secret_post"
        if "client_secret_basic" not in methods and "client_secret_post" in methods
        else "client_secret_basic"
    )
    app = DjangoOAuth2App(
        DjangoIntegration("sso"),
        client_id=client.client_id,
        client_secret=client.client_secret,
        client_kwargs={
            "scope": scope,
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": auth_method,
            "default_timeout": settings.SSO_PROVIDER_TIMEOUT,
        },
    )
    offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = [alg for alg in offered if alg in ASYMMETRIC_ALGORITHMS]
    if not algorithms:
        raise ProviderError(f"The provider signs ID tokens only with {', '.join(map(str, offered))}.")
    # Discovered once (above), not again by Authlib; only asymmetric signatures accepted.
    app.server_metadata = {**metadata, "id_token_signing_alg_values_supported": algorithms}
    return app


def authorization_request(
    client: Client, metadata: dict[str, Any], *, redirect_uri: str, scope: str, login_hint: str
) -> AuthorizationRequest:
    """A new authorization request: fresh state, nonce and PKCE code verifier."""
    app = _app(client, metadata, scope)
    found = app.create_authorization_url(redirect_uri, login_hint=login_hint)
    return AuthorizationRequest(
        url=found["url"], state=found["state"], nonce=found["nonce"], code_verifier=found["code_verifier"]
    )


def _refused(exc: jose_errors.JoseError) -> ProviderError:
    if isinstance(exc, jose_errors.ExpiredTokenError):
        reason = "it has expired"
    elif isinstance(exc, jose_errors.MissingClaimError):
        reason = f"it lacks the {exc.claim!r} claim"
    elif isinstance(exc, jose_errors.ClaimError):
        reason = f"its {exc.claim!r} claim is not the expected one"
    elif isinstance(exc, jose_errors.BadSignatureError | jose_errors.InvalidKeyIdError):
        reason = "its signature does not match the provider's keys"
    else:
        reason = f"it cannot be read ({exc.error})"
    return ProviderError(f"The ID token from the provider was refused: {reason}.")


def complete(
    client: Client,
    metadata: dict[str, Any],
    *,
    redirect_uri: str,
    code: str,
    code_verifier: str,
    nonce: str,
    needed_claims: tuple[str, ...],
) -> dict[str, Any]:
    """Exchange the code for tokens, verify the ID token, and return its claims, completed from
    the userinfo endpoint when one of `needed_claims` is not in the ID token."""
    app = _app(client, metadata)
    try:
        token = app.fetch_access_token(redirect_uri=redirect_uri, code=code, code_verifier=code_verifier)
    except OAuthError as exc:
        raise ProviderError(f"The provider refused the sign-in code: {exc.error}.") from exc
    except requests.RequestException as exc:
        raise ProviderError(f"Could not reach the provider's token endpoint: {exc}") from exc
    if not isinstance(token, dict) or "id_token" not in token:
        raise ProviderError("The provider's token endpoint gave no ID token.")
    options: dict[str, Any] = {
        "iss": {"essential": True, "values": [metadata["issuer"]]},
        "aud": {"essential": True, "values": [client.client_id]},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "nonce": {"essential": True, "values": [nonce]},
    }
    try:
        id_claims = app.parse_id_token(token, nonce=nonce, claims_options=options)
    except jose_errors.JoseError as exc:
        raise _refused(exc) from exc
    except (requests.RequestException, ValueError) as exc:
        raise ProviderError(f"Could not read the provider's keys: {exc}") from exc
    claims = dict(id_claims)
    if any(name not in claims for name in needed_claims) and metadata.get("userinfo_endpoint"):
        claims = {**_userinfo(app, token, claims["sub"]), **claims}
    return claims


def _userinfo(app: DjangoOAuth2App, token: dict[str, Any], subject: str) -> dict[str, Any]:
    try:
        info = dict(app.userinfo(token=token))
    except (OAuthError, requests.RequestException, ValueError) as exc:
        raise ProviderError(f"Could not read the provider's userinfo endpoint: {exc}") from exc
    # OpenID Connect Core 5.3.4: the answer is about the ID token's subject, or it is not used.
    if info.get("sub") != subject:
        raise ProviderError("The provider's userinfo answer is about someone else than its ID token.")
    return info
