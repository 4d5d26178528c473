"""Migration operations for metering's tables in the public schema.

Metering is a tenant app: django-tenants' router lets its operations run in each organization's
schema and skips them in public. The intake queue, its dead letters and the hourly calls are the
other way round, one table for every organization, so their operations run in the public schema
alone and nowhere else (not in the template schema new organizations are copied from)."""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django_tenants.utils import get_public_schema_name


def in_public_schema(schema_editor: Any) -> bool:
    return getattr(schema_editor.connection, "schema_name", None) == get_public_schema_name()


class CreateModelInPublicSchema(migrations.CreateModel):
    """CreateModel whose table is made in the public schema only, whatever the router says."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if in_public_schema(schema_editor):
            schema_editor.create_model(to_state.apps.get_model(app_label, self.name))

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if in_public_schema(schema_editor):
            schema_editor.delete_model(from_state.apps.get_model(app_label, self.name))

    def describe(self) -> str:
        return f"Create model {self.name} (public schema only)"


class RunPythonInPublicSchema(migrations.RunPython):
    """RunPython run in the public schema only (the router would skip a tenant app's there)."""

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if in_public_schema(schema_editor):
            self.code(from_state.apps, schema_editor)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if in_public_schema(schema_editor) and self.reverse_code is not None:
            self.reverse_code(from_state.apps, schema_editor)
