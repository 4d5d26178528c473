"""Facts about the caller of a request."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The caller's address. Behind SAAS_TRUSTED_PROXY_COUNT proxies, read it from the
    X-Forwarded-For entry that the outermost trusted proxy added; never trust more."""
    return forwarded_client_ip(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR", ""))


def forwarded_client_ip(remote_addr: str | None, forwarded_for: str) -> str | None:
    """client_ip from the peer's address and the X-Forwarded-For header, for endpoints served
    beside Django."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [part.strip() for part in forwarded_for.split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return remote_addr or None


def ip_address_or_none(address: str | None) -> str | None:
    """`address` normalized when it is an IP address (a forwarded header may hold anything)."""
    try:
        parsed = ipaddress.ip_address(address) if address else None
        return str(parsed) if parsed and "%" not in str(parsed) else None
    except ValueError:
        return None


def caller_address(peer: str | None, headers: dict[str, str]) -> str | None:
    """For an endpoint served beside Django: the caller's IP address from its peer's and the
    headers (lower-cased names), None when it is not one."""
    return ip_address_or_none(forwarded_client_ip(peer, headers.get("x-forwarded-for", "")))
