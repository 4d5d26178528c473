"""What people do in the single sign-on tests, through the API and at the provider: an owner
sets SSO up; a person types their email, signs in at the provider (its login form, driven over
HTTP as a browser would), and comes back with the answer."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from rest_framework.test import APIClient

from sso.services import callback_url
from tenants.models import AuditEntry, Organization
from tests.oidc_provider import OidcProvider


def sso_settings(provider: OidcProvider, **changes: Any) -> dict[str, Any]:
    """A complete configuration for `provider`: acme.test people join as viewers."""
    return {
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret": provider.client_secret,
        "allowed_domains": ["acme.test"],
        "default_role": "viewer",
        "role_claim": "groups",
        "role_mapping": [
            {"value": "platform-admins", "role": "admin"},
            {"value": "engineers", "role": "developer"},
        ],
        "sso_only": False,
        **changes,
    }


def configure(owner: APIClient, organization: Organization, body: dict[str, Any]) -> Any:
    return owner.put(f"/api/v1/orgs/{organization.slug}/sso/", body, format="json")


def start(browser: APIClient, email: str) -> str:
    answer = browser.post("/api/v1/auth/sso/start/", {"email": email}, format="json")
    assert answer.status_code == 200, answer.content
    return answer.json()["redirect_url"]


def sign_in_at_provider(authorization_url: str, login: str) -> dict[str, str]:
    """Follow the provider's sign-in as a browser would, typing `login` in its form: the query it
    sends the browser back to the console's sign-in page with (code, state, iss)."""
    with httpx.Client(follow_redirects=False, timeout=10) as at_provider:
        answer = at_provider.get(authorization_url)
        while True:
            if answer.status_code in (302, 303):
                location = urljoin(str(answer.url), answer.headers["location"])
                if location.startswith(callback_url()):
                    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
                answer = at_provider.get(location)
                continue
            assert answer.status_code == 200, answer.text
            form = re.search(r'<form[^>]*action="([^"]+)"', answer.text)
            assert form and 'name="login"' in answer.text, answer.text
            answer = at_provider.post(
                urljoin(str(answer.url), form.group(1)),
                data={"prompt": "login", "login": login, "password": "anything"},
            )


def come_back(browser: APIClient, answer: dict[str, str]) -> Any:
    """The console's sign-in page hands the provider's answer to the API."""
    body = {key: answer[key] for key in ("state", "code", "error", "iss") if key in answer}
    return browser.post("/api/v1/auth/sso/callback/", body, format="json")


def sign_in_with_sso(browser: APIClient, email: str, login: str) -> Any:
    return come_back(browser, sign_in_at_provider(start(browser, email), login))


def last_audit(organization: Organization, action: str) -> AuditEntry:
    entry = AuditEntry.objects.filter(organization=organization, action=action).order_by("-id").first()
    assert entry is not None, f"no {action} in the audit log"
    return entry
