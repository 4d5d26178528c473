"""The intake queue and its dead letters, in the public schema only.

Metering is a tenant app: django-tenants' router lets its operations run in each organization's
schema and skips them in public. These two tables are the other way round, one for every
organization, so their creation runs in the public schema alone and nowhere else (not in the
template schema new organizations are copied from)."""

from django.db import migrations, models
from django.db.models.functions import Now

from saas.metering.public_tables import CreateModelInPublicSchema


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
