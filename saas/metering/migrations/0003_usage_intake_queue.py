"""The intake queue and its dead letters, in the public schema only.

Metering is a tenant app: django-tenants' router lets its operations run in each organization's
schema and skips them in public. These two tables are the other way round, one for every
organization, so their creation runs in the public schema alone and nowhere else (not in the
template schema new organizations are copied from)."""

from typing import Any

from django.db import migrations, models
from django.db.models.functions import Now
from django_tenants.utils import get_public_schema_name


class CreateModelInPublicSchema(migrations.CreateModel):
    """CreateModel whose table is made in the public schema only, whatever the router says."""

    def _in_public(self, schema_editor: Any) -> bool:
        return getattr(schema_editor.connection, "schema_name", None) == get_public_schema_name()

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if self._in_public(schema_editor):
            schema_editor.create_model(to_state.apps.get_model(app_label, self.name))

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if self._in_public(schema_editor):
            schema_editor.delete_model(from_state.apps.get_model(app_label, self.name))

    def describe(self) -> str:
        return f"Create model {self.name} (public schema only)"


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0002_rollup_latency"),
    ]

    operations = [
        CreateModelInPublicSchema(
            name="UsageIntake",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("schema_name", models.CharField(max_length=63)),
                ("cluster_id", models.BigIntegerField()),
                ("batch", models.TextField()),
                ("received_at", models.DateTimeField(db_default=Now())),
            ],
        ),
        CreateModelInPublicSchema(
            name="UsageDeadLetter",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("schema_name", models.CharField(max_length=63)),
                ("cluster_id", models.BigIntegerField()),
                ("batch", models.TextField()),
                ("reason", models.TextField()),
                ("received_at", models.DateTimeField()),
                ("failed_at", models.DateTimeField(db_default=Now())),
            ],
        ),
    ]
