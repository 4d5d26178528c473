"""The console's Developer portal page in Chromium, against the control plane as `make run` serves
it: an admin enables the portal, creates a product, adds a version over the Petstore imported into
a cluster (its OpenAPI document uploaded from a file), a plan of 3 calls a minute, and publishes
it; the version's routes then require an API key and admit only subscribers. With a developer
signed up and another's application subscribed, the admin approves the first and suspends the
application; the catalog warns before a hand edit of the consumer the portal manages for it.
Screenshots in test-artifacts/console/80-*."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connections
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from tenants.models import Organization
from tenants.roles import Role
from tests.e2e.console_steps import (
    button,
    dialog,
    pick,
    read_api,
    screenshots,
    sign_in_as_member,
    textbox,
)
from tests.factories import make_org_with_cluster

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PETSTORE = Path(__file__).resolve().parents[1] / "data" / "openapi" / "petstore-v3.yaml"
AXE = Path(__file__).resolve().parents[2] / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def post_api(page: Page, url: str, body: str, content_type: str) -> dict:
    """A POST to the API with the browser's own session (and its CSRF token)."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    answer = page.request.post(url, data=body, headers={"Content-Type": content_type, "X-CSRFToken": token})
    assert answer.ok, answer.text()
    return answer.json()


def no_serious_violations(page: Page, name: str) -> None:
    """axe-core finds nothing serious or critical in the page's main region. Colour contrast
    aside: the console's theme (Mantine's default colours: its blue links, dimmed text, light
    badges) falls short of 4.5:1 on every page alike, which the theme will fix."""
    if not AXE.is_file():  # a checkout whose console has no axe-core yet
        return
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async () => (await axe.run(document.querySelector('main'), {
            resultTypes: ['violations'], rules: {'color-contrast': {enabled: false}},
        })).violations"""
    )
    serious = [
        f"{v['id']}: {v['help']} at {[(n['target'], n['html'][:120]) for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{name}: {serious}"


def _signed_up_developers(org: Organization, product_id: int) -> None:
    """Grace waits for approval; Ada's application `mobile` is subscribed to Petstore v1 on free."""
    from core import clock
    from saas.gateways.services import Author
    from saas.portal import applications
    from saas.portal.models import PortalDeveloper, ProductPlan, ProductVersion
    from tenants.audit import Actor

    with schema_context(org.schema_name):
        author = Author(actor=Actor(user=None, name="portal:ada@example.com"), organization=org)
        PortalDeveloper.objects.create(email="grace@example.com", name="Grace", status="pending")
        ada = PortalDeveloper(
            email="ada@example.com", name="Ada", status="active", email_verified_at=clock.now()
        )
        ada.set_unusable_password()
        ada.save()
        application, _ = applications.create_application(author, ada, name="mobile", description="")
        applications.subscribe(
            author,
            application,
            ProductVersion.objects.get(product_id=product_id, name="v1"),
            ProductPlan.objects.get(product_id=product_id, name="free"),
        )
    connections.close_all()


def test_a_member_publishes_the_petstore_and_manages_its_developers(page: Page, control_plane: str) -> None:
    org, _, cluster = make_org_with_cluster("production")
    connections.close_all()
    api = f"{control_plane}/api/v1/orgs/{org.slug}"
    sign_in_as_member(page, control_plane, org, "admin@example.com", Role.ADMIN)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    # The Petstore imported into the cluster first (as `petstore`: one route per operation).
    imported = post_api(
        page,
        f"{api}/clusters/{cluster.id}/openapi-import/?service=petstore",
        PETSTORE.read_text(),
        "application/yaml",
    )
    route_ids = sorted(route["id"] for route in imported["routes"])
    assert len(route_ids) > 10

    # The portal, off at first: its settings, and where developers will find it.
    page.get_by_role("link", name="Developer portal").click()
    expect(page.get_by_role("heading", name="Developer portal")).to_be_visible()
    portal_url = f"{control_plane}/portal/{org.slug}/"
    expect(page.get_by_role("link", name="Open portal")).to_have_attribute("href", portal_url)
    no_serious_violations(page, "settings")
    screenshots(page, "80-portal-settings")
    page.get_by_text("Portal enabled", exact=True).click()  # its label, as a user clicks it
    expect(page.get_by_role("switch", name="Portal enabled")).to_be_checked()
    textbox(page, "Title").fill("Acme APIs")
    pick(page, page, "Sign-up", "Open: anyone with a verified email")
    button(page, "Save settings").click()
    expect(page.get_by_text(f"Saved. Developers find the portal at {portal_url}")).to_be_visible()
    settings = read_api(page, f"{api}/portal/settings/")
    assert (settings["enabled"], settings["title"], settings["signup_mode"]) == (True, "Acme APIs", "open")

    # A product, with a version over the imported service, its document uploaded from a file.
    page.get_by_role("tab", name="Products").click()
    expect(page.get_by_text("No products yet.")).to_be_visible()
    button(page, "New product").click()
    form = dialog(page)
    textbox(form, "Name").fill("Petstore")
    textbox(form, "Description").fill("Pets of **every** kind, from the Swagger Petstore.")
    screenshots(page, "81-portal-new-product")
    button(form, "Create product").click()
    expect(dialog(page)).to_have_count(0)
    card = page.get_by_role("region", name="Petstore")
    expect(card.get_by_text("draft", exact=True)).to_be_visible()

    button(card, "Add version to Petstore").click()
    form = dialog(page)
    textbox(form, "Name").fill("v1")
    pick(page, form, "Cluster", "production")
    form.get_by_role("radio", name=re.compile("^Every route of a service")).check()
    pick(page, form, "Service", "petstore")
    with page.expect_file_chooser() as chooser:
        button(form, "Upload a file").click()
    chooser.value.set_files(PETSTORE)
    expect(form.get_by_text(re.compile("^Read from petstore-v3.yaml"))).to_be_visible()
    expect(textbox(form, "OpenAPI document")).to_have_value(re.compile("Swagger Petstore - OpenAPI 3.0"))
    textbox(form, "Gateway URL").fill("https://api.acme.test")
    screenshots(page, "82-portal-new-version")
    button(form, "Add version").click()
    expect(dialog(page)).to_have_count(0)
    expect(card.get_by_role("table", name="Versions of Petstore")).to_contain_text("production")

    # A plan of 3 calls a minute; then the product is published.
    button(card, "Add plan to Petstore").click()
    form = dialog(page)
    textbox(form, "Name").fill("free")
    textbox(form, "Calls").fill("3")
    pick(page, form, "Per", "minute")
    expect(form.get_by_text("At most 3 / minute for each subscribed application.")).to_be_visible()
    button(form, "Add plan").click()
    expect(dialog(page)).to_have_count(0)
    expect(card.get_by_role("table", name="Plans of Petstore")).to_contain_text("3 / minute")
    button(card, "Publish Petstore").click()
    expect(card.get_by_text("published", exact=True)).to_be_visible()
    no_serious_violations(page, "products")
    screenshots(page, "83-portal-products")

    (product,) = read_api(page, f"{api}/portal/products/")
    (version,) = product["versions"]
    assert product["published"] and product["auth_type"] == "key-auth"
    assert version["route_ids"] == route_ids and version["has_openapi"]
    assert version["gateway_url"] == "https://api.acme.test"
    assert [(p["name"], p["limit_count"], p["time_window"]) for p in product["plans"]] == [("free", 3, 60)]
    document = read_api(page, f"{api}/portal/products/{product['id']}/versions/{version['id']}/openapi/")
    assert document["info"]["title"] == "Swagger Petstore - OpenAPI 3.0"
    # Its routes now take an API key and admit the version's subscribers only.
    routes = read_api(page, f"{api}/clusters/{cluster.id}/routes/?page_size=200")["results"]
    guarded = {
        route["id"] for route in routes if {"key-auth", "consumer-restriction"} <= set(route["plugins"])
    }
    assert guarded == set(route_ids)

    # Developers: Grace waits for approval; Ada's application is subscribed.
    _signed_up_developers(org, product["id"])
    page.get_by_role("tab", name="Developers").click()
    developers = page.get_by_role("table", name="Developers")
    expect(developers).to_contain_text("waiting for approval")
    expect(developers).to_contain_text("Petstore v1 on free")
    no_serious_violations(page, "developers")
    screenshots(page, "84-portal-developers")
    button(developers, "Approve grace@example.com").click()
    expect(button(developers, "Suspend developer grace@example.com")).to_be_visible()
    button(developers, "Suspend app mobile").click()
    expect(dialog(page)).to_contain_text("Its credentials stop working at the gateway within a second")
    screenshots(page, "85-portal-suspend-application")
    button(dialog(page), "Suspend").click()
    expect(dialog(page)).to_have_count(0)
    expect(button(developers, "Reinstate app mobile")).to_be_visible()
    by_email = {d["email"]: d for d in read_api(page, f"{api}/portal/developers/")}
    assert by_email["grace@example.com"]["status"] == "active"
    assert by_email["ada@example.com"]["applications"][0]["status"] == "suspended"

    # The consumer the portal keeps for the application: the catalog warns before a hand edit.
    page.get_by_role("link", name="Clusters").click()
    page.get_by_role("table", name="Clusters").get_by_role("link", name="production").click()
    page.get_by_role("tab", name="Catalog").click()
    page.get_by_role("tab", name="Consumers", exact=True).click()
    consumers = page.get_by_role("table", name="Consumers")
    expect(consumers).to_contain_text("managed-by: portal")
    consumers.get_by_role("button", name=re.compile("^Edit portal-app-")).click()
    form = dialog(page)
    expect(form.get_by_text("Managed by the developer portal")).to_be_visible()
    button(form, "Save").click()
    confirm = page.get_by_role("dialog", name="Save a consumer the portal manages?")
    expect(confirm).to_contain_text("The developer portal overwrites these edits")
    screenshots(page, "86-portal-managed-consumer")
    button(confirm, "Cancel").click()
    expect(confirm).to_have_count(0)
