"""Switching the database connection between the public schema and an organization's schema.

django-tenants adds these methods to the connection at run time; this is the one typed place
that calls them."""

from typing import Any, cast

from django.db import connection

from .models import Organization


def current_schema_name() -> str:
    return str(cast(Any, connection).schema_name)


def activate_public_schema() -> None:
    cast(Any, connection).set_schema_to_public()


def activate_organization_schema(organization: Organization) -> None:
    cast(Any, connection).set_tenant(organization)
