from django.apps import AppConfig


class DeploymentsConfig(AppConfig):
    name = "saas.deployments"
    label = "deployments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The ExternalId, encrypted at rest, re-encrypted by `manage.py rotate_encryption_key`.
        from functools import partial

        from core.encryption import register_rotator, rotate_model_fields

        from .models import AwsConnection

        register_rotator(
            "deployments.AwsConnection",
            partial(rotate_model_fields, AwsConnection, ["external_id_ciphertext"]),
        )
