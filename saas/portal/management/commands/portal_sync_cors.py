"""Bring the cors of every route a portal product covers up to date, in every organization: after
an upgrade from a version whose portal wrote none (the reference's try-it panel could not call
the gateway), or after SAAS_PUBLIC_URL changed. Saving a portal's settings does the same for
its organization. A route already up to date is left alone: running it again changes nothing."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_tenants.utils import get_public_schema_name, schema_context

from saas.gateways.services import Author
from tenants.audit import Actor
from tenants.models import Organization

from ... import enforcement


class Command(BaseCommand):
    help = "Write the portal's cors on the routes its products cover, in every organization."

    def handle(self, *args: Any, **options: Any) -> None:
        organizations = list(
            Organization.objects.exclude(schema_name=get_public_schema_name())
            .filter(is_template=False)
            .order_by("id")
        )
        changed_in = 0
        for organization in organizations:
            author = Author(actor=Actor(user=None, name="system:portal_sync_cors"), organization=organization)
            with schema_context(organization.schema_name), transaction.atomic():
                changed = enforcement.sync_portal_cors(author)
                enforcement.publish_clusters(author, changed, "portal cors", ["routes"])
            if changed:
                changed_in += 1
                names = ", ".join(cluster.name for cluster in changed.values())
                self.stdout.write(f"{organization.slug}: published {names}")
        self.stdout.write(f"{changed_in} of {len(organizations)} organization(s) changed.")
