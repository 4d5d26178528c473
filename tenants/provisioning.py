"""Creating an organization's PostgreSQL schema at a cost that does not grow with the number of
organizations.

The template schema (TENANT_BASE_SCHEMA) is a hidden Organization row, so `migrate_schemas` keeps
it current like any tenant. Its DDL and rows (django_migrations among them) are read once with
`pg_dump` into a blueprint; provisioning runs the blueprint with the new schema's name, inside
the signup's transaction. No migration runs, and no catalog-wide query either.

Why not django-tenants' own cloning: its `clone_schema` SQL function inspects the catalog with
queries whose cost grows with every schema in the database (measured 47 ms with 1 organization,
91 ms with 200), and django-tenants re-creates that 4,600-line function before each clone,
which in a long-lived connection leaves another compiled copy in the backend's memory (our test
suite's provisioning slowed from 0.1 s to several seconds). `make bench-provision` measures it."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import threading
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import schema_exists

from core.postgres_binaries import postgres_bin_dir

from .models import Organization
from .schemas import activate_public_schema

TEMPLATE_SLUG = "_template"
# Statements of a plain pg_dump that change the session (search_path, timeouts) or are psql
# meta-commands; the blueprint leaves them out, since every name in it is schema-qualified.
_SESSION_LINE = re.compile(r"^(--|\\|SET |SELECT pg_catalog\.set_config)")


def new_schema_name() -> str:
    # Independent of the slug, so renaming an organization never touches its schema.
    return f"org_{secrets.token_hex(8)}"


@dataclass(frozen=True)
class SchemaBlueprint:
    template_version: tuple[int, int]
    sql: str

    def for_schema(self, schema_name: str) -> str:
        return re.sub(rf"\b{re.escape(settings.TENANT_BASE_SCHEMA)}\b", schema_name, self.sql)


_blueprint: SchemaBlueprint | None = None
_blueprint_lock = threading.Lock()


def _template_version() -> tuple[int, int]:
    """Changes whenever a migration is applied to the template."""
    table = f'"{settings.TENANT_BASE_SCHEMA}".django_migrations'  # our setting, not user input
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), coalesce(max(id), 0) FROM {table}")  # noqa: S608
        count, last = cursor.fetchone()
    return int(count), int(last)


def _dump_template() -> str:
    database = settings.DATABASES["default"]
    env = {**os.environ, "PGPASSWORD": str(database.get("PASSWORD") or "")}
    sslmode = getattr(database.get("OPTIONS"), "get", lambda key: None)("sslmode")
    if sslmode:
        env["PGSSLMODE"] = str(sslmode)
    command = [
        str(postgres_bin_dir() / "pg_dump"),
        "--schema",
        settings.TENANT_BASE_SCHEMA,
        "--no-owner",
        "--no-privileges",
        "--inserts",
        "--rows-per-insert=1000",
        "--dbname",
        str(database["NAME"]),
    ]
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if database.get(key):
            command += [flag, str(database[key])]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return "\n".join(line for line in output.splitlines() if line.strip() and not _SESSION_LINE.match(line))


def schema_blueprint() -> SchemaBlueprint:
    global _blueprint
    version = _template_version()
    with _blueprint_lock:
        if _blueprint is None or _blueprint.template_version != version:
            _blueprint = SchemaBlueprint(template_version=version, sql=_dump_template())
        return _blueprint


def ensure_template_schema() -> Organization:
    """Create the template organization and its schema (by running the migrations) once.
    Run after every `migrate_schemas` (`make run` does)."""
    activate_public_schema()
    template, _ = Organization.objects.get_or_create(
        schema_name=settings.TENANT_BASE_SCHEMA,
        defaults={"name": "Template", "slug": TEMPLATE_SLUG, "is_template": True},
    )
    if not schema_exists(template.schema_name):
        # The template cannot be cloned from itself: django-tenants migrates it.
        template.create_schema(check_if_exists=True, verbosity=0)
    return template


@transaction.atomic
def create_organization_schema(*, name: str, slug: str) -> Organization:
    """Insert the organization and create its schema in one transaction: a failure leaves
    neither the row nor the schema behind."""
    activate_public_schema()
    organization = Organization(schema_name=new_schema_name(), name=name, slug=slug)
    organization.save()
    if not schema_exists(settings.TENANT_BASE_SCHEMA):
        # No template yet (a database migrated without ensure_template_schema): migrate instead.
        organization.create_schema(check_if_exists=False, verbosity=0)
        return organization
    with connection.cursor() as cursor:
        cursor.execute(schema_blueprint().for_schema(organization.schema_name))
    activate_public_schema()
    return organization
