"""Included under /api/v1/ by saas.urls."""

from django.urls import re_path

from .api import ClusterOverviewViewSet, OrganizationOverviewViewSet

ORG = r"orgs/(?P<org_slug>[^/]+)"

urlpatterns = [
    re_path(
        rf"^{ORG}/overview/$",
        OrganizationOverviewViewSet.as_view({"get": "overview"}),
        name="organization-overview",
    ),
    re_path(
        rf"^{ORG}/clusters/(?P<cluster_id>[^/]+)/overview/$",
        ClusterOverviewViewSet.as_view({"get": "overview"}),
        name="cluster-overview",
    ),
]
