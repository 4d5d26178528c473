"""`make demo`'s organization: a demo user and organization, a cluster with a few routes (a mocked
one, a proxied one behind key-auth with two consumers), and a fresh cluster token for the local
gateway. Idempotent: run again, it keeps what exists and only issues a new token (revoking the
previous demo tokens). Prints one JSON line: the login, the token, the gateway's port."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand
from django_tenants.utils import schema_context

from identity.services import mark_email_verified
from saas.catalog import services as catalog
from saas.catalog.models import Route, Upstream
from saas.gateways.services import (
    Author,
    ClusterToken,
    GatewayCluster,
    create_cluster_token,
    revoke_cluster_token,
)
from tenants.audit import Actor
from tenants.models import Membership, User
from tenants.services import sign_up

EMAIL = "demo@example.com"
PASSWORD = "demo passphrase 2026"
KEYS = {"web-app": "demo-web-app-key-0001", "mobile-app": "demo-mobile-app-key-02"}


class Command(BaseCommand):
    help = "Create (or keep) the demo organization and print a fresh gateway token for it."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--upstream-port", type=int, required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email=EMAIL).first()
        if user is None:
            user, organization = sign_up(
                email=EMAIL, password=PASSWORD, name="Demo", organization_name="Demo", ip_address=None
            )
            # No mailbox behind the demo's address: taken as verified, or every page says it is not.
            mark_email_verified(user, how="demo", ip_address=None)
        else:
            organization = Membership.objects.select_related("organization").get(user=user).organization
        author = Author(actor=Actor(user=user), organization=organization)
        with schema_context(organization.schema_name):
            cluster = GatewayCluster.objects.filter(name="demo").first()
            if cluster is None:
                cluster = GatewayCluster.objects.create(name="demo", description="The gateway make demo runs")
            target = {"host": "127.0.0.1", "port": options["upstream_port"]}
            existing = Upstream.objects.filter(cluster=cluster, name="demo-backend").first()
            # The backend listens on a new port each start: the upstream follows it.
            catalog.save_upstream(author, cluster, {"name": "demo-backend", "targets": [target]}, existing)
            if not Route.objects.filter(cluster=cluster).exists():
                catalog.save_service(
                    author,
                    cluster,
                    {"name": "orders", "upstream": "demo-backend", "plugins": {"key-auth": {}}},
                )
                catalog.save_service(author, cluster, {"name": "public", "upstream": "demo-backend"})
                catalog.save_route(
                    author, cluster, {"name": "orders", "service": "orders", "paths": [{"value": "/orders"}]}
                )
                catalog.save_route(
                    author, cluster, {"name": "status", "service": "public", "paths": [{"value": "/status"}]}
                )
                catalog.save_route(
                    author,
                    cluster,
                    {
                        "name": "hello",
                        "service": "public",
                        "paths": [{"value": "/hello"}],
                        "plugins": {"mocking": {"status_code": 200, "body": '{"hello": "world"}'}},
                    },
                )
                for username, key in KEYS.items():
                    consumer = catalog.save_consumer(author, cluster, {"username": username})
                    catalog.add_credential(author, consumer, {"type": "key-auth", "key": key})
            for old in ClusterToken.objects.filter(
                cluster=cluster, name="make demo", revoked_at__isnull=True
            ):
                revoke_cluster_token(author, old)
            _, secret = create_cluster_token(author, cluster, name="make demo")
        self.stdout.write(
            json.dumps(
                {
                    "email": EMAIL,
                    "password": PASSWORD,
                    "organization": organization.slug,
                    "cluster_id": cluster.id,
                    "token": secret,
                    "keys": KEYS,
                }
            )
        )
