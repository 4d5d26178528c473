from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

ORG = r"orgs/(?P<org_slug>[^/]+)"

router = SimpleRouter()
router.register(rf"{ORG}/members", views.MemberViewSet, basename="member")
router.register(rf"{ORG}/invitations", views.InvitationViewSet, basename="invitation")
router.register(rf"{ORG}/tokens", views.ApiTokenViewSet, basename="api-token")
router.register(rf"{ORG}/audit-log", views.AuditLogViewSet, basename="audit-entry")

urlpatterns = [
    path("auth/signup/", views.SignupView.as_view(), name="signup"),
    path("auth/login/", views.LoginView.as_view(), name="login"),
    path("auth/logout/", views.LogoutView.as_view(), name="logout"),
    path("auth/me/", views.MeView.as_view(), name="me"),
    path("auth/csrf/", views.CsrfView.as_view(), name="csrf"),
    path("invitations/lookup/", views.InvitationLookupView.as_view(), name="invitation-lookup"),
    path("invitations/accept/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("orgs/", views.OrganizationListView.as_view(), name="organization-list"),
    path(
        "orgs/<str:org_slug>/",
        views.OrganizationViewSet.as_view({"get": "retrieve", "patch": "partial_update"}),
        name="organization-detail",
    ),
    *router.urls,
]
