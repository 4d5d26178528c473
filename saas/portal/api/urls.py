from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import views

PORTAL = r"orgs/(?P<org_slug>[^/]+)/portal"
PRODUCT = rf"{PORTAL}/products/(?P<product_id>[^/]+)"

router = SimpleRouter()
router.register(rf"{PORTAL}/products", views.ProductViewSet, basename="portal-product")
router.register(rf"{PRODUCT}/versions", views.VersionViewSet, basename="portal-version")
router.register(rf"{PRODUCT}/plans", views.PlanViewSet, basename="portal-plan")
router.register(rf"{PORTAL}/developers", views.DeveloperViewSet, basename="portal-developer")
router.register(rf"{PORTAL}/applications", views.ApplicationViewSet, basename="portal-application")
router.register(rf"{PORTAL}/invitations", views.DeveloperInvitationViewSet, basename="portal-invitation")

urlpatterns = [
    re_path(
        rf"^{PORTAL}/settings/$",
        views.PortalSettingsViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="portal-settings",
    ),
    *router.urls,
]
