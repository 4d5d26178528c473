from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = "Sign-in, sessions and account recovery"

    def ready(self) -> None:
        # The authenticator secrets, encrypted at rest, re-encrypted by `manage.py rotate_encryption_key`.
        from core.encryption import register_rotator

        from .mfa import rotate_secrets

        register_rotator("identity.MfaDevice", rotate_secrets)
