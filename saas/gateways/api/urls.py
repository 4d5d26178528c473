from rest_framework.routers import SimpleRouter

from . import views

ORG = r"orgs/(?P<org_slug>[^/]+)"
CLUSTER = rf"{ORG}/clusters/(?P<cluster_id>[^/]+)"

router = SimpleRouter()
router.register(rf"{ORG}/clusters", views.ClusterViewSet, basename="cluster")
router.register(rf"{CLUSTER}/tokens", views.ClusterTokenViewSet, basename="cluster-token")
router.register(rf"{CLUSTER}/instances", views.InstanceViewSet, basename="instance")
router.register(rf"{CLUSTER}/install", views.InstallViewSet, basename="install")
router.register(rf"{CLUSTER}/snapshots", views.SnapshotViewSet, basename="snapshot")

urlpatterns = router.urls
