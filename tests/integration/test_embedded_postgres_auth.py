"""`make run`'s embedded PostgreSQL asks TCP connections for a password, made at random into the
data folder; a cluster made before passwords (`--auth=trust`) keeps working and is switched over."""

import base64
import hashlib
import signal
import stat
import subprocess

import psycopg
import pytest

from core.postgres_binaries import postgres_bin_dir
from saas.launcher.secrets import (
    LEGACY_MARKER,
    django_secret_key,
    field_encryption_key,
    field_encryption_keys,
    legacy_development_key,
    postgres_password,
)
from saas.launcher.services import EmbeddedPostgres, free_port


def test_secrets_are_made_once_with_mode_0600_and_reused(tmp_path):
    key, password, signing = (
        field_encryption_key(tmp_path),
        postgres_password(tmp_path),
        django_secret_key(tmp_path),
    )
    for name in ("field-encryption.key", "postgres-password", "django-secret-key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert field_encryption_key(tmp_path) == key and postgres_password(tmp_path) == password
    assert django_secret_key(tmp_path) == signing and len(signing) >= 50
    assert signing != "django-insecure-development-only-key"
    assert field_encryption_key(tmp_path / "other") != key


def _connects(port: int, password: str | None) -> bool:
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", password=password, dbname="saas", connect_timeout=5
        ) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def _run(postgres: EmbeddedPostgres, log: str) -> subprocess.Popen[bytes]:
    return postgres.start(postgres.data_dir.parent / log)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


@pytest.mark.slow
def test_a_new_cluster_requires_the_password(tmp_path):
    postgres = EmbeddedPostgres(tmp_path / "postgres", free_port(), postgres_password(tmp_path))
    process = _run(postgres, "pg.log")
    try:
        assert _connects(postgres.port, postgres.password)
        assert not _connects(postgres.port, None)
        assert not _connects(postgres.port, "a guess")
        assert postgres.url.startswith(f"postgresql://postgres:{postgres.password}@127.0.0.1:")
    finally:
        _stop(process)
    # Started again: the same password.
    process = _run(postgres, "pg.log")
    try:
        assert _connects(postgres.port, postgres.password) and not _connects(postgres.port, None)
    finally:
        _stop(process)


@pytest.mark.slow
def test_a_cluster_made_with_trust_keeps_its_data_and_gets_a_password(tmp_path):
    old = EmbeddedPostgres(tmp_path / "postgres", free_port(), "unused")
    old.initialize()  # the folder, owned as the server runs; then initdb as `make run` once did
    shutil_rmtree_contents(old)
    uid, gid = old._run_as()
    subprocess.run(
        [str(postgres_bin_dir() / "initdb"), "-D", str(old.data_dir), "-U", "postgres", "--auth=trust",
         "--encoding=UTF8", "--no-sync"],
        check=True, capture_output=True, user=uid, group=gid,
    )  # fmt: skip
    hba = old.data_dir / "pg_hba.conf"
    owner = (hba.stat().st_uid, stat.S_IMODE(hba.stat().st_mode))
    process = subprocess.Popen(
        [str(postgres_bin_dir() / "postgres"), "-D", str(old.data_dir), "-h", "127.0.0.1", "-p",
         str(old.port), "-k", str(old.data_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, user=uid, group=gid,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                with psycopg.connect(host="127.0.0.1", port=old.port, user="postgres", dbname="postgres",
                                     autocommit=True) as conn:  # fmt: skip
                    conn.execute("CREATE DATABASE saas")
                break
            except psycopg.OperationalError:
                import time

                time.sleep(0.2)
        with psycopg.connect(host="127.0.0.1", port=old.port, user="postgres", dbname="saas") as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('made under trust')")
        assert _connects(old.port, None)
    finally:
        _stop(process)

    postgres = EmbeddedPostgres(old.data_dir, free_port(), postgres_password(tmp_path))
    process = _run(postgres, "pg.log")
    try:
        assert not _connects(postgres.port, None)
        with psycopg.connect(postgres.url) as conn:
            assert conn.execute("SELECT value FROM kept").fetchone() == ("made under trust",)
        assert (hba.stat().st_uid, stat.S_IMODE(hba.stat().st_mode)) == owner
        assert "scram-sha-256" in hba.read_text()
    finally:
        _stop(process)


def shutil_rmtree_contents(postgres: EmbeddedPostgres) -> None:
    """Empty the cluster folder `initialize` made, keeping the folder (its owner and mode)."""
    import shutil

    for child in postgres.data_dir.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def test_a_data_folder_from_before_reads_its_old_secrets_until_they_are_reencrypted(tmp_path):
    legacy = legacy_development_key(None)
    assert (
        legacy
        == base64.urlsafe_b64encode(hashlib.sha256(b"django-insecure-development-only-key").digest()).decode()
    )
    fresh = field_encryption_keys(tmp_path / "fresh", None, data_exists=False)
    assert "," not in fresh and not (tmp_path / "fresh" / LEGACY_MARKER).exists()
    # Data, no key file: the folder was made when the key was derived from the source.
    old = tmp_path / "old"
    keys = field_encryption_keys(old, None, data_exists=True).split(",")
    assert keys == [field_encryption_key(old), legacy] and (old / LEGACY_MARKER).exists()
    assert field_encryption_keys(old, None, data_exists=True).split(",") == keys  # until rotated
    (old / LEGACY_MARKER).unlink()  # what `make run` does once rotate_encryption_key succeeded
    assert field_encryption_keys(old, None, data_exists=True) == keys[0]
