"""PostgreSQL and tenancy. DATABASE_URL is required; `make run` / `make test` set it to the
embedded server when it is not given."""

from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

from .env import env_int, env_str


def database_from_url(url: str) -> dict[str, object]:
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured("DATABASE_URL must be a postgresql:// URL.")
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    return {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": options.pop("host", None) or parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": options,
    }


DATABASES = {
    "default": database_from_url(env_str("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/saas"))
}
DATABASE_ROUTERS = ("django_tenants.routers.TenantSyncRouter",)

TENANT_MODEL = "tenants.Organization"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# New organizations are cloned from this schema (kept migrated like any tenant) instead of
# running every migration, so signup stays fast however many organizations exist.
TENANT_BASE_SCHEMA = "tenant_template"
TENANT_CREATION_FAKES_MIGRATIONS = True
# `migrate_schemas --executor=template` migrates the template schema and replays its SQL in every
# organization's schema (tenants.template_migrations); `--executor=multiprocessing` runs Django's
# migrate per schema in a pool of this many processes. SAAS_MIGRATION_EXECUTOR for `make run`.
GET_EXECUTOR_FUNCTION = "tenants.template_migrations.get_executor"
TENANT_MULTIPROCESSING_MAX_PROCESSES = env_int("TENANT_MULTIPROCESSING_MAX_PROCESSES", 4)
