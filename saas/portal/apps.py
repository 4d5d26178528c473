from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "saas.portal"
    label = "portal"
    verbose_name = "Developer portal"
    default_auto_field = "django.db.models.BigAutoField"
