from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    label = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The organization's quota state is part of every snapshot: gateways refuse calls with
        # 429 once a hard-capped allowance is used up.
        from core.metrics import register_gauge
        from saas.gateways.publishing import register_section
        from tenants.schemas import current_schema_name

        from .late_usage import late_usage_calls
        from .quotas import gateway_quota

        register_section("quota", lambda cluster: gateway_quota(current_schema_name()))
        register_gauge(
            "saas_billing_late_usage_calls",
            "Late calls (of periods already billed) carried into a later bill so far, all organizations.",
            late_usage_calls,
        )
