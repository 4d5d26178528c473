"""The developer portal end to end, in Chromium, against a real gateway: the team publishes the
Petstore with a plan; an outside developer signs up, confirms the emailed link, creates an
application, subscribes and gets a key; calls go through HAProxy (200), past the plan (429),
show on the usage page; the team suspends the application (401 at the next call) and reinstates
it (200); the reference's try-it panel calls the gateway from the browser, across origins, with
the key (200) and without it (401). Every portal page passes axe-core with no serious or
critical violation."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from django.db import connections
from django.test import override_settings
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from saas.launcher.services import free_port
from tests.control_plane import (
    ROOT,
    start_agent,
    start_control_plane,
    start_echo_upstream,
    stop_gateway,
    wait_for,
    wait_until_up,
)
from tests.e2e.console_steps import control_plane_env, screenshot
from tests.factories import make_org_with_cluster

pytestmark = [pytest.mark.slow]

PETSTORE = Path(__file__).resolve().parents[1] / "data" / "openapi" / "petstore-v3.yaml"
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "portal passphrase 2026"
LIMIT = 5  # calls per second, the plan's


@dataclass
class World:
    url: str  # the control plane
    portal: str  # the organization's portal
    gateway: str  # the gateway's address
    mail: Path
    schema: str
    author: object
    counted: list[int] = field(default_factory=list)


def accessible(page: Page, name: str) -> None:
    """axe-core finds no serious or critical violation on the page; screenshots at both sizes."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, f"{name}: {serious}"
    screenshot(page, f"portal-{name}")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, f"{name} is wider than a phone"
    screenshot(page, f"portal-{name}-phone")
    page.set_viewport_size({"width": 1280, "height": 900})


def last_link(mail: Path, kind: str) -> str:
    for message in sorted(mail.glob("*.log"), key=lambda p: p.stat().st_mtime, reverse=True):
        found = re.findall(rf"http://\S+/{kind}/\S+", message.read_text())
        if found:
            return found[-1]
    raise AssertionError(f"no email with a /{kind}/ link")


def call(world: World, key: str | None, path: str = "/api/v3/pet/1") -> int:
    try:
        headers = {"apikey": key} if key else {}
        code = httpx.get(f"{world.gateway}{path}", headers=headers, timeout=2).status_code
    except httpx.TransportError:
        return 0
    if code in (200, 429):  # answers the application's consumer is counted for
        world.counted.append(code)
    return code


@pytest.fixture
def world(transactional_db: None, tmp_path: Path) -> Iterator[World]:
    from saas.catalog.openapi_import import import_openapi
    from saas.gateways.services import create_cluster_token
    from saas.portal import products

    upstream = start_echo_upstream()
    organization, author, cluster = make_org_with_cluster()
    port, http_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = f"http://127.0.0.1:{http_port}"
    # The team's changes as the control plane at `url` makes them: the routes' cors names the
    # portal's origin, its public address.
    with schema_context(organization.schema_name), override_settings(PUBLIC_URL=url):
        from saas.catalog import services as catalog

        target = {"host": "127.0.0.1", "port": upstream.server_address[1]}
        catalog.save_upstream(author, cluster, {"name": "echo", "targets": [target]})
        import_openapi(author, cluster, PETSTORE.read_text(), service_name="petstore", upstream_name="echo")
        _, token = create_cluster_token(author, cluster, name="gw")
        # The team's side, as its API does it (the console's pages are tested apart).
        products.save_portal_settings(
            author, {"enabled": True, "title": "Acme APIs", "primary_color": "#1c5ab4", "signup_mode": "open"}
        )
        product = products.save_product(
            author,
            {
                "name": "Petstore",
                "slug": "petstore",
                "description": "Pets of **every** kind, from the Swagger Petstore.",
                "published": True,
            },
        )
        products.save_version(
            author,
            product,
            name="v1",
            status="active",
            cluster=cluster,
            route_ids=None,
            service="petstore",
            gateway_url=gateway,
        )
        products.save_plan(author, product, {"name": "free", "limit_count": LIMIT, "time_window": 1})
    connections.close_all()

    env = control_plane_env(
        SAAS_PUBLIC_URL=url,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(tmp_path / "mail"),
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    web = start_control_plane(port, env)
    usage = subprocess.Popen(
        [sys.executable, "manage.py", "consume_usage", "--name", "portal-e2e"], cwd=ROOT, env=env
    )
    wait_until_up(port)
    data_dir = tmp_path / "agent"
    agent = start_agent(
        port, token, data_dir, http_port, extra=("--poll-wait", "5", "--heartbeat-interval", "1")
    )
    try:
        yield World(
            url=url,
            portal=f"{url}/portal/{organization.slug}/",
            gateway=gateway,
            mail=tmp_path / "mail",
            schema=organization.schema_name,
            author=author,
        )
    finally:
        stop_gateway(agent, data_dir)
        for process in (usage, web):
            process.terminate()
            process.wait(timeout=20)
        upstream.shutdown()


def test_an_outside_developer_gets_a_key_calls_the_api_and_the_team_suspends_the_app(
    world: World, page: Page
):
    from saas.portal import applications
    from saas.portal.models import Application

    # Browse: the product, its plan and its rendered reference.
    page.goto(world.portal)
    expect(page.get_by_role("heading", name="APIs")).to_be_visible()
    accessible(page, "home")
    page.get_by_role("link", name="Petstore").click()
    expect(page.get_by_text("5 calls per second")).to_be_visible()
    accessible(page, "product")
    page.get_by_role("link", name="Reference for v1").click()
    expect(page.get_by_text("Find pet by ID.").first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Authorize"))).to_be_visible()
    accessible(page, "docs")

    # Sign up, confirm the email, sign in.
    page.goto(f"{world.portal}signup")
    accessible(page, "signup")
    page.get_by_label("Name").fill("Pat Partner")
    page.get_by_label("Email").fill("pat@partner.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    page.goto(last_link(world.mail, "verify"))
    expect(page.get_by_role("heading", name="Email confirmed")).to_be_visible()
    page.get_by_role("link", name="Sign in").last.click()
    accessible(page, "signin")
    page.get_by_label("Email").fill("pat@partner.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # An application, subscribed to the Petstore's free plan: its key is shown once.
    expect(page.get_by_role("heading", name="Applications")).to_be_visible()
    accessible(page, "apps")
    page.get_by_label("Name").fill("Pet shop")
    page.get_by_role("button", name="Create the application").click()
    key = page.locator("#new-key").inner_text()
    accessible(page, "app-key")
    page.get_by_role("button", name="Subscribe to Petstore").click()
    expect(page.get_by_text("Subscribed to Petstore v1")).to_be_visible()
    accessible(page, "app")

    # Through the gateway: 200 once the snapshot is there, then 429 past the plan. The plan counts
    # every route of the product together.
    wait_for(lambda: call(world, key) == 200, what="the subscription at the gateway")
    assert call(world, None) == 401
    assert call(world, "pk_not-a-key-of-anyone-here") == 401

    def burst() -> list[int]:
        return [call(world, key, path) for path in ("/api/v3/pet/1", "/api/v3/store/inventory") * LIMIT]

    codes = burst()
    assert 200 in codes and 429 in codes, codes
    wait_for(lambda: call(world, key) == 200)

    # The usage page shows the calls, from the same rollups billing reads.
    page.get_by_role("link", name="Usage").click()

    calls, refused = len(world.counted), world.counted.count(429)

    def usage_shown() -> bool:
        page.reload()
        return page.get_by_text(f"counted them: {calls} in all").count() > 0

    wait_for(usage_shown, timeout=60, what=f"{calls} calls on the usage page")
    row = page.get_by_role("row").filter(has_text="Pet shop")
    expect(row.get_by_role("cell").nth(4)).to_have_text(str(calls))
    expect(row.get_by_role("cell").nth(5)).to_have_text(str(refused))
    accessible(page, "usage")

    # The team suspends the application: 401 at the gateway within a second or so.
    with schema_context(world.schema):
        application = Application.objects.select_related("developer").get(name="Pet shop")
        started = time.monotonic()
        applications.set_application_status(world.author, application, Application.SUSPENDED)
    connections.close_all()
    wait_for(lambda: call(world, key) == 401, timeout=10)
    suspended_after = time.monotonic() - started
    print(f"suspension took effect at the gateway after {suspended_after:.2f} s")
    page.goto(page.url.replace("usage", f"apps/{application.id}"))
    expect(page.get_by_text("The team has suspended this application")).to_be_visible()

    with schema_context(world.schema):
        applications.set_application_status(world.author, application, Application.ACTIVE)
    connections.close_all()
    wait_for(lambda: call(world, key) == 200, timeout=10)

    # The reference's try-it panel: the page (the control plane's origin) calls the gateway (an
    # origin of its own) with the key; the browser's preflight is answered by the gateway.
    page.goto(f"{world.portal}products/petstore/v1/docs")
    operation = page.locator("#operations-pet-getPetById")
    operation.locator(".opblock-summary").click()
    operation.get_by_placeholder("petId").fill("1")

    answers = operation.locator(".live-responses-table")

    def execute(expected: str) -> None:
        """Execute: the gateway's answer shows (a call the browser blocked shows none)."""
        clear = operation.get_by_role("button", name="Clear")
        if clear.count():
            clear.click()
        operation.get_by_role("button", name="Execute").click()
        expect(answers.locator("tbody .response-col_status")).to_have_text(expected)

    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    page.locator(".auth-container input").first.fill(key)
    page.get_by_role("button", name="Apply credentials").click()
    page.locator(".auth-container .btn-done").click()
    execute("200")
    expect(answers).to_contain_text('"x-consumer-username": "portal-app-')  # the upstream's echo
    expect(answers).to_contain_text("x-ratelimit-remaining")  # exposed to the page
    screenshot(page, "portal-docs-try-it")
    # Without the key: the gateway refuses, and the page can read why.
    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    page.get_by_role("button", name="Remove authorization").click()
    page.locator(".auth-container .btn-done").click()
    execute("401")
    expect(answers).to_contain_text("Missing API key")
