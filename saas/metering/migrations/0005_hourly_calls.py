"""Each organization's calls per hour, in the public schema only (see public_tables), filled
from the rollups every organization's schema holds already."""

from typing import Any

from django.db import migrations, models

from saas.metering.public_tables import CreateModelInPublicSchema, RunPythonInPublicSchema

# Schema names are the product's own (org_<hex>), quoted; the hour is the minute's, in UTC.
_FILL = """
INSERT INTO public.metering_hourlycalls (schema_name, hour, calls)
SELECT %s, date_trunc('hour', minute AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', sum(requests)
FROM "{schema}".metering_usagerollup
GROUP BY 2
ON CONFLICT (schema_name, hour) DO NOTHING
"""


def fill_from_rollups(apps: Any, schema_editor: Any) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT schema_name FROM public.tenants_organization WHERE NOT is_template"
            " AND to_regclass(quote_ident(schema_name) || '.metering_usagerollup') IS NOT NULL"
        )
        for (schema,) in cursor.fetchall():
            cursor.execute(_FILL.format(schema=schema.replace('"', '""')), [schema])


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0004_rollup_status_code"),
        ("tenants", "0001_initial"),
    ]

    operations = [
        CreateModelInPublicSchema(
            name="HourlyCalls",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("schema_name", models.CharField(max_length=63)),
                ("hour", models.DateTimeField()),
                ("calls", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("schema_name", "hour"), name="hourly_calls_key")
                ],
            },
        ),
        RunPythonInPublicSchema(fill_from_rollups, migrations.RunPython.noop),
    ]
