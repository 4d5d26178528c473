"""`manage.py rotate_encryption_key`: every encrypted secret, in every organization (and the
copies in snapshot history), re-encrypted under FIELD_ENCRYPTION_KEY's first key, so the old key
can go; a second run changes nothing."""

import io
import json

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from gateway_agent.protocol import document_sha256
from saas.catalog.models import Certificate, Credential, KeyAuthSecret
from saas.deployments.connections import connection_for
from saas.deployments.models import AwsConnection
from saas.gateways.models import ConfigSnapshot, SnapshotSection
from saas.gateways.snapshots import REDACTED_FIELDS, snapshot_document
from tests.factories import self_signed_certificate


def _ciphertexts(schema_name: str) -> list[str]:
    """Every Fernet token stored in the schema: catalog rows and snapshot sections."""
    with schema_context(schema_name):
        found = [
            value
            for row in Credential.objects.values_list("jwt_secret_ciphertext", "hmac_secret_ciphertext")
            for value in row
            if value
        ]
        found += list(Certificate.objects.values_list("private_key_ciphertext", flat=True))
        found += list(KeyAuthSecret.objects.values_list("secret_ciphertext", flat=True))
        found += list(AwsConnection.objects.values_list("external_id_ciphertext", flat=True))
        for text in SnapshotSection.objects.filter(content__contains="_ciphertext").values_list(
            "content", flat=True
        ):
            found += _tokens_in(json.loads(text))
    return found


def _tokens_in(value) -> list[str]:
    if isinstance(value, dict):
        return [
            token
            for key, item in value.items()
            for token in ([item] if key in REDACTED_FIELDS and item else _tokens_in(item))
        ]
    if isinstance(value, list):
        return [token for item in value for token in _tokens_in(item)]
    return []


def _make_secrets(cw, side: str) -> None:
    client = cw.client(side=side)
    consumer = client.post(cw.url("consumers/", side=side), {"username": "app"}, format="json").json()
    base = cw.url(f"consumers/{consumer['id']}/credentials/", side=side)
    made = client.post(base, {"type": "jwt-auth", "key": "app", "algorithm": "HS256"}, format="json")
    assert made.status_code == 201, made.content
    made = client.post(base, {"type": "key-auth"}, format="json")  # the cluster's key-auth secret
    assert made.status_code == 201, made.content
    cert, key = self_signed_certificate("api.example.com")
    made = client.post(
        cw.url("certificates/", side=side),
        {"name": "api", "certificate": cert, "private_key": key},
        format="json",
    )
    assert made.status_code == 201, made.content
    with schema_context(getattr(cw.world, side).org.schema_name):
        connection_for()  # the organization's ExternalId


def test_rotation_reencrypts_everything_under_the_new_key_and_is_idempotent(cw, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    schemas = [cw.world.a.org.schema_name, cw.world.b.org.schema_name]
    _make_secrets(cw, "a")
    _make_secrets(cw, "b")
    before = {schema: _ciphertexts(schema) for schema in schemas}
    assert all(len(tokens) >= 5 for tokens in before.values())  # rows and their snapshot copies
    plaintexts = {
        schema: sorted(Fernet(old).decrypt(t.encode()) for t in before[schema]) for schema in schemas
    }

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    output = out.getvalue()
    assert f"{cw.world.a.org.slug}: catalog.Credential: 1 re-encrypted, 0 already current" in output
    assert f"{cw.world.b.org.slug}: catalog.Certificate: 1 re-encrypted" in output
    assert f"{cw.world.b.org.slug}: catalog.KeyAuthSecret: 1 re-encrypted" in output
    assert f"{cw.world.a.org.slug}: gateways.SnapshotSection:" in output
    assert f"{cw.world.b.org.slug}: deployments.AwsConnection: 1 re-encrypted" in output
    assert "may now be removed" in output

    for schema in schemas:
        after = _ciphertexts(schema)
        assert sorted(Fernet(new).decrypt(t.encode()) for t in after) == plaintexts[schema]
        for token in after:
            with pytest.raises(InvalidToken):
                Fernet(old).decrypt(token.encode())
        with schema_context(schema):
            # History stays whole: every version assembles, with its document hash.
            for snapshot in ConfigSnapshot.objects.all():
                assert document_sha256(snapshot_document(snapshot)) == snapshot.sha256

    # Again: nothing left to do, nothing rewritten.
    settled = {schema: sorted(_ciphertexts(schema)) for schema in schemas}
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert "0 secret(s) re-encrypted" in out.getvalue()
    assert {schema: sorted(_ciphertexts(schema)) for schema in schemas} == settled

    # The old key alone can no longer read what is stored; the new one alone reads it all.
    settings.FIELD_ENCRYPTION_KEYS = [new]
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    assert "0 secret(s) re-encrypted" in out.getvalue()


def test_rotation_without_the_old_key_says_so(cw, settings):
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    _make_secrets(cw, "a")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the old key dropped too early
    err = io.StringIO()
    with pytest.raises(CommandError, match="keep the old keys"):
        call_command("rotate_encryption_key", stdout=io.StringIO(), stderr=err)
    assert "no listed key decrypts" in err.getvalue()
