"""Re-encrypt every secret stored encrypted (JWT HMAC secrets, hmac-auth secrets, TLS private keys,
AWS ExternalIds, the snapshots' copies...) under the first key of FIELD_ENCRYPTION_KEY, in every
organization's schema. The old keys must still be listed after the first while it runs. A
secret already under the first key is left alone, so running it again changes nothing."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import get_public_schema_name, schema_context

from core.encryption import RotationCount, SecretDecryptionError, rotators
from tenants.models import Organization


class Command(BaseCommand):
    help = "Re-encrypt every encrypted secret, in every organization, under FIELD_ENCRYPTION_KEY's first key."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.FIELD_ENCRYPTION_KEYS:
            raise CommandError("Set FIELD_ENCRYPTION_KEY: the new key first, then the old ones.")
        kinds = rotators()
        organizations = list(
            Organization.objects.exclude(schema_name=get_public_schema_name())
            .order_by("id")
            .values_list("schema_name", "slug")
        )
        total, failed = RotationCount(), 0
        for number, (schema_name, slug) in enumerate(organizations, start=1):
            with schema_context(schema_name):
                for name, rotate in sorted(kinds.items()):
                    try:
                        count = rotate()
                    except SecretDecryptionError:
                        failed += 1
                        self.stderr.write(
                            f"[{number}/{len(organizations)}] {slug}: {name}: a secret no listed key "
                            "decrypts (was an old key removed too early?); skipped"
                        )
                        continue
                    total += count
                    if count.rotated or count.current:
                        self.stdout.write(
                            f"[{number}/{len(organizations)}] {slug}: {name}: "
                            f"{count.rotated} re-encrypted, {count.current} already current"
                        )
            self.stdout.write(f"[{number}/{len(organizations)}] {slug}: done")
        self.stdout.write(
            f"{total.rotated} secret(s) re-encrypted, {total.current} already under the first key, "
            f"in {len(organizations)} organization(s)."
        )
        if failed:
            raise CommandError(f"{failed} kind(s) of secret could not be re-encrypted; keep the old keys.")
        self.stdout.write("Done: the keys after the first may now be removed from FIELD_ENCRYPTION_KEY.")
