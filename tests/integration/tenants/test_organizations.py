"""Create more organizations, list mine, rename; slugs are unique and URL-safe."""

from tenants.models import Organization
from tenants.roles import Role
from tests.factories import client_for, make_org, make_user


def test_create_list_and_rename(db):
    user = make_user()
    client = client_for(user)
    first = client.post("/api/v1/orgs/", {"name": "Zeta Corp"}, format="json")
    second = client.post("/api/v1/orgs/", {"name": "Alpha Labs", "slug": "alpha"}, format="json")
    assert first.status_code == second.status_code == 201
    assert first.json()["slug"] == "zeta-corp"
    assert second.json() | {"id": 0, "created_at": ""} == {
        "id": 0,
        "name": "Alpha Labs",
        "slug": "alpha",
        "created_at": "",
        "role": "owner",
    }
    listed = client.get("/api/v1/orgs/").json()
    assert listed["count"] == 2
    assert [o["slug"] for o in listed["results"]] == ["alpha", "zeta-corp"]

    renamed = client.patch(
        "/api/v1/orgs/alpha/", {"name": "Alpha Laboratories", "slug": "alpha-labs"}, format="json"
    )
    assert renamed.status_code == 200
    assert renamed.json()["slug"] == "alpha-labs"
    assert client.get("/api/v1/orgs/alpha/").status_code == 404
    assert client.get("/api/v1/orgs/alpha-labs/").json()["name"] == "Alpha Laboratories"
    # The schema does not move with the slug.
    org = Organization.objects.get(slug="alpha-labs")
    assert org.schema_name.startswith("org_")


def test_same_name_gets_a_distinct_slug(db):
    client = client_for(make_user())
    slugs = {client.post("/api/v1/orgs/", {"name": "Acme"}, format="json").json()["slug"] for _ in range(3)}
    assert len(slugs) == 3
    assert "acme" in slugs


def test_unicode_names_get_url_safe_slugs(db):
    client = client_for(make_user())
    response = client.post("/api/v1/orgs/", {"name": "Café Zürich 東京"}, format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "Café Zürich 東京"
    assert response.json()["slug"] == "cafe-zurich"
    only_cjk = client.post("/api/v1/orgs/", {"name": "東京"}, format="json")
    assert only_cjk.status_code == 201
    assert only_cjk.json()["slug"].startswith("org")


def test_template_is_never_listed_or_reachable(db):
    user = make_user()
    make_org(user)
    client = client_for(user)
    assert all(o["slug"] != "_template" for o in client.get("/api/v1/orgs/").json()["results"])
    assert client.get("/api/v1/orgs/_template/").status_code == 404


def test_viewer_cannot_rename(world):
    response = world.a.client(Role.VIEWER).patch(
        f"/api/v1/orgs/{world.a.org.slug}/", {"name": "x"}, format="json"
    )
    assert response.status_code == 403
