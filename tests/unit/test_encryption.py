"""The one helper for secrets that must be decrypted later."""

import pytest
from cryptography.fernet import Fernet

from core.encryption import SecretDecryptionError, decrypt_secret, encrypt_secret, rotate_secret


def test_round_trip_and_ciphertext_differs_each_time(settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    first, second = encrypt_secret("jwt-hmac-key"), encrypt_secret("jwt-hmac-key")
    assert first != second
    assert "jwt-hmac-key" not in first
    assert decrypt_secret(first) == decrypt_secret(second) == "jwt-hmac-key"


def test_key_rotation(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    ciphertext = encrypt_secret("tls private key")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert decrypt_secret(ciphertext) == "tls private key"
    rotated = rotate_secret(ciphertext)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert decrypt_secret(rotated) == "tls private key"
    with pytest.raises(SecretDecryptionError):
        decrypt_secret(ciphertext)
