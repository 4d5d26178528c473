from rest_framework.routers import SimpleRouter

from .views import AnalyticsViewSet, UsageViewSet

ORG = r"orgs/(?P<org_slug>[^/]+)"
CLUSTER = rf"{ORG}/clusters/(?P<cluster_id>[^/]+)"

router = SimpleRouter()
router.register(rf"{CLUSTER}/analytics", AnalyticsViewSet, basename="analytics")
router.register(rf"{ORG}/usage", UsageViewSet, basename="usage")

urlpatterns = router.urls
