"""The invitation email goes through a real Celery worker and Redis broker, as a tenant-aware
task that carries the organization's schema and takes an id."""

import re
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.db import connection

from core.celery import app
from tenants.models import Invitation
from tenants.roles import Role
from tenants.tasks import send_invitation_email
from tests.factories import client_for, make_org, make_user


@pytest.mark.django_db(transaction=True)
def test_invitation_email_sent_by_a_real_worker_in_the_orgs_schema(monkeypatch):
    seen_schemas: list[str] = []
    original = send_invitation_email.run

    def spy(invitation_id: int) -> None:
        seen_schemas.append(connection.schema_name)
        original(invitation_id)

    monkeypatch.setattr(send_invitation_email, "run", spy)
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            owner = make_user()
            org = make_org(owner)
            response = client_for(owner).post(
                f"/api/v1/orgs/{org.slug}/invitations/",
                {"email": "queued@example.com", "role": Role.VIEWER},
                format="json",
            )
            assert response.status_code == 201
            deadline = time.monotonic() + 20
            while not mail.outbox and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        app.conf.task_always_eager = True
    [message] = mail.outbox
    assert message.to == ["queued@example.com"]
    assert seen_schemas == [org.schema_name]
    secret = re.search(r"/invitations/(\S+)", message.body).group(1)
    from tenants.credentials import hash_secret

    assert Invitation.objects.get(email="queued@example.com").token_hash == hash_secret(secret)
