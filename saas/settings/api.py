"""REST framework, OpenAPI and throttling."""

from .env import env_int, env_str

# How many reverse proxies (load balancers) sit in front of the web processes and append to
# X-Forwarded-For. 0 trusts no header: the socket address is the client.
TRUSTED_PROXY_COUNT = env_int("SAAS_TRUSTED_PROXY_COUNT", 0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiTokenAuthentication",
        "tenants.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_RATES": {
        # Against password guessing and signup floods, per client address.
        "auth": env_str("SAAS_AUTH_THROTTLE_RATE", "10/min"),
        "signup": env_str("SAAS_SIGNUP_THROTTLE_RATE", "20/hour"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Gateway control plane API",
    "DESCRIPTION": "Organizations, members, API tokens and audit log; the catalog and gateways follow.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "tenants.roles.Role",
        "PortalVersionStatusEnum": "saas.portal.models.ProductVersion.STATUSES",
        "PortalApplicationStatusEnum": ["active", "suspended"],
    },
}
