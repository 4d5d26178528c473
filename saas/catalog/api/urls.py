from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from saas.gateways.api.views import ClusterTokenViewSet, ClusterViewSet, InstallViewSet, InstanceViewSet
from saas.metering.api.views import AnalyticsViewSet, UsageViewSet

from . import views

ORG = r"orgs/(?P<org_slug>[^/]+)"
CLUSTER = rf"{ORG}/clusters/(?P<cluster_id>[^/]+)"

router = SimpleRouter()
router.register(rf"{ORG}/clusters", ClusterViewSet, basename="cluster")
router.register(rf"{CLUSTER}/tokens", ClusterTokenViewSet, basename="cluster-token")
router.register(rf"{CLUSTER}/instances", InstanceViewSet, basename="instance")
router.register(rf"{CLUSTER}/install", InstallViewSet, basename="install")
router.register(rf"{CLUSTER}/analytics", AnalyticsViewSet, basename="analytics")
router.register(rf"{ORG}/usage", UsageViewSet, basename="usage")
router.register(rf"{CLUSTER}/snapshots", views.SnapshotViewSet, basename="snapshot")
router.register(rf"{CLUSTER}/upstreams", views.UpstreamViewSet, basename="upstream")
router.register(rf"{CLUSTER}/services", views.ServiceViewSet, basename="service")
router.register(rf"{CLUSTER}/routes", views.RouteViewSet, basename="route")
router.register(rf"{CLUSTER}/consumers", views.ConsumerViewSet, basename="consumer")
router.register(
    rf"{CLUSTER}/consumers/(?P<consumer_id>[^/]+)/credentials", views.CredentialViewSet, basename="credential"
)
router.register(rf"{CLUSTER}/certificates", views.CertificateViewSet, basename="certificate")
router.register(rf"{CLUSTER}/plugins", views.GlobalPluginViewSet, basename="global-plugin")

declarative = views.DeclarativeConfigViewSet

urlpatterns = [
    path("plugins/", views.PluginListView.as_view(), name="plugin-list"),
    re_path(
        rf"^{CLUSTER}/config/$",
        declarative.as_view({"get": "export", "post": "apply"}),
        name="cluster-config",
    ),
    re_path(
        rf"^{CLUSTER}/openapi-import/$",
        declarative.as_view({"post": "import_openapi"}),
        name="openapi-import",
    ),
    *router.urls,
]
