"""Fixtures of the integration tests: `cw`, a cluster in each of two organizations."""

import pytest
from django_tenants.utils import schema_context

from saas.gateways.models import GatewayCluster
from tests.factories import CatalogWorld


@pytest.fixture
def cw(world) -> CatalogWorld:
    with schema_context(world.a.org.schema_name):
        a = GatewayCluster.objects.create(name="production")
    with schema_context(world.b.org.schema_name):
        b = GatewayCluster.objects.create(name="production")
    return CatalogWorld(world=world, cluster_id=a.id, other_cluster_id=b.id)
