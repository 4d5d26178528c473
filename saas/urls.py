from django.urls import URLPattern, URLResolver, include, path
from django.views.generic import RedirectView, TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from billing.api.views import stripe_webhook
from core.api.trailing_slash import slash_optional
from core.metrics import metrics_view
from saas import health
from saas.console import console
from saas.deployments.api.views import role_template
from saas.gateways.api import install_views

api_urls: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="openapi-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="openapi-schema"), name="api-docs"),
    path("v1/", include("tenants.api.urls")),
    path("v1/", include("identity.api.urls")),
    path("v1/", include("sso.api.urls")),
    path("v1/", include("saas.gateways.api.urls")),
    path("v1/", include("saas.catalog.api.urls")),
    path("v1/", include("saas.metering.api.urls")),
    path("v1/", include("billing.api.urls")),
    path("v1/", include("saas.deployments.api.urls")),
    path("v1/", include("saas.portal.api.urls")),
    path("v1/", include("saas.overview.urls")),
]

urlpatterns = [
    # The first address `make run` prints: people come for the console.
    path("", RedirectView.as_view(url="/console/", permanent=False), name="home"),
    # The link in invitation emails; the page itself talks to the API.
    path(
        "invitations/<str:secret>",
        TemplateView.as_view(template_name="accept_invitation.html"),
        name="accept-invitation-page",
    ),
    path("install.sh", install_views.install_script, name="install-script"),
    path("downloads/<str:name>", install_views.download, name="download"),
    path("console/", console, name="console"),
    path("portal/<str:org_slug>/", include("saas.portal.web.urls")),
    path("console/<path:path>", console),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus, with SAAS_METRICS_TOKEN
    # The API's trailing slashes are optional, for every method (core.api.trailing_slash).
    slash_optional(path("api/", include(api_urls))),
    path("aws/gateway-role.yaml", role_template, name="aws-role-template"),
    path("billing/stripe/webhook", stripe_webhook, name="stripe-webhook"),
]

handler404 = "core.api.errors.not_found"
handler500 = "core.api.errors.server_error"
