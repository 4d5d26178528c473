from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from . import views

ORG = r"orgs/(?P<org_slug>[^/]+)"
CLUSTER = rf"{ORG}/clusters/(?P<cluster_id>[^/]+)"

router = SimpleRouter()
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
