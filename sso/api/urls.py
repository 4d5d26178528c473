from django.urls import path

from . import views

urlpatterns = [
    path(
        "orgs/<str:org_slug>/sso/",
        views.SsoConfigurationViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="sso-configuration",
    ),
    path("auth/sso/discover/", views.DiscoverView.as_view(), name="sso-discover"),
    path("auth/sso/start/", views.StartView.as_view(), name="sso-start"),
    path("auth/sso/callback/", views.CallbackView.as_view(), name="sso-callback"),
    path("auth/sso/link/", views.LinkView.as_view(), name="sso-link"),
]
