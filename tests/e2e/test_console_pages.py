"""Every page of the console, and the dialogs worth seeing, with content in each: a screenshot of
each at a laptop's size and a phone's (test-artifacts/console/page-*.png), and on the phone nothing
wider than the screen. The pages are reached through the UI, as a user does; the data behind them
(a catalog, gateways, traffic) is made through the services beforehand."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import pytest
from django.db import connections
from django.utils.timezone import now as timezone_now
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from tenants.roles import Role
from tests.e2e.console_steps import button, dialog, screenshots, sign_in_as_member
from tests.factories import make_org_with_cluster, self_signed_certificate

if TYPE_CHECKING:
    from saas.gateways.agents import AgentContext
    from saas.gateways.models import GatewayCluster, GatewayInstance
    from tenants.models import Organization

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LONG_REGEX = "^/orders/[0-9a-f]{24}/lines/[0-9]+$"


def _a_cluster_in_use(name: str) -> tuple:
    """An organization with a cluster whose catalog has one of everything, several published
    versions, two gateways (one up to date, one behind with an error), and the last hour's
    traffic: (organization, cluster, the gateways' agent context, their registrations)."""
    from gateway_agent.protocol import RegisterRequest, UsageBatch
    from saas.catalog import services as catalog
    from saas.gateways.agents import authenticate_agent, register_instance
    from saas.gateways.clusters import create_cluster_token
    from saas.gateways.models import GatewayCluster
    from saas.metering.services import record_usage_batches

    org, author, cluster = make_org_with_cluster(name)
    certificate, private_key = self_signed_certificate("api.example.com", "www.example.com")
    with schema_context(org.schema_name):
        GatewayCluster.objects.create(name="staging")
        catalog.save_upstream(
            author,
            cluster,
            {
                "name": "backend",
                "targets": [
                    {"host": "10.0.0.5", "port": 8080},
                    {"host": "10.0.0.6", "port": 8080, "weight": 50},
                ],
                "load_balancing": "leastconn",
                "passive_health_check": {"max_fails": 3, "fail_timeout_s": 10},
            },
        )
        catalog.save_service(
            author, cluster, {"name": "shop", "upstream": "backend", "description": "The shop's public API"}
        )
        orders = catalog.save_route(
            author,
            cluster,
            {
                "name": "orders",
                "service": "shop",
                "paths": [{"value": "/orders"}],
                "hosts": ["api.example.com"],
                "methods": ["GET", "POST"],
                "plugins": {
                    "key-auth": {},
                    "limit-count": {"count": 100, "time_window": 60, "key": "consumer"},
                },
            },
        )
        carts = catalog.save_route(
            author,
            cluster,
            {"name": "carts", "service": "shop", "paths": [{"value": "/carts"}], "priority": 5},
        )
        consumer = catalog.save_consumer(
            author, cluster, {"username": "mobile-app", "labels": {"team": "mobile"}}
        )
        catalog.add_credential(author, consumer, {"type": "key-auth"})
        catalog.add_credential(author, consumer, {"type": "jwt-auth", "key": "mobile-jwt"})
        catalog.save_consumer(author, cluster, {"username": "web"})
        catalog.save_certificate(
            author, cluster, {"name": "api", "certificate": certificate, "private_key": private_key}
        )
        catalog.set_global_plugin(
            author, cluster, "cors", {"allow_origins": ["https://shop.example.com"], "max_age": 600}
        )
        # The latest version changes a route: its diff has a before and an after.
        orders = catalog.save_route(
            author,
            cluster,
            {
                "name": "orders",
                "service": "shop",
                "paths": [{"value": "/orders"}, {"type": "regex", "value": LONG_REGEX}],
                "hosts": ["api.example.com"],
                "methods": ["GET", "POST"],
                "priority": 10,
                "plugins": {
                    "key-auth": {},
                    "limit-count": {"count": 100, "time_window": 60, "key": "consumer"},
                },
            },
            orders,
        )
        _, secret = create_cluster_token(author, cluster, name="eu-gateways")
    ctx = authenticate_agent(secret)
    assert ctx is not None
    gateways = [
        register_instance(
            ctx,
            RegisterRequest(hostname=hostname, agent_version="0.1.0", haproxy_version="2.8.5"),
            address=address,
        )
        for hostname, address in (("gw-eu-1", "10.0.1.21"), ("gw-eu-2", "10.0.1.22"))
    ]
    # The last hour's traffic: answered, refused and failed calls, by route and consumer.
    minute = int(timezone_now().timestamp()) // 60 * 60 - 600
    items = [
        (minute + 60 * m, route.id, who, status, count)
        for m in range(0, 10, 2)
        for route, who, status, count in (
            (orders, "mobile-app", "2xx", 40 + m),
            (orders, "mobile-app", "5xx", 1),
            (carts, "web", "2xx", 12),
            (carts, "web", "4xx", 3 + m),
            (orders, "", "4xx", 2),
        )
    ]
    batch = UsageBatch.model_validate(
        {
            "batch_id": uuid.uuid4().hex,
            "instance_id": str(gateways[0].instance_id),
            "window_start": minute,
            "window_end": minute + 600,
            "items": [
                {
                    "minute": at,
                    "route_id": route_id,
                    "consumer": who,
                    "status_class": status,
                    "requests": count,
                    "latency_ms_buckets": [0, 0, 0, 0, count // 2, count - count // 2],
                }
                for at, route_id, who, status, count in items
            ],
        }
    )
    record_usage_batches(org.schema_name, [(cluster.id, batch)])
    connections.close_all()
    return org, cluster, ctx, gateways


def _heartbeats(ctx: AgentContext, gateways: list[GatewayInstance], latest: int) -> None:
    """The gateways report: the first up to date, the second a version behind with an error."""
    from gateway_agent.protocol import Heartbeat
    from saas.gateways.agents import record_heartbeat

    first, second = gateways
    record_heartbeat(ctx, Heartbeat(instance_id=str(first.instance_id), applied_version=latest), "10.0.1.21")
    record_heartbeat(
        ctx,
        Heartbeat(
            instance_id=str(second.instance_id),
            applied_version=latest - 1,
            last_error="upstream backend: 10.0.0.6:8080 refused the connection",
        ),
        "10.0.1.22",
    )


def _a_portal(org: Organization, cluster: GatewayCluster) -> None:
    """The organization's developer portal in use: a published product over the route carts, with
    plans; a developer waiting for approval, another whose application is subscribed."""
    from core import clock
    from saas.gateways.services import Author
    from saas.portal import applications, products
    from saas.portal.models import PortalDeveloper
    from tenants.audit import Actor

    with schema_context(org.schema_name):
        author = Author(actor=Actor(user=None, name="setup"), organization=org)
        products.save_portal_settings(
            author, {"enabled": True, "title": "Acme APIs", "signup_mode": "approval"}
        )
        product = products.save_product(
            author,
            {
                "name": "Shop API",
                "slug": "shop",
                "description": "Carts and orders, **live**.",
                "published": True,
            },
        )
        carts = catalog_route_id(cluster, "carts")
        version = products.save_version(
            author,
            product,
            name="v1",
            status="active",
            cluster=cluster,
            route_ids=[carts],
            gateway_url="https://api.example.com",
        )
        free = products.save_plan(
            author,
            product,
            {"name": "free", "description": "To try it", "limit_count": 1000, "time_window": 86400},
        )
        products.save_plan(author, product, {"name": "pro", "limit_count": 100, "time_window": 1})
        PortalDeveloper.objects.create(email="grace@example.com", name="Grace", status="pending")
        ada = PortalDeveloper(
            email="ada@example.com", name="Ada", status="active", email_verified_at=clock.now()
        )
        ada.set_unusable_password()
        ada.save()
        application, _ = applications.create_application(author, ada, name="mobile", description="")
        applications.subscribe(author, application, version, free)
    connections.close_all()


def catalog_route_id(cluster: GatewayCluster, name: str) -> int:
    from saas.catalog.models import Route

    return Route.objects.get(cluster=cluster, name=name).id


def test_every_page_of_the_console_at_a_laptops_and_a_phones_size(page: Page, control_plane: str) -> None:
    from saas.gateways.models import ConfigSnapshot

    org, cluster, ctx, gateways = _a_cluster_in_use("production")
    with schema_context(org.schema_name):
        latest = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version")[0].version
    connections.close_all()

    # Signed out: the login page, and the sign-up page.
    page.goto(f"{control_plane}/console/")
    expect(page.get_by_text("Log in to Gateway Cloud")).to_be_visible()
    screenshots(page, "page-01-login")
    page.goto(f"{control_plane}/console/signup")
    expect(page.get_by_text("Create your account")).to_be_visible()
    screenshots(page, "page-02-signup")
    page.get_by_role("link", name="Already have an account? Log in").click()
    page.get_by_role("link", name="Forgot password?").click()
    expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
    screenshots(page, "page-03-forgot-password")

    # The organization's overview, the first page after signing in. (The gateways report before
    # each page that shows them: they count as online for 30 s after.)
    _heartbeats(ctx, gateways, latest)
    sign_in_as_member(page, control_plane, org, "owner@example.com", Role.OWNER)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("region", name="Gateways", exact=True)).to_contain_text("2 of 2 online")
    expect(page.get_by_role("table", name="Top failing routes")).to_contain_text("carts")
    expect(page.get_by_role("region", name="Recent changes", exact=True)).to_contain_text("route.")
    screenshots(page, "page-04-overview")
    # On a phone the navigation folds behind a button.
    page.set_viewport_size({"width": 390, "height": 844})
    button(page, "Open navigation").click()
    expect(page.get_by_role("link", name="Deploy to AWS")).to_be_in_viewport()
    screenshots(page, "page-05-navigation")
    button(page, "Close navigation").click()
    page.set_viewport_size({"width": 1280, "height": 900})

    # The clusters, and the dialog that makes one.
    page.get_by_role("link", name="Clusters").click()
    clusters = page.get_by_role("table", name="Clusters")
    expect(clusters.get_by_role("link", name="staging")).to_be_visible()
    screenshots(page, "page-06-clusters")
    button(page, "New cluster").click()
    expect(dialog(page).get_by_label("Name")).to_be_visible()
    screenshots(page, "page-07-new-cluster")
    page.keyboard.press("Escape")
    expect(dialog(page)).to_have_count(0)

    # A cluster: its overview, gateways and cluster tokens (and the rotation dialog).
    _heartbeats(ctx, gateways, latest)
    clusters.get_by_role("link", name="production").click()
    expect(page.get_by_role("region", name="Gateways", exact=True)).to_contain_text("2 of 2 online")
    screenshots(page, "page-08-cluster-overview")
    _heartbeats(ctx, gateways, latest)
    page.get_by_role("tab", name="Gateways").click()
    instances = page.get_by_role("table", name="Instances")
    expect(instances.get_by_role("row").filter(has_text="gw-eu-1")).to_contain_text("up to date")
    expect(instances.get_by_role("row").filter(has_text="gw-eu-2")).to_contain_text("refused the connection")
    expect(page.get_by_role("table", name="Cluster tokens")).to_contain_text("eu-gateways")
    screenshots(page, "page-09-gateways")
    page.get_by_role("button", name=re.compile("^Rotate eu-gateways")).click()
    expect(dialog(page).get_by_role("textbox", name="Grace period")).to_be_visible()
    screenshots(page, "page-10-rotate-cluster-token")
    button(dialog(page), "Cancel").click()
    expect(dialog(page)).to_have_count(0)

    # The catalog, each kind with its table and its form.
    page.get_by_role("tab", name="Catalog").click()
    routes = page.get_by_role("table", name="Routes")
    expect(routes.get_by_text(LONG_REGEX, exact=False)).to_be_visible()
    screenshots(page, "page-11-routes")
    button(page, "Edit orders").click()
    expect(dialog(page).get_by_text("Requests allowed in each time window.")).to_be_visible()
    screenshots(page, "page-12-route-form")
    page.keyboard.press("Escape")
    expect(dialog(page)).to_have_count(0)
    button(page, "Delete carts").click()
    expect(dialog(page).get_by_text("Delete carts?")).to_be_visible()
    screenshots(page, "page-13-delete-confirmation")
    button(dialog(page), "Cancel").click()
    expect(dialog(page)).to_have_count(0)

    page.get_by_role("tab", name="Services", exact=True).click()
    expect(page.get_by_role("table", name="Services")).to_contain_text("The shop's public API")
    screenshots(page, "page-14-services")

    page.get_by_role("tab", name="Upstreams", exact=True).click()
    expect(page.get_by_role("table", name="Upstreams")).to_contain_text("10.0.0.6:8080 (weight 50)")
    screenshots(page, "page-15-upstreams")
    button(page, "Edit backend").click()
    form = dialog(page)
    form.get_by_role("button", name=re.compile("Advanced settings")).click()
    expect(form.get_by_role("switch", name="Watch answers")).to_be_checked()
    screenshots(page, "page-16-upstream-form")
    page.keyboard.press("Escape")
    expect(dialog(page)).to_have_count(0)

    page.get_by_role("tab", name="Consumers", exact=True).click()
    expect(page.get_by_role("table", name="Consumers")).to_contain_text("key-auth, jwt-auth")
    screenshots(page, "page-17-consumers")
    button(page, "Credentials of mobile-app").click()
    expect(dialog(page).get_by_role("table", name="Credentials")).to_contain_text("mobile-jwt")
    screenshots(page, "page-18-credentials")
    page.keyboard.press("Escape")
    expect(dialog(page)).to_have_count(0)

    page.get_by_role("tab", name="Certificates", exact=True).click()
    expect(page.get_by_role("table", name="Certificates")).to_contain_text("www.example.com")
    screenshots(page, "page-19-certificates")
    button(page, "New certificate").click()
    expect(dialog(page).get_by_label(re.compile("^Private key"))).to_be_visible()
    screenshots(page, "page-20-certificate-form")
    page.keyboard.press("Escape")
    expect(dialog(page)).to_have_count(0)

    page.get_by_role("tab", name="Global plugins").click()
    expect(page.get_by_role("table", name="Global plugins")).to_contain_text("https://shop.example.com")
    screenshots(page, "page-21-global-plugins")
    button(page, "Edit cors").click()
    expect(dialog(page).get_by_text("Global cors")).to_be_visible()
    screenshots(page, "page-22-global-plugin-form")
    page.keyboard.press("Escape")
    expect(dialog(page)).to_have_count(0)

    # The history: the versions beside the latest one's changes; then the declarative document.
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("heading", name=f"What changed in v{latest}")).to_be_visible()
    expect(
        page.get_by_role("region", name="route orders changed").get_by_text(LONG_REGEX, exact=False)
    ).to_be_visible()
    screenshots(page, "page-23-history")
    button(page, "Export").click()
    expect(page.get_by_label("Document (JSON)")).to_have_value(re.compile("mobile-app"))
    button(page, "Preview changes").click()
    expect(page.get_by_text("Nothing would change")).to_be_visible()
    screenshots(page, "page-24-history-export")
    page.get_by_role("button", name=f"Roll back to v{latest - 1}").click()
    expect(dialog(page).get_by_text(f"as it was at v{latest - 1}")).to_be_visible()
    screenshots(page, "page-25-rollback-confirmation")
    button(dialog(page), "Cancel").click()
    expect(dialog(page)).to_have_count(0)

    # The traffic of the last hour, and the install commands.
    page.get_by_role("tab", name="Traffic").click()
    expect(page.locator(".recharts-surface").first).to_be_visible()
    expect(
        page.get_by_role("tabpanel", name="Traffic").get_by_text("mobile-app", exact=True).first
    ).to_be_visible()
    screenshots(page, "page-26-traffic")
    page.get_by_role("tab", name="Install").click()
    expect(page.locator("pre", has_text="gateway-agent run")).to_be_visible()
    button(page, "Create cluster token").click()
    expect(page.get_by_text("Your cluster token (shown once)")).to_be_visible()
    screenshots(page, "page-27-install")

    # The organization: members, API tokens (one made here), the audit log.
    page.get_by_role("link", name="Organization").click()
    expect(page.get_by_role("table", name="Members")).to_contain_text("owner@example.com")
    screenshots(page, "page-28-organization-members")
    page.get_by_role("tab", name="API tokens").click()
    page.get_by_label("Token name").fill("deploy-bot")
    button(page, "Create API token").click()
    expect(page.get_by_text("Your API token (shown once)")).to_be_visible()
    expect(page.get_by_role("table", name="API tokens")).to_contain_text("deploy-bot")
    screenshots(page, "page-29-api-tokens")
    page.get_by_role("tab", name="Audit log").click()
    expect(page.get_by_role("table", name="Audit log").get_by_text("api_token.create")).to_be_visible()
    screenshots(page, "page-30-audit-log")

    # Billing, the AWS deploys, and a new organization.
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing")).to_be_visible()
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()
    screenshots(page, "page-31-billing")
    page.get_by_role("link", name="Deploy to AWS").click()
    expect(page.get_by_label("Role ARN")).to_be_visible()
    screenshots(page, "page-32-aws")
    page.get_by_role("textbox", name="Organization").click()
    page.get_by_role("option", name="+ New organization").click()
    expect(page.get_by_role("heading", name="New organization")).to_be_visible()
    screenshots(page, "page-33-new-organization")

    # One's own account, from the menu in the header.
    button(page, "Your account").click()
    page.get_by_role("menuitem", name="Account").click()
    expect(page.get_by_role("heading", name="Account", exact=True)).to_be_visible()
    expect(page.get_by_role("table", name="Sessions")).to_be_visible()
    screenshots(page, "page-34-account")

    # The developer portal: its settings, products (and a version's form), developers.
    _a_portal(org, cluster)
    page.get_by_role("textbox", name="Organization").click()
    page.get_by_role("option", name=org.name).click()
    page.get_by_role("link", name="Developer portal").click()
    expect(page.get_by_role("heading", name="Developer portal")).to_be_visible()
    expect(page.get_by_role("textbox", name=re.compile("^Title"))).to_have_value("Acme APIs")
    screenshots(page, "page-35-portal-settings")
    page.get_by_role("tab", name="Products").click()
    expect(page.get_by_role("table", name="Plans of Shop API")).to_contain_text("1,000 / day")
    expect(page.get_by_role("table", name="Versions of Shop API")).to_contain_text("production")
    screenshots(page, "page-36-portal-products")
    button(page, "Edit version v1").click()
    expect(dialog(page).get_by_role("textbox", name=re.compile("^OpenAPI document"))).to_be_visible()
    screenshots(page, "page-37-portal-version-form")
    page.keyboard.press("Escape")
    expect(dialog(page)).to_have_count(0)
    page.get_by_role("tab", name="Developers").click()
    expect(page.get_by_role("table", name="Developers")).to_contain_text("waiting for approval")
    expect(page.get_by_role("table", name="Developers")).to_contain_text("Shop API v1 on free")
    screenshots(page, "page-38-portal-developers")
