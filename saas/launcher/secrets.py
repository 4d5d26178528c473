"""Secrets `make run` and `make test` make for themselves: generated once at random into the data
folder (mode 0600) and reused by every later start, never derived from a string in the source."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet

FIELD_ENCRYPTION_KEY_FILE = "field-encryption.key"
POSTGRES_PASSWORD_FILE = "postgres-password"
DJANGO_SECRET_KEY_FILE = "django-secret-key"


def _new_fernet_key() -> str:
    return Fernet.generate_key().decode()


def _new_password() -> str:
    return secrets.token_urlsafe(32)


def secret_file(path: Path, generate: Callable[[], str]) -> str:
    """The secret in `path`, made by `generate` and written with mode 0600 the first time.
    O_EXCL: two launchers starting at once agree on one secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if value:
            return value
        raise RuntimeError(f"{path} is empty: delete it to make a new one") from None
    value = generate()
    with os.fdopen(fd, "w") as file:
        file.write(value + "\n")
    return value


def field_encryption_key(data_dir: Path) -> str:
    return secret_file(data_dir / FIELD_ENCRYPTION_KEY_FILE, _new_fernet_key)


def postgres_password(data_dir: Path) -> str:
    return secret_file(data_dir / POSTGRES_PASSWORD_FILE, _new_password)


def django_secret_key(data_dir: Path) -> str:
    """What signs password-reset links, CSRF tokens and signed values: one from the source
    would let anyone forge them for a `make run` deployment."""
    return secret_file(data_dir / DJANGO_SECRET_KEY_FILE, lambda: secrets.token_urlsafe(50))


# Until issue 22 the development key was derived from the development SECRET_KEY. A data folder
# made then holds secrets under it: its first start with a generated key lists the old one after
# it, for reading only, until `rotate_encryption_key` has re-encrypted them (LEGACY_MARKER).
LEGACY_MARKER = "field-encryption.rotate-legacy"


def legacy_development_key(secret_key: str | None) -> str:
    """The key development processes derived before: for reading old data folders, never writing."""
    source = secret_key or "django-insecure-development-only-key"
    return base64.urlsafe_b64encode(hashlib.sha256(source.encode()).digest()).decode()


def field_encryption_keys(data_dir: Path, secret_key: str | None, *, data_exists: bool) -> str:
    """FIELD_ENCRYPTION_KEY for the launcher's processes: the folder's generated key, then (a
    folder whose data predates it, until its secrets are re-encrypted) the old derived one."""
    marker = data_dir / LEGACY_MARKER
    data_dir.mkdir(parents=True, exist_ok=True)
    if data_exists and not (data_dir / FIELD_ENCRYPTION_KEY_FILE).exists():
        marker.touch(mode=0o600)
    key = field_encryption_key(data_dir)
    return f"{key},{legacy_development_key(secret_key)}" if marker.exists() else key
