"""Checking and storing credentials and certificates: keys hashed, secrets encrypted, PEM parsed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from passlib.hash import sha512_crypt

from core.errors import InvalidInput

# glibc's default round count: HAProxy runs crypt(3) on every Basic-authenticated request.
BASIC_AUTH_ROUNDS = 5000
# A name a certificate serves, maybe a wildcard: the gateway writes it as it is into its
# crt-list, where a space, a `!` or a bracket would mean something else (the agent's renderer
# refuses the same).
_SNI = re.compile(r"(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


def new_api_key() -> str:
    return secrets.token_urlsafe(24)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_key_auth_secret() -> str:
    """A cluster's key-auth hashing secret: 256 random bits, base64 as HAProxy's `hmac`
    converter takes its key."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def key_hmac_hex(secret: str, key: str) -> str:
    """A key-auth key's digest under the cluster's secret, as the gateway computes it
    (`hmac(sha256,<secret>),hex,lower`)."""
    return hmac.new(base64.b64decode(secret), key.encode(), hashlib.sha256).hexdigest()


def crypt_password(password: str) -> str:
    return str(sha512_crypt.using(rounds=BASIC_AUTH_ROUNDS).hash(password))


def check_jwt_public_key(pem: str, algorithm: str) -> None:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise InvalidInput.field("public_key", "Not a PEM public key.") from exc
    if algorithm.startswith("RS"):
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
            raise InvalidInput.field(
                "public_key", f"{algorithm} needs an RSA public key of at least 2048 bits."
            )
    else:
        curve = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}[algorithm]
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, curve):
            raise InvalidInput.field(
                "public_key", f"{algorithm} needs an EC public key on curve {curve.name}."
            )


@dataclass(frozen=True)
class ParsedCertificate:
    certificate_pem: str
    private_key_pem: str
    snis: list[str]
    not_after: datetime
    fingerprint_sha256: str


def parse_certificate(certificate_pem: str, private_key_pem: str) -> ParsedCertificate:
    try:
        certificates = x509.load_pem_x509_certificates(certificate_pem.encode())
    except ValueError as exc:
        raise InvalidInput.field("certificate", "Not a PEM certificate.") from exc
    leaf = certificates[0]
    try:
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput.field("private_key", "Not an unencrypted PEM private key.") from exc
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(der, spki):
        raise InvalidInput.field("private_key", "The private key does not match the certificate.")
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        snis = sorted({name.lower() for name in san.get_values_for_type(x509.DNSName)})
    except x509.ExtensionNotFound:
        snis = []
    if not snis:
        snis = [str(a.value).lower() for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if not snis:
        raise InvalidInput.field("certificate", "The certificate names no host (no DNS SAN, no CN).")
    for sni in snis:
        if len(sni) > 253 or not _SNI.fullmatch(sni):
            raise InvalidInput.field(
                "certificate", f"The certificate names {sni!r}, which is not a host name."
            )
    # Normalize: the stored key is PKCS#8 PEM, whatever the user pasted.
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)
    return ParsedCertificate(
        certificate_pem=chain_pem,
        private_key_pem=key_pem,
        snis=snis,
        not_after=leaf.not_valid_after_utc,
        fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
    )


def certificate_fingerprint(certificate_pem: str) -> str:
    return x509.load_pem_x509_certificates(certificate_pem.encode())[0].fingerprint(hashes.SHA256()).hex()
