"""GET /api/v1/orgs/<slug>/overview/ and GET /api/v1/orgs/<slug>/clusters/<id>/overview/:
thin views over saas.overview.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from saas.gateways.api.scoping import ClusterScopedViewSet
from saas.gateways.services import GatewayCluster
from tenants.api.scoping import OrganizationScopedViewSet
from tenants.roles import Scope

from . import schemas, services


class OrganizationOverviewViewSet(OrganizationScopedViewSet):
    """The organization at a glance. Any member may read it; each part needs its scope (see
    `organization_overview`), and a part the caller may not see is null."""

    queryset = GatewayCluster.objects.none()
    scope_map = {"overview": Scope.ORG_READ}

    @extend_schema(
        responses={200: schemas.ORGANIZATION_OVERVIEW},
        operation_id="organization_overview",
        summary="Gateways, the last hour's traffic and errors, failing routes, quota, recent changes",
    )
    def overview(self, request: Request, org_slug: str) -> Response:
        return Response(services.organization_overview(self.organization, self.scopes))


class ClusterOverviewViewSet(ClusterScopedViewSet):
    """One cluster at a glance, for those who may read its catalog."""

    queryset = GatewayCluster.objects.none()
    scope_map = {"overview": Scope.CATALOG_READ}

    @extend_schema(
        responses={200: schemas.CLUSTER_OVERVIEW},
        operation_id="cluster_overview",
        summary="The cluster's gateways, traffic and errors, failing routes, quota, recent versions",
    )
    def overview(self, request: Request, org_slug: str, cluster_id: str) -> Any:
        return Response(services.cluster_overview(self.organization, self.cluster, self.scopes))
