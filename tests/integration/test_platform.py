"""Probes, API docs, tenant-prefixed cache keys, production settings."""

import os
import re
import subprocess
import sys
from pathlib import Path

from django.core.cache import cache
from django_tenants.utils import schema_context

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_and_readyz(client, db):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"postgresql": "ok", "redis": "ok"}}


def test_readyz_reports_redis_down(client, db, settings):
    settings.CACHES = {
        **settings.CACHES,
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"},
    }
    from django.core.cache import caches

    caches._settings = None  # type: ignore[attr-defined]
    try:
        response = client.get("/readyz")
    finally:
        caches._settings = None  # type: ignore[attr-defined]
    assert response.status_code == 503
    assert response.json()["checks"]["redis"].startswith("error")
    assert response.json()["checks"]["postgresql"] == "ok"


def test_openapi_schema_and_docs(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    for path in (
        "/api/v1/auth/signup/",
        "/api/v1/orgs/{org_slug}/members/",
        "/api/v1/orgs/{org_slug}/audit-log/",
    ):
        assert path in document["paths"], sorted(document["paths"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    # Served from our own static files, not a CDN. (Not a search for "cdn" in the page: its random
    # CSRF token contains those three letters now and then.)
    assets = re.findall(rb'(?:src|href)="([^"]+)"', docs.content)
    assert assets and all(asset.startswith(b"/static/drf_spectacular_sidecar/") for asset in assets), assets


def test_home_sends_people_to_the_console(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/console/"


def test_cache_keys_are_tenant_prefixed(world):
    with schema_context(world.a.org.schema_name):
        cache.set("plan", "pro")
        assert cache.get("plan") == "pro"
    with schema_context(world.b.org.schema_name):
        assert cache.get("plan") is None
        cache.set("plan", "free")
    with schema_context(world.a.org.schema_name):
        assert cache.get("plan") == "pro"
    assert cache.get("plan") is None  # the public schema has its own keys too


def test_production_settings_pass_check_deploy():
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SAAS_"))},
        "SAAS_ENV": "production",
        "DJANGO_SECRET_KEY": "a" * 20 + "-production-secret-key-with-enough-entropy-0123456789",
        "DJANGO_ALLOWED_HOSTS": "api.example.com",
        "FIELD_ENCRYPTION_KEY": "k7m2c9S0b7b8Wl0iVqQnB6k2mB5xJ0yD1pZ3cR4sT6U=",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_secrets():
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SAAS_", "FIELD_"))},
        "SAAS_ENV": "production",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_the_emailed_link_opens_a_page_that_uses_the_api(client, db):
    response = client.get("/invitations/some-secret")
    assert response.status_code == 200
    assert b"/api/v1/invitations/accept/" in response.content
    # Once accepted, the console opens on the organization joined (the console's route
    # /orgs/<slug>, frontend/src/App.tsx), not the API docs.
    assert b'"/console/orgs/" + encodeURIComponent(slug)' in response.content
    assert b"location.assign(consoleUrl(invitation.organization.slug))" in response.content
    assert b"/api/docs/" not in response.content
    # The secret in the URL must not leak to other sites through the Referer header.
    assert b'name="referrer" content="no-referrer"' in response.content
