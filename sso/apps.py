from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "sso"
    verbose_name = "Single sign-on (OpenID Connect)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The client secrets, encrypted at rest, re-encrypted by `manage.py rotate_encryption_key`.
        from core.encryption import register_rotator

        from .services import rotate_client_secrets

        register_rotator("sso.SsoConfiguration", rotate_client_secrets)
