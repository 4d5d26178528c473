from django.urls import include, path
from django.views.generic import TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from saas import health
from saas.billing.api.views import stripe_webhook
from saas.console import console
from saas.deployments.api.views import role_template
from saas.gateways.api import install_views

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    # The link in invitation emails; the page itself talks to the API.
    path(
        "invitations/<str:secret>",
        TemplateView.as_view(template_name="accept_invitation.html"),
        name="accept-invitation-page",
    ),
    path("install.sh", install_views.install_script, name="install-script"),
    path("downloads/<str:name>", install_views.download, name="download"),
    path("console/", console, name="console"),
    path("console/<path:path>", console),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="api-docs"),
    path("api/v1/", include("tenants.api.urls")),
    path("api/v1/", include("saas.catalog.api.urls")),
    path("api/v1/", include("saas.billing.api.urls")),
    path("api/v1/", include("saas.deployments.api.urls")),
    path("aws/gateway-role.yaml", role_template, name="aws-role-template"),
    path("billing/stripe/webhook", stripe_webhook, name="stripe-webhook"),
    path("agent/v1/", include("saas.gateways.api.agent_urls")),
]

handler404 = "saas.api.errors.not_found"
handler500 = "saas.api.errors.server_error"
