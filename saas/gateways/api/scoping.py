"""The base for endpoints under /api/v1/orgs/<slug>/clusters/<cluster_id>/."""

from typing import Any

from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.request import Request

from core.api.validation import parse_id
from saas.gateways.clusters import Author
from saas.gateways.models import GatewayCluster
from tenants.api.scoping import OrganizationScopedViewSet


class ClusterScopedViewSet(OrganizationScopedViewSet):
    cluster: GatewayCluster

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # membership, scopes, the organization's schema
        cluster_id = parse_id(str(kwargs.get("cluster_id", "")))
        cluster = GatewayCluster.objects.filter(id=cluster_id).first() if cluster_id is not None else None
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
