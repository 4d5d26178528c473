"""An existing database upgrades: an organization whose schema is as the previous release left it
(the catalog before revisions) keeps its routes through `migrate_schemas`, and every app moved in
the tree (billing to the top level) keeps its migration history, so nothing is re-applied."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django_tenants.utils import schema_context

from tests.factories import make_org_with_cluster

BEFORE_REVISIONS = ("catalog", "0002_hmac_auth_credentials")


@pytest.mark.django_db(transaction=True)
def test_an_organization_from_the_previous_release_migrates_with_its_catalog():
    from saas.catalog import services as catalog
    from saas.catalog.models import Route

    org, author, cluster = make_org_with_cluster()
    with schema_context(org.schema_name):
        catalog.save_upstream(author, cluster, {"name": "u", "targets": [{"host": "10.0.0.1", "port": 80}]})
        catalog.save_service(author, cluster, {"name": "s", "upstream": "u"})
        catalog.save_route(author, cluster, {"name": "r", "service": "s", "paths": [{"value": "/r"}]})
        # The schema as the previous release had it: the catalog's revision columns not there yet.
        MigrationExecutor(connection).migrate([BEFORE_REVISIONS])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'catalog_route' AND column_name = 'revision'",
                [org.schema_name],
            )
            assert cursor.fetchone()[0] == 0

    call_command("migrate_schemas", interactive=False, verbosity=0)
    connection.close()

    with schema_context(org.schema_name):
        route = Route.objects.get(name="r")
        assert (route.paths, route.service.name, route.revision, route.updated_by) == (
            [{"type": "prefix", "value": "/r"}],
            "s",
            1,
            "",
        )
        # Nothing left to apply in the organization's schema.
        executor = MigrationExecutor(connection)
        assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    # Billing (shared, in the public schema) keeps its history under its label: its first
    # migration stays applied, not offered again.
    connection.set_schema_to_public()
    assert ("billing", "0001_initial") in MigrationRecorder(connection).applied_migrations()
