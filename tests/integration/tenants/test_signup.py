"""A newcomer signs up and gets an organization with its own PostgreSQL schema."""

import pytest
from django.db import connection
from django_tenants.utils import schema_exists

from tenants.models import AuditEntry, Membership, Organization


def test_signup_creates_user_org_and_schema_from_template(api, db, django_assert_max_num_queries):
    response = api.post(
        "/api/v1/auth/signup/",
        {
            "email": "Ada@Example.com",
            "password": "a long passphrase",
            "organization_name": "Analytical Engines",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"]["email"] == "ada@example.com"
    [org_out] = body["organizations"]
    assert org_out == {
        "id": org_out["id"],
        "name": "Analytical Engines",
        "slug": "analytical-engines",
        "role": "owner",
    }

    org = Organization.objects.get(slug="analytical-engines")
    assert org.schema_name.startswith("org_")
    assert schema_exists(org.schema_name)
    # Cloned from the template: its migration records were copied, not re-run.
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT count(*) FROM "{org.schema_name}".django_migrations')
        assert cursor.fetchone()[0] > 0
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", [org.schema_name]
        )
        template_tables = _table_count("tenant_template")
        assert cursor.fetchone()[0] == template_tables
    assert Membership.objects.get(organization=org).role == "owner"
    assert AuditEntry.objects.filter(organization=org, action="organization.create").count() == 1

    me = api.get("/api/v1/auth/me/")
    assert me.status_code == 200
    assert me.json()["organizations"][0]["slug"] == "analytical-engines"


def _table_count(schema: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", [schema])
        return int(cursor.fetchone()[0])


def test_provisioning_copies_the_template_and_runs_no_migration(db, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    from tests.factories import make_org

    def no_migrations(*args, **kwargs):
        raise AssertionError("provisioning must not run migrations")

    monkeypatch.setattr(MigrationExecutor, "migrate", no_migrations)
    org = make_org()
    assert _rows(org.schema_name, "django_migrations") == _rows("tenant_template", "django_migrations")
    assert _tables(org.schema_name) == _tables("tenant_template")


@pytest.mark.django_db(transaction=True)
def test_a_change_to_the_template_reaches_new_organizations():
    """What `migrate_schemas` applies to the template, every later organization gets."""
    from tests.factories import make_org

    make_org()  # a blueprint of the template as it is
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE tenant_template.clone_marker (id int)")
        cursor.execute("INSERT INTO tenant_template.clone_marker VALUES (42)")
        cursor.execute(
            "INSERT INTO tenant_template.django_migrations (app, name, applied) "
            "VALUES ('marker', '0001', now())"
        )
    try:
        org = make_org()
        assert _rows(org.schema_name, "clone_marker") == [(42,)]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE tenant_template.clone_marker")
            cursor.execute("DELETE FROM tenant_template.django_migrations WHERE app = 'marker'")


def _rows(schema: str, table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY 1')
        return [tuple(row) for row in cursor.fetchall()]


def _tables(schema: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", [schema]
        )
        return [row[0] for row in cursor.fetchall()]
