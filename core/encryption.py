"""Reversible encryption for secrets the product must hand back later (JWT HMAC keys, TLS private
keys). Fernet (AES-128-CBC with HMAC-SHA256) under FIELD_ENCRYPTION_KEY; several comma-separated
keys allow rotation: the first encrypts, any decrypts."""

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretDecryptionError(Exception):
    pass


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
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
