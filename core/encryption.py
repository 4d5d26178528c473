"""Reversible encryption for secrets the product must hand back later (JWT HMAC keys, TLS private
keys). Fernet (AES-128-CBC with HMAC-SHA256) under FIELD_ENCRYPTION_KEY; several comma-separated
keys allow rotation: the first encrypts, any decrypts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Model


class SecretDecryptionError(Exception):
    pass


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "Set FIELD_ENCRYPTION_KEY (a Fernet key); `make run` makes one in its data folder."
        )
    return MultiFernet([Fernet(key.encode()) for key in keys])


def encrypt_secret(plaintext: str) -> str:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt_secret(ciphertext: str) -> str:
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError("Secret cannot be decrypted with the configured keys.") from exc


def rotate_secret(ciphertext: str) -> str:
    """Re-encrypt under the first (newest) key."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).rotate(ciphertext.encode()).decode()


# --- re-encrypting what is stored under the first key (`manage.py rotate_encryption_key`) -------


@dataclass
class RotationCount:
    rotated: int = 0  # re-encrypted under the first key
    current: int = 0  # already under the first key: left alone, so a second run changes nothing

    def __iadd__(self, other: RotationCount) -> RotationCount:
        self.rotated, self.current = self.rotated + other.rotated, self.current + other.current
        return self


# A name ("catalog.Credential") -> what re-encrypts that kind of secret in the current schema.
# Each app registers its own in AppConfig.ready; the command runs them in every organization.
Rotator = Callable[[], RotationCount]
_rotators: dict[str, Rotator] = {}


def register_rotator(name: str, rotator: Rotator) -> None:
    _rotators[name] = rotator


def rotators() -> dict[str, Rotator]:
    return dict(_rotators)


def reencrypted(ciphertext: str) -> str | None:
    """`ciphertext` under the first key, or None when it already is (not re-encrypted again).
    Raises SecretDecryptionError when no configured key opens it."""
    keys = tuple(settings.FIELD_ENCRYPTION_KEYS)
    try:
        _fernet(keys[:1]).decrypt(ciphertext.encode())
        return None
    except InvalidToken:
        pass
    try:
        return _fernet(keys).rotate(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise SecretDecryptionError("Secret cannot be decrypted with the configured keys.") from exc


def rotate_model_fields(model: type[Model], fields: Sequence[str]) -> RotationCount:
    """Re-encrypt `fields` (Fernet tokens, blank when unset) of every row of `model` in the
    current schema. A row is written only if its ciphertext is still the one read."""
    count = RotationCount()
    for row in model._default_manager.values("pk", *fields).iterator():
        updates: dict[str, str] = {}
        for field in fields:
            if not row[field]:
                continue
            new = reencrypted(row[field])
            if new is None:
                count.current += 1
            else:
                updates[field] = new
        if updates:
            unchanged = {field: row[field] for field in updates}
            count.rotated += model._default_manager.filter(pk=row["pk"], **unchanged).update(**updates) * len(
                updates
            )
    return count
