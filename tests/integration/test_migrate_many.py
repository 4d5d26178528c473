"""`migrate_schemas` migrates every organization, also with the parallel executor."""

import pytest
from django.core.management import call_command
from django.db import connection

from tenants.provisioning import ensure_template_schema
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


def _columns(schema: str, table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            [schema, table],
        )
        return {name for (name,) in cursor.fetchall()}


def _recorded(schema: str, app: str, name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT count(*) FROM "{schema}".django_migrations WHERE app = %s AND name = %s', [app, name]
        )
        return bool(cursor.fetchone()[0])


def _migrate(capsys, *args: str, **options) -> str:
    capsys.readouterr()
    call_command("migrate_schemas", *args, interactive=False, verbosity=1, **options)
    connection.close()
    return capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_the_template_executor_replays_the_templates_migration_in_every_schema_there_and_back(
    capsys, settings
):
    ensure_template_schema()  # its row is gone with an earlier test's flush
    schemas = [make_org().schema_name for _ in range(3)]
    every = [settings.TENANT_BASE_SCHEMA, *schemas]
    try:
        out = _migrate(capsys, "catalog", "0004", executor="template")
        assert "replayed in 3 schemas, migrated one by one in 0" in out, out
        for schema in every:
            assert "enabled" not in _columns(schema, "catalog_consumer"), schema
            assert not _recorded(schema, "catalog", "0005_consumer_enabled"), schema
        out = _migrate(capsys, executor="template")
        assert "replayed in 3 schemas, migrated one by one in 0" in out, out
        for schema in every:
            assert "enabled" in _columns(schema, "catalog_consumer"), schema
            assert _recorded(schema, "catalog", "0005_consumer_enabled"), schema
        # A schema that is not where the template was is migrated the standard way.
        _migrate(capsys, "catalog", "0004", executor="standard", schema_name=schemas[0])
        out = _migrate(capsys, executor="template")
        assert "replayed in 2 schemas, migrated one by one in 1" in out, out
        assert "enabled" in _columns(schemas[0], "catalog_consumer")
        assert _recorded(schemas[0], "catalog", "0005_consumer_enabled")
    finally:
        call_command("migrate_schemas", executor="standard", interactive=False, verbosity=0)
