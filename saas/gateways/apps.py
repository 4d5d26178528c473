from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "saas.gateways"
    label = "gateways"
    verbose_name = "Gateway clusters, tokens and config snapshots"

    def ready(self) -> None:
        # The ciphertext in snapshot history, re-encrypted by `manage.py rotate_encryption_key`.
        from core.encryption import register_rotator

        from .snapshots import rotate_snapshot_secrets

        register_rotator("gateways.SnapshotSection", rotate_snapshot_secrets)
