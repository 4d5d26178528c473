"""The base for endpoints under /api/v1/orgs/<slug>/clusters/<cluster_id>/."""

from typing import Any

from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.request import Request

from saas.gateways.clusters import Author
from saas.gateways.models import GatewayCluster
from tenants.api.scoping import OrganizationScopedViewSet


class ClusterScopedViewSet(OrganizationScopedViewSet):
    cluster: GatewayCluster

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # membership, scopes, the organization's schema
        cluster_id = str(kwargs.get("cluster_id", ""))
        # ASCII digits only ("²".isdigit() is true, int() refuses it), within a bigint.
        valid = cluster_id.isascii() and cluster_id.isdigit() and len(cluster_id) <= 18
        cluster = GatewayCluster.objects.filter(id=int(cluster_id)).first() if valid else None
        if cluster is None:
            raise exceptions.NotFound("Cluster not found.")
        self.cluster = cluster

    def get_queryset(self) -> QuerySet[Any]:
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset
        if "cluster" in {field.name for field in queryset.model._meta.get_fields()}:
            queryset = queryset.filter(cluster=self.cluster)
        return queryset

    @property
    def author(self) -> Author:
        return Author(actor=self.actor, organization=self.organization)
