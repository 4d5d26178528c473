"""Secrets handed to people once (API tokens, invitation links) and stored only as hashes.

They carry 256 bits of randomness, so a plain SHA-256 is enough to store them: there is nothing
to brute-force, and an indexed lookup by hash stays constant-time in the number of tokens."""

import hashlib
import secrets


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
