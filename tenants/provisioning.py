"""Creating an organization's PostgreSQL schema.

New schemas are cloned from a template schema (django-tenants' TENANT_BASE_SCHEMA and its
`clone_schema` SQL function) with their migration records, so provisioning costs the same with 1
or 10,000 organizations and does not grow with the number of migrations. The template is a
hidden Organization row, so `migrate_schemas` keeps it current like any tenant.

django-tenants re-creates the 4,600-line `clone_schema` function before every clone; in a
long-lived connection each re-creation leaves another compiled copy in the backend's memory,
and provisioning slowed from 0.1 s to seconds within a few hundred signups. We install the
function once (with the template) and only call it."""

import secrets

from django.conf import settings
from django.db import connection, transaction
from django_tenants.clone import CloneSchema
from django_tenants.utils import schema_exists

from .models import Organization
from .schemas import activate_public_schema

TEMPLATE_SLUG = "_template"


def new_schema_name() -> str:
    # Independent of the slug, so renaming an organization never touches its schema.
    return f"org_{secrets.token_hex(8)}"


def _clone_function_installed() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_proc WHERE proname = 'clone_schema' LIMIT 1")
        return cursor.fetchone() is not None


def ensure_template_schema() -> Organization:
    """Create the template organization and its schema (by running the migrations) once, and
    install the clone function. Run after every `migrate_schemas` (`make run` does)."""
    activate_public_schema()
    template, _ = Organization.objects.get_or_create(
        schema_name=settings.TENANT_BASE_SCHEMA,
        defaults={"name": "Template", "slug": TEMPLATE_SLUG, "is_template": True},
    )
    if not schema_exists(template.schema_name):
        # The template cannot be cloned from itself: django-tenants migrates it.
        template.create_schema(check_if_exists=True, verbosity=0)
    CloneSchema()._create_clone_schema_function()
    return template


@transaction.atomic
def create_organization_schema(*, name: str, slug: str) -> Organization:
    """Insert the organization and create its schema in one transaction: a failure leaves
    neither the row nor the schema behind."""
    activate_public_schema()
    organization = Organization(schema_name=new_schema_name(), name=name, slug=slug)
    organization.save()
    template = settings.TENANT_BASE_SCHEMA
    if not schema_exists(template):
        # No template yet (a database migrated without ensure_template_schema): migrate instead.
        organization.create_schema(check_if_exists=False, verbosity=0)
        return organization
    if not _clone_function_installed():
        CloneSchema()._create_clone_schema_function()
    with connection.cursor() as cursor:
        # DATA mode copies the template's rows too, django_migrations among them, so the new
        # schema's migration state is already right.
        cursor.execute("SELECT clone_schema(%s, %s, 'DATA')", [template, organization.schema_name])
    activate_public_schema()
    return organization
