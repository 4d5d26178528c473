"""Hardening. In production (SAAS_ENV=production) `manage.py check --deploy` passes."""

from .base import PRODUCTION
from .env import env_bool, env_int, env_list, env_str

CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    # The load balancer terminates TLS and says so in this header.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # Health probes come over plain HTTP from the kubelet.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# The bearer token Prometheus presents to GET /metrics (core/metrics.py); unset, /metrics is 404.
SAAS_METRICS_TOKEN = env_str("SAAS_METRICS_TOKEN", "")
