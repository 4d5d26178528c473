from dataclasses import dataclass

import pytest
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

from saas.gateways.models import GatewayCluster
from tenants.roles import Role
from tests.factories import OrgWorld


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


@pytest.fixture
def cw(world) -> CatalogWorld:
    with schema_context(world.a.org.schema_name):
        a = GatewayCluster.objects.create(name="production")
    with schema_context(world.b.org.schema_name):
        b = GatewayCluster.objects.create(name="production")
    return CatalogWorld(world=world, cluster_id=a.id, other_cluster_id=b.id)


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
