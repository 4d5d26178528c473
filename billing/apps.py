from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    label = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The organization's quota state is part of every snapshot: gateways refuse calls with
        # 429 once a hard-capped allowance is used up.
        from saas.gateways.publishing import register_section
        from tenants.schemas import current_schema_name

        from .quotas import gateway_quota

        register_section("quota", lambda cluster: gateway_quota(current_schema_name()))
