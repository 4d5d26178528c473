"""The developer portal through its pages and the team's API: a team publishes the Petstore, an
outside developer signs up, verifies, creates an application, subscribes, and what the gateway
will enforce (the snapshot) follows each step; isolation from the console and other portals."""

import re
from pathlib import Path

import pytest
from django.core import mail
from django.test import Client
from django_tenants.utils import schema_context

from saas.gateways.models import ConfigSnapshot
from saas.gateways.snapshots import snapshot_document
from tenants.models import Membership, User
from tenants.roles import Role

PETSTORE = Path(__file__).resolve().parents[2] / "data" / "openapi" / "petstore-v3.yaml"
PASSWORD = "portal passphrase 2026"


def _latest(cw, side="a"):
    schema = getattr(cw.world, side).org.schema_name
    cluster_id = cw.cluster_id if side == "a" else cw.other_cluster_id
    with schema_context(schema):
        return snapshot_document(
            ConfigSnapshot.objects.filter(cluster_id=cluster_id).order_by("-version").first()
        )


def _portal_api(cw, side="a", role=Role.ADMIN):
    client = cw.client(role, side)
    slug = getattr(cw.world, side).org.slug
    return client, f"/api/v1/orgs/{slug}/portal/"


def _csrf(page) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.content.decode())
    assert found, page.content.decode()[:500]
    return found.group(1)


def _publish_petstore(cw, side="a", signup_mode="open", limit=(3, 60)) -> dict:
    client, base = _portal_api(cw, side)
    imported = client.post(
        cw.url("openapi-import/?service=petstore", side=side),
        PETSTORE.read_text(),
        content_type="application/yaml",
    )
    assert imported.status_code == 201, imported.content
    answer = client.patch(
        f"{base}settings/", {"enabled": True, "title": "Acme APIs", "signup_mode": signup_mode}, format="json"
    )
    assert answer.status_code == 200, answer.content
    product = client.post(
        f"{base}products/",
        {
            "name": "Petstore",
            "description": "# Pets\n\nEvery **pet**.<script>alert(1)</script>",
            "published": True,
        },
        format="json",
    )
    assert product.status_code == 201, product.content
    product_id = product.json()["id"]
    cluster_id = cw.cluster_id if side == "a" else cw.other_cluster_id
    version = client.post(
        f"{base}products/{product_id}/versions/",
        {
            "name": "v1",
            "cluster_id": cluster_id,
            "service": "petstore",
            "gateway_url": "https://api.acme.test",
        },
        format="json",
    )
    assert version.status_code == 201, version.content
    plan = client.post(
        f"{base}products/{product_id}/plans/",
        {"name": "free", "limit_count": limit[0], "time_window": limit[1]},
        format="json",
    )
    assert plan.status_code == 201, plan.content
    return {"product": product_id, "version": version.json(), "plan": plan.json()}


def _sign_up_and_in(portal: Client, base: str, email: str, capture) -> None:
    page = portal.get(f"{base}signup")
    assert page.status_code == 200
    with capture(execute=True):
        answer = portal.post(
            f"{base}signup", {"csrf": _csrf(page), "email": email, "name": "Dev", "password": PASSWORD}
        )
    assert answer.status_code == 200, answer.content
    link = re.search(r"https?://\S+/verify/\S+", mail.outbox[-1].body).group(0)
    assert portal.get(link[link.index("/portal/") :]).status_code == 200
    page = portal.get(f"{base}signin")
    answer = portal.post(f"{base}signin", {"csrf": _csrf(page), "email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.content


def test_a_developer_signs_up_subscribes_and_the_gateway_enforces_the_plan(
    cw, django_capture_on_commit_callbacks
):
    published = _publish_petstore(cw)
    document = _latest(cw)
    routes = {r["name"]: r for r in document["routes"]}
    get_pet = {p["name"]: p["config"] for p in routes["getPetById"]["plugins"]}
    label = f"portal-version-{published['version']['id']}"
    assert "key-auth" in get_pet and get_pet["consumer-restriction"]["labels"] == {label: "subscribed"}

    slug = cw.world.a.org.slug
    base = f"/portal/{slug}/"
    portal = Client()
    home = portal.get(base)
    assert home.status_code == 200 and b"Petstore" in home.content
    # The list shows the description's words, not its Markdown.
    assert b"Pets Every pet.&lt;script&gt;" in home.content
    assert (
        b"# Pets" not in home.content and b"**" not in home.content and b"<script>alert" not in home.content
    )
    product = portal.get(f"{base}products/petstore/")
    assert b"<h1>Pets</h1>" in product.content and b"<script>alert" not in product.content
    assert b"3 calls per minute" in product.content
    spec = portal.get(f"{base}products/petstore/v1/openapi.json").json()
    assert spec["servers"] == [{"url": "https://api.acme.test/api/v3"}]
    assert spec["components"]["securitySchemes"] == {
        "gateway": {"type": "apiKey", "in": "header", "name": "apikey"}
    }

    _sign_up_and_in(portal, base, "dev@partner.test", django_capture_on_commit_callbacks)
    page = portal.get(f"{base}apps")
    created = portal.post(f"{base}apps", {"csrf": _csrf(page), "name": "Shop", "description": ""})
    assert created.status_code == 201
    key = re.search(r'<code id="new-key">([^<]+)</code>', created.content.decode()).group(1)
    with schema_context(cw.world.a.org.schema_name):
        from saas.portal.models import Application, ProductPlan

        application = Application.objects.get(name="Shop")
        plan = ProductPlan.objects.get(name="free")
    app_id = application.id
    answer = portal.post(
        f"{base}apps/{app_id}",
        {
            "csrf": _csrf(created),
            "action": "subscribe",
            "version": published["version"]["id"],
            "plan": plan.id,
        },
    )
    assert answer.status_code == 200 and b"Subscribed to Petstore v1" in answer.content
    consumers = {c["username"]: c for c in _latest(cw)["consumers"]}
    consumer = consumers[f"portal-app-{app_id}"]
    assert consumer["labels"] == {
        "managed-by": "portal",
        "portal-application": str(app_id),
        label: "subscribed",
    }
    assert [p["name"] for p in consumer["plugins"]] == ["limit-count"]
    assert consumer["plugins"][0]["config"]["count"] == 3 and consumer.get("enabled", True)
    assert [c["type"] for c in consumer["credentials"]] == ["key-auth"]
    assert key not in str(_latest(cw))  # the gateway gets only the key's digest

    client, api = _portal_api(cw)
    developers = client.get(f"{api}developers/").json()
    assert developers[0]["email"] == "dev@partner.test" and developers[0]["applications"][0]["name"] == "Shop"
    assert (
        client.patch(f"{api}applications/{app_id}/", {"status": "suspended"}, format="json").status_code
        == 200
    )
    assert _latest(cw)["consumers"][0]["enabled"] is False
    assert b"suspended" in portal.get(f"{base}apps/{app_id}").content
    assert (
        client.patch(f"{api}applications/{app_id}/", {"status": "active"}, format="json").status_code == 200
    )
    assert "enabled" not in _latest(cw)["consumers"][0]

    # A rotated key replaces the old one at the gateway.
    before = _latest(cw)["consumers"][0]["credentials"]
    rotated = portal.post(f"{base}apps/{app_id}", {"csrf": _csrf(answer), "action": "rotate"})
    assert rotated.status_code == 200 and b"new-key" in rotated.content
    assert _latest(cw)["consumers"][0]["credentials"] != before

    # Every change of what the gateway enforces is in the audit log.
    actions = {
        e["action"] for e in client.get(f"/api/v1/orgs/{slug}/audit-log/?page_size=200").json()["results"]
    }
    assert {
        "portal.subscription.create",
        "portal.application.suspend",
        "portal.application.rotate_key",
    } <= actions

    # A suspended developer's sessions end, and they cannot sign in again until reinstated.
    developer_id = developers[0]["id"]
    assert client.post(f"{api}developers/{developer_id}/suspend/").status_code == 200
    assert portal.get(f"{base}apps").status_code == 303
    page = portal.get(f"{base}signin")
    refused = portal.post(
        f"{base}signin", {"csrf": _csrf(page), "email": "dev@partner.test", "password": PASSWORD}
    )
    assert refused.status_code == 403 and b"suspended" in refused.content
    assert client.post(f"{api}developers/{developer_id}/reinstate/").status_code == 200

    # The team deletes the version: the subscription ends, and the routes close to everyone
    # rather than open to every consumer of the cluster.
    product_url = f"{api}products/{published['product']}/versions/{published['version']['id']}/"
    assert client.delete(product_url).status_code == 204
    document = _latest(cw)
    assert not document["consumers"]
    get_pet = {
        p["name"]: p["config"] for p in {r["name"]: r for r in document["routes"]}["getPetById"]["plugins"]
    }
    assert get_pet["consumer-restriction"]["labels"] == {"portal-closed": "true"}


def test_approval_and_invitation_sign_ups(cw, django_capture_on_commit_callbacks):
    _publish_petstore(cw, signup_mode="approval")
    slug = cw.world.a.org.slug
    base = f"/portal/{slug}/"
    portal = Client()
    _sign_up_and_in(portal, base, "pending@partner.test", django_capture_on_commit_callbacks)
    page = portal.get(f"{base}apps")
    assert b"waiting for the team" in page.content
    refused = portal.post(f"{base}apps", {"csrf": _csrf(page), "name": "Early"})
    assert refused.status_code == 400 and b"waiting for the team" in refused.content

    client, api = _portal_api(cw)
    pending = client.get(f"{api}developers/?status=pending").json()
    assert [d["email"] for d in pending] == ["pending@partner.test"]
    assert client.post(f"{api}developers/{pending[0]['id']}/approve/").status_code == 200
    assert portal.post(f"{base}apps", {"csrf": _csrf(page), "name": "Now"}).status_code == 201
    # A viewer may look, not decide.
    viewer, _ = _portal_api(cw, role=Role.VIEWER)
    assert viewer.get(f"{api}developers/").status_code == 200
    assert viewer.post(f"{api}developers/{pending[0]['id']}/suspend/").status_code == 403

    assert client.patch(f"{api}settings/", {"signup_mode": "invitation"}, format="json").status_code == 200
    stranger = Client()
    page = stranger.get(f"{base}signup")
    answer = stranger.post(f"{base}signup", {"csrf": _csrf(page), "email": "x@y.test", "password": PASSWORD})
    assert answer.status_code == 400 and b"invitation" in answer.content
    with django_capture_on_commit_callbacks(execute=True):
        invited = client.post(f"{api}invitations/", {"email": "guest@partner.test"}, format="json")
    assert invited.status_code == 201 and "guest@partner.test" in mail.outbox[-1].to
    link = invited.json()["link"]
    page = stranger.get(link[link.index("/portal/") :])
    answer = stranger.post(
        f"{base}signup",
        {
            "csrf": _csrf(page),
            "email": "guest@partner.test",
            "password": PASSWORD,
            "invitation": link.split("=")[-1],
        },
    )
    assert answer.status_code == 200 and b"Check your email" in answer.content


def test_portal_accounts_are_not_console_accounts_and_stay_in_their_portal(
    cw, django_capture_on_commit_callbacks
):
    _publish_petstore(cw)
    _publish_petstore(cw, side="b")
    a, b = cw.world.a.org.slug, cw.world.b.org.slug
    users, memberships = User.objects.count(), Membership.objects.count()
    portal = Client()
    _sign_up_and_in(portal, f"/portal/{a}/", "dev@partner.test", django_capture_on_commit_callbacks)
    assert (User.objects.count(), Membership.objects.count()) == (users, memberships)
    assert portal.get(f"/portal/{a}/apps").status_code == 200
    # The session cookie is the portal's, for its path only: neither the console API nor
    # another organization's portal takes it.
    cookie = portal.cookies["portal_session"]
    assert cookie["path"] == f"/portal/{a}/" and cookie["httponly"]
    assert portal.get(f"/api/v1/orgs/{a}/portal/developers/").status_code in (401, 403)
    assert portal.get(f"/api/v1/orgs/{a}/clusters/").status_code in (401, 403)
    other = Client()
    other.cookies["portal_session"] = cookie.value
    assert other.get(f"/portal/{b}/apps").status_code == 303  # to B's sign-in
    # The team of B sees none of A's developers.
    client, api = _portal_api(cw, side="b")
    assert client.get(f"{api}developers/").json() == []


def test_forms_need_the_portals_token_and_reset_links_work_once(cw, django_capture_on_commit_callbacks):
    _publish_petstore(cw)
    base = f"/portal/{cw.world.a.org.slug}/"
    portal = Client()
    _sign_up_and_in(portal, base, "dev@partner.test", django_capture_on_commit_callbacks)
    assert portal.post(f"{base}apps", {"name": "No token"}).status_code == 403
    page = portal.get(f"{base}apps")
    assert (
        portal.post(
            f"{base}apps", {"csrf": _csrf(page), "name": "Cross"}, HTTP_ORIGIN="https://evil.test"
        ).status_code
        == 403
    )

    stranger = Client()
    page = stranger.get(f"{base}forgot")
    with django_capture_on_commit_callbacks(execute=True):
        stranger.post(f"{base}forgot", {"csrf": _csrf(page), "email": "dev@partner.test"})
    link = re.search(r"https?://\S+/reset/\S+", mail.outbox[-1].body).group(0)
    path = link[link.index("/portal/") :]
    page = stranger.get(path)
    assert stranger.post(path, {"csrf": _csrf(page), "password": "a brand new passphrase"}).status_code == 200
    assert b"expired or was used" in stranger.get(path).content
    # The reset ended the developer's sessions.
    assert portal.get(f"{base}apps").status_code == 303


@pytest.mark.parametrize(
    "body", [{"signup_mode": "everyone"}, {"primary_color": "red"}, {"logo_url": "http://x.test/a.png"}]
)
def test_bad_settings_are_refused_by_field(cw, body):
    client, api = _portal_api(cw)
    answer = client.patch(f"{api}settings/", body, format="json")
    assert answer.status_code == 400
    assert set(answer.json()["errors"]) == set(body)
    assert client.get(f"{api}settings/").json()["signup_mode"] == "approval"  # nothing written


def test_a_disabled_portal_is_not_found(cw):
    assert Client().get(f"/portal/{cw.world.a.org.slug}/").status_code == 404
    assert Client().get("/portal/no-such-org/").status_code == 404


def test_bad_input_in_the_pages_is_a_400_or_404_never_a_500(cw, django_capture_on_commit_callbacks):
    _publish_petstore(cw)
    base = f"/portal/{cw.world.a.org.slug}/"
    portal = Client()
    _sign_up_and_in(portal, base, "dev@partner.test", django_capture_on_commit_callbacks)
    page = portal.get(f"{base}apps")
    csrf = _csrf(page)
    assert portal.get(f"{base}apps/%C2%B2").status_code == 404
    assert portal.post(f"{base}apps", {"csrf": csrf, "name": "x" * 101}).status_code == 400
    assert portal.post(f"{base}apps", {"csrf": csrf, "name": "a\x00b"}).status_code == 400
    created = portal.post(f"{base}apps", {"csrf": csrf, "name": "Shop"})
    app = re.search(r'action="[^"]*/apps/(\d+)"', created.content.decode()).group(1)
    answer = portal.post(
        f"{base}apps/{app}", {"csrf": csrf, "action": "subscribe", "version": "²", "plan": "1"}
    )
    assert answer.status_code == 400 and b"Choose a product version" in answer.content
    stranger = Client()
    page = stranger.get(f"{base}signup")
    for email in ("", "not-an-address", "a\x00@x.test"):
        answer = stranger.post(f"{base}signup", {"csrf": _csrf(page), "email": email, "password": PASSWORD})
        assert answer.status_code == 400, email
    page = stranger.get(f"{base}signin")
    answer = stranger.post(f"{base}signin", {"csrf": _csrf(page), "email": "x\x00", "password": "p"})
    assert answer.status_code == 400


@pytest.mark.parametrize(
    "next_page", ["https://evil.test/", "//evil.test/", "/\\evil.test", "/portal/x/\\evil"]
)
def test_sign_in_goes_only_to_the_portals_own_pages(cw, django_capture_on_commit_callbacks, next_page):
    _publish_petstore(cw)
    base = f"/portal/{cw.world.a.org.slug}/"
    portal = Client()
    _sign_up_and_in(portal, base, "dev@partner.test", django_capture_on_commit_callbacks)
    other = Client()
    page = other.get(f"{base}signin")
    answer = other.post(
        f"{base}signin",
        {"csrf": _csrf(page), "email": "dev@partner.test", "password": PASSWORD, "next": next_page},
    )
    assert answer.status_code == 303 and answer["Location"] == f"{base}apps"


def test_a_yaml_alias_bomb_is_refused(cw):
    client, api = _portal_api(cw)
    product = client.post(f"{api}products/", {"name": "Bomb"}, format="json").json()
    bomb = "openapi: 3.0.0\npaths: {}\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    answer = client.post(
        f"{api}products/{product['id']}/versions/",
        {"name": "v1", "cluster_id": cw.cluster_id, "route_ids": [1], "openapi": bomb},
        format="json",
    )
    assert answer.status_code == 400 and "openapi" in answer.json()["errors"]


def test_a_custom_host_name_serves_the_portal_at_its_root(cw, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "developers.acme.test"]
    _publish_petstore(cw)
    client, api = _portal_api(cw)
    answer = client.patch(f"{api}settings/", {"custom_host": "Developers.Acme.test."}, format="json")
    assert answer.status_code == 200 and answer.json()["url"] == "http://developers.acme.test/"
    home = Client(HTTP_HOST="developers.acme.test").get("/")
    assert home.status_code == 200 and b'href="/products/petstore/"' in home.content
    # One organization per host name.
    other, other_api = _portal_api(cw, side="b")
    taken = other.patch(f"{other_api}settings/", {"custom_host": "developers.acme.test"}, format="json")
    assert taken.status_code == 400 and "custom_host" in taken.json()["errors"]
    # Let go, the host answers nothing of the portal any more.
    assert client.patch(f"{api}settings/", {"custom_host": ""}, format="json").status_code == 200
    assert (
        other.patch(
            f"{other_api}settings/", {"custom_host": "developers.acme.test"}, format="json"
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("markdown", "shown"),
    [
        (
            "Pets of **every** kind, from the [Swagger](https://x.test) `Petstore`.",
            "Pets of every kind, from the Swagger Petstore.",
        ),
        ("## Orders\n\n- list\n- *create*\n\n```\ncurl ...\n```\n![diagram](d.png)", "Orders list create"),
        ("", ""),
        (" ".join(["word"] * 31), " ".join(["word"] * 30) + "…"),
    ],
)
def test_the_api_list_shows_a_descriptions_words_without_its_markdown(markdown: str, shown: str) -> None:
    from saas.portal.web.views import excerpt

    assert excerpt(markdown) == shown
