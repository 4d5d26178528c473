"""`migrate_schemas` migrates every organization, also with the parallel executor."""

import pytest
from django.core.management import call_command
from django.db import connection

from tests.factories import make_org


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("executor", ["standard", "multiprocessing"])
def test_migrate_schemas_across_organizations(executor):
    orgs = [make_org() for _ in range(3)]
    with connection.cursor() as cursor:
        for org in orgs:
            cursor.execute(f'DELETE FROM "{org.schema_name}".django_migrations WHERE app = %s', ["sessions"])
    call_command("migrate_schemas", executor=executor, interactive=False, verbosity=0)
    connection.close()
    with connection.cursor() as cursor:
        for org in orgs:
            cursor.execute(
                f'SELECT count(*) FROM "{org.schema_name}".django_migrations WHERE app = %s', ["sessions"]
            )
            assert cursor.fetchone()[0] == 1  # re-recorded: the executor visited every schema
