"""A missing (or extra) trailing slash on an /api/ or /agent/ path: the request is routed as meant,
for every method, never redirected and never a 500 (core.api.trailing_slash)."""

import re

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tenants.models import Membership
from tenants.roles import Role

METHODS = ("get", "head", "post", "put", "patch", "delete")


def _api_paths(slug: str) -> list[str]:
    """Every path of the OpenAPI document, its parameters filled in, and the rest of /api/ (the
    agent API, served beside Django: tests/integration/gateways/test_agent_api.py)."""
    document = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = [
        re.sub(r"\{[^}]+\}", "1", template.replace("{org_slug}", slug)) for template in document["paths"]
    ]
    assert len(paths) > 30, paths
    return [*paths, "/api/schema/", "/api/docs/"]


def _toggled(path: str) -> str:
    return path[:-1] if path.endswith("/") else f"{path}/"


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
def test_every_method_on_every_api_path_answers_the_same_without_its_slash(world, settings, debug):
    # Under DEBUG Django's APPEND_SLASH raises RuntimeError for a slashless POST, PUT or PATCH; in
    # production it answers 301, which clients follow as a GET. Neither happens here.
    settings.DEBUG = debug
    client = APIClient()  # anonymous: every answer is the same however often it is asked
    for path in _api_paths(world.a.org.slug):
        for method in METHODS:
            cache.clear()  # no throttle counts across the two requests
            canonical = getattr(client, method)(path, {}, format="json")
            cache.clear()
            other = getattr(client, method)(_toggled(path), {}, format="json")
            assert other.status_code < 500, (method, _toggled(path), other.status_code)
            assert other.status_code == canonical.status_code, (
                method,
                path,
                canonical.status_code,
                other.status_code,
            )


def test_writes_without_the_slash_reach_their_views(world):
    slug = world.a.org.slug
    owner = world.a.client(Role.OWNER)
    api = f"/api/v1/orgs/{slug}"

    # POST, DELETE: an API token.
    created = owner.post(f"{api}/tokens", {"name": "ci", "role_ceiling": "viewer"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["token"].startswith("sgw_")
    assert owner.delete(f"{api}/tokens/{created.json()['id']}").status_code == 204

    # PATCH: a member's role.
    viewer: Membership = world.a.members[Role.VIEWER]
    changed = owner.patch(f"{api}/members/{viewer.id}", {"role": Role.DEVELOPER}, format="json")
    assert changed.status_code == 200, changed.content
    viewer.refresh_from_db()
    assert viewer.role == Role.DEVELOPER

    # POST, PUT, DELETE in a cluster's catalog.
    cluster = owner.post(f"{api}/clusters", {"name": "prod"}, format="json")
    assert cluster.status_code == 201, cluster.content
    upstreams = f"{api}/clusters/{cluster.json()['id']}/upstreams"
    upstream = owner.post(
        upstreams, {"name": "backend", "targets": [{"host": "10.0.0.5", "port": 80}]}, format="json"
    )
    assert upstream.status_code == 201, upstream.content
    replaced = owner.put(
        f"{upstreams}/{upstream.json()['id']}",
        {"name": "backend", "targets": [{"host": "10.0.0.6", "port": 8080}]},
        format="json",
    )
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["targets"][0]["host"] == "10.0.0.6"
    assert owner.delete(f"{upstreams}/{upstream.json()['id']}").status_code == 204
    assert owner.get(upstreams).json()["results"] == []

    # The invitation email's own example: a POST that reaches the view and is told what is missing.
    refused = APIClient().post("/api/v1/invitations/accept", {}, format="json")
    assert refused.status_code == 400
    assert "token" in refused.json()["errors"]


def test_a_path_that_exists_in_neither_form_is_a_json_404(db):
    for method in METHODS:
        response = getattr(APIClient(), method)("/api/v1/no-such-thing", {}, format="json")
        assert response.status_code == 404
        if method != "head":
            assert response.json() == {"detail": "Not found."}
