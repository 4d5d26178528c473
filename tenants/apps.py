from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Organizations and people"

    def ready(self) -> None:
        from .api import openapi  # noqa: F401  (registers the OpenAPI auth schemes)
