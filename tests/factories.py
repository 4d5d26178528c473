"""Reusable builders for tests: people and organizations made through the real services."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from rest_framework.test import APIClient

from tenants import services
from tenants.audit import Actor
from tenants.models import Membership, Organization, User
from tenants.roles import Role

if TYPE_CHECKING:
    from saas.gateways.models import GatewayCluster
    from saas.gateways.services import Author

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def make_user(email: str | None = None, name: str = "") -> User:
    return User.objects.create_user(
        email=email or f"user{next(_counter)}@example.com", password=PASSWORD, name=name
    )


def make_org(owner: User | None = None, name: str | None = None, slug: str | None = None) -> Organization:
    owner = owner or make_user()
    return services.create_organization(Actor(user=owner), name=name or f"Org {next(_counter)}", slug=slug)


def signed_up_on(organization: Organization, when: datetime) -> None:
    """Make `organization` one that signed up at `when`: billing invoices only the periods an
    organization existed in, and fixtures make theirs at the test's clock."""
    Organization.objects.filter(id=organization.id).update(created_at=when)
    organization.created_at = when


def make_org_with_cluster(name: str = "prod") -> tuple:
    """A new organization, its owner as the author of catalog changes, and a cluster in it:
    (organization, author, cluster)."""
    from django_tenants.utils import schema_context

    from saas.gateways.models import GatewayCluster
    from saas.gateways.services import Author

    owner = make_user()
    organization = make_org(owner)
    with schema_context(organization.schema_name):
        cluster = GatewayCluster.objects.create(name=name)
    return organization, Author(actor=Actor(user=owner), organization=organization), cluster


def add_reloading_route(
    organization: Organization, author: Author, cluster: GatewayCluster, service: str
) -> None:
    """A route `/tagged` to `service` with a plugin setting no other route has: a change the
    gateway can only take by reloading HAProxy."""
    from django.db import connections
    from django_tenants.utils import schema_context

    from saas.catalog import services as catalog

    with schema_context(organization.schema_name):
        catalog.save_route(
            author,
            cluster,
            {
                "name": "tagged",
                "service": service,
                "paths": [{"value": "/tagged"}],
                "plugins": {"proxy-rewrite": {"headers": {"set": {"X-Tag": "1"}}}},
            },
        )
    connections.close_all()


def add_member(organization: Organization, role: str, user: User | None = None) -> Membership:
    user = user or make_user(f"{role}{next(_counter)}@example.com")
    return Membership.objects.create(organization=organization, user=user, role=role)


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@dataclass
class OrgSide:
    org: Organization
    members: dict[str, Membership] = field(default_factory=dict)

    def user(self, role: str) -> User:
        return self.members[role].user

    def client(self, role: str) -> APIClient:
        return client_for(self.user(role))


@dataclass
class OrgWorld:
    a: OrgSide
    b: OrgSide


def build_side(label: str) -> OrgSide:
    owner = make_user(f"owner-{label}-{next(_counter)}@example.com")
    org = make_org(owner, name=f"Org {label}", slug=f"org-{label}-{next(_counter)}")
    side = OrgSide(org=org, members={Role.OWNER: Membership.objects.get(organization=org, user=owner)})
    for role in (Role.ADMIN, Role.DEVELOPER, Role.VIEWER, Role.BILLING):
        side.members[role] = add_member(org, role)
    return side


def build_org_world() -> OrgWorld:
    return OrgWorld(a=build_side("a"), b=build_side("b"))


def self_signed_certificate(*hosts: str, key_type: str = "ec") -> tuple[str, str]:
    """A certificate (PEM) for `hosts` and its private key (PEM)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key = (
        ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode(),
    )


# --- a cluster's catalog through the API (integration tests) ----------------------------------


@dataclass
class CatalogWorld:
    world: OrgWorld
    cluster_id: int
    other_cluster_id: int  # in organization B

    def client(self, role: str = Role.DEVELOPER, side: str = "a") -> APIClient:
        return getattr(self.world, side).client(role)

    def url(self, path: str = "", side: str = "a", cluster_id: int | None = None) -> str:
        slug = getattr(self.world, side).org.slug
        cid = (
            cluster_id
            if cluster_id is not None
            else (self.cluster_id if side == "a" else self.other_cluster_id)
        )
        return f"/api/v1/orgs/{slug}/clusters/{cid}/{path}"


UPSTREAM = {
    "name": "orders",
    "targets": [{"host": "10.0.0.1", "port": 8080}, {"host": "orders.internal", "port": 80, "weight": 50}],
}
SERVICE = {"name": "orders-api", "upstream": "orders"}
ROUTE = {
    "name": "list-orders",
    "service": "orders-api",
    "paths": [{"type": "prefix", "value": "/orders"}],
    "methods": ["GET"],
}


def build_catalog(client: APIClient, url) -> dict[str, dict]:
    """An upstream, a service and a route, made through the API."""
    made = {}
    for kind, body in (("upstreams", UPSTREAM), ("services", SERVICE), ("routes", ROUTE)):
        response = client.post(url(f"{kind}/"), body, format="json")
        assert response.status_code == 201, response.content
        made[kind] = response.json()
    return made


def add_calls(org: Organization, calls: int, at: datetime, cluster_id: int = 1) -> None:
    """`calls` answered in the minute of `at`, counted as the usage consumer counts a gateway's
    batch."""
    from gateway_agent.protocol import UsageBatch
    from saas.metering.services import record_usage_batches

    minute = int(at.timestamp()) // 60 * 60
    batch = UsageBatch.model_validate(
        {
            "batch_id": uuid.uuid4().hex,
            "instance_id": "gw",
            "window_start": minute,
            "window_end": minute + 60,
            "items": [{"minute": minute, "route_id": 1, "status_class": "2xx", "requests": calls}],
        }
    )
    record_usage_batches(org.schema_name, [(cluster_id, batch)])
