"""What a person does in the identity tests, through the API: sign in from a browser of their
own (an address and a User-Agent), read the links the emails carry."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.core import mail
from rest_framework.test import APIClient

from tenants.models import AuditEntry, Organization
from tests.factories import PASSWORD

CHROME_ON_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
FIREFOX_ON_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI_ON_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def browser(address: str = "10.0.0.1", user_agent: str = CHROME_ON_MAC) -> APIClient:
    return APIClient(REMOTE_ADDR=address, HTTP_USER_AGENT=user_agent)


def log_in(client: APIClient, email: str, password: str = PASSWORD) -> int:
    return client.post(
        "/api/v1/auth/login/", {"email": email, "password": password}, format="json"
    ).status_code


def signed_in(email: str, password: str = PASSWORD, **kwargs: str) -> APIClient:
    client = browser(**kwargs)
    assert log_in(client, email, password) == 200
    return client


def is_signed_in(client: APIClient) -> bool:
    return client.get("/api/v1/auth/me/").status_code == 200


def link_in_last_mail(to: str) -> str:
    message = mail.outbox[-1]
    assert message.to == [to], message.to
    found = re.search(r"https?://\S+/console/\S+", message.body)
    assert found, message.body
    return found.group(0)


def reset_parts(link: str) -> dict[str, str]:
    uid, token = link.rsplit("/", 2)[-2:]
    return {"uid": uid, "token": token}


def actions(organization: Organization, prefix: str = "") -> list[str]:
    """The audit log's actions, oldest first."""
    entries = AuditEntry.objects.filter(organization=organization, action__startswith=prefix)
    return list(entries.order_by("created_at", "id").values_list("action", flat=True))
