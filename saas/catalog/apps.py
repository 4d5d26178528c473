from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "saas.catalog"
    label = "catalog"
    verbose_name = "API catalog"

    def ready(self) -> None:
        # The catalog's part of every snapshot, and its rows restored by a rollback.
        from saas.gateways.publishing import register_restorer, register_section, register_shard_compiler

        from .rollback import restore_catalog
        from .sections import SECTIONS, consumers_between

        for name, compile_section in SECTIONS.items():
            register_section(name, compile_section)
        register_shard_compiler("consumers", consumers_between)
        register_restorer(restore_catalog)
        # Secrets encrypted at rest, re-encrypted by `manage.py rotate_encryption_key`.
        from functools import partial

        from core.encryption import register_rotator, rotate_model_fields

        from .models import Certificate, Credential, KeyAuthSecret

        register_rotator(
            "catalog.Credential",
            partial(rotate_model_fields, Credential, ["jwt_secret_ciphertext", "hmac_secret_ciphertext"]),
        )
        register_rotator(
            "catalog.KeyAuthSecret", partial(rotate_model_fields, KeyAuthSecret, ["secret_ciphertext"])
        )
        register_rotator(
            "catalog.Certificate", partial(rotate_model_fields, Certificate, ["private_key_ciphertext"])
        )
