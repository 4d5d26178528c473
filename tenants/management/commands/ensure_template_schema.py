from typing import Any

from django.core.management.base import BaseCommand

from tenants.provisioning import ensure_template_schema


class Command(BaseCommand):
    help = "Create the template schema new organizations are cloned from (once; migrate keeps it current)."

    def handle(self, *args: Any, **options: Any) -> None:
        template = ensure_template_schema()
        self.stdout.write(f"Template schema {template.schema_name} is ready.")
