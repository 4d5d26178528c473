"""Connections verified before verification moved into a task keep their state: the migration
gives each the status the API now answers with; the next one encrypts their ExternalIds."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django_tenants.utils import schema_context

from saas.deployments.models import AwsConnection
from tests.factories import make_org_with_cluster

BEFORE = ("deployments", "0004_deployment_image")


@pytest.mark.django_db(transaction=True)
def test_connections_verified_in_a_request_before_are_verified_or_failed_after() -> None:
    org, _, _ = make_org_with_cluster()
    with schema_context(org.schema_name):
        MigrationExecutor(connection).migrate([BEFORE])
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO deployments_awsconnection"
                " (external_id, role_arn, account_id, verified_at, last_error, created_at) VALUES"
                " ('gwc-verified', 'arn:aws:iam::123456789012:role/r', '123456789012', now(), '', now()),"
                " ('gwc-refused', '', '', NULL, 'AccessDenied', now()),"
                " ('gwc-new', '', '', NULL, '', now())"
            )
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # through 0005_verification_in_tasks
        states = {
            c.external_id: (c.status, c.requested_role_arn, c.message) for c in AwsConnection.objects.all()
        }
        stored = list(AwsConnection.objects.values_list("external_id_ciphertext", flat=True))
    # 0006: the ExternalIds are encrypted in place, none left in clear.
    assert stored and not any(text.startswith("gwc-") for text in stored)
    assert states == {
        "gwc-verified": ("verified", "arn:aws:iam::123456789012:role/r", ""),
        "gwc-refused": ("failed", "", "AccessDenied"),
        "gwc-new": ("not_connected", "", ""),
    }
