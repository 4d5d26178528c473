"""The web console in a real browser: Debian's Chromium driven by Playwright, against the control
plane as `make run` serves it, a real gateway (agent and HAProxy) and the usage consumer.

A team signs up, describes an API, starts a gateway with the command the install page gives,
calls through it with a consumer's key and finds the calls in the traffic chart and the bill; a
validation error shows beside its field; a rollback restores what the gateway serves; a viewer
sees no control for what the role may not do; a deploy to AWS is followed step by step.
Screenshots of the main pages are saved in test-artifacts/console/."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.db import connections
from django.utils.timezone import now as timezone_now
from django_tenants.utils import schema_context
from playwright.sync_api import Page, expect

from saas.launcher.services import free_port
from tenants.models import Organization, User
from tenants.roles import Role
from tests.control_plane import (
    start_control_plane,
    start_echo_upstream,
    stop_gateway,
    wait_for,
    wait_until_up,
)
from tests.e2e.console_steps import (
    button,
    choose,
    control_plane_env,
    dialog,
    open_catalog,
    pick,
    read_api,
    screenshot,
    screenshots,
    sign_in_as_member,
    sign_up,
    switch_on,
    textbox,
)
from tests.factories import PASSWORD, add_member, make_org_with_cluster, self_signed_certificate

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_team_goes_from_sign_up_to_billed_calls_through_their_own_gateway(
    page: Page, control_plane: str, tmp_path: Path
) -> None:
    from saas.metering.services import BillingPeriod, billable_calls

    upstream = start_echo_upstream()
    agent: subprocess.Popen[bytes] | None = None
    data_dir = tmp_path / "gateway-data"
    try:
        page.goto(f"{control_plane}/console/")
        expect(page.get_by_text("Log in to Gateway Cloud")).to_be_visible()  # signed out: log in
        sign_up(page, control_plane, "ada@example.com", "Analytical Engines")
        screenshot(page, "01-clusters-empty")
        button(page, "New cluster").click()
        dialog(page).get_by_label("Name").fill("production")
        button(page, "Create cluster").click()
        page.get_by_role("link", name="production").click()
        expect(page.get_by_text("No gateway has connected yet")).to_be_visible()

        # The catalog: an upstream (edited in place), a service, a route with key-auth.
        page.get_by_role("tab", name="Catalog").click()
        page.get_by_role("tab", name="Upstreams").click()
        button(page, "New upstream").click()
        dialog(page).get_by_label("Name").fill("backend")
        target = dialog(page).get_by_role("group", name="Target 1")
        target.get_by_label("Host").fill("127.0.0.1")
        target.get_by_label("Port").fill("9")
        button(dialog(page), "Create").click()
        expect(page.get_by_text("127.0.0.1:9", exact=True)).to_be_visible()
        button(page, "Edit backend").click()
        port = dialog(page).get_by_role("group", name="Target 1").get_by_label("Port")
        expect(port).to_have_value("9")  # the form comes filled in
        port.fill(str(upstream.server_address[1]))
        button(dialog(page), "Save").click()
        expect(page.get_by_text(f"127.0.0.1:{upstream.server_address[1]}")).to_be_visible()

        page.get_by_role("tab", name="Services").click()
        button(page, "New service").click()
        dialog(page).get_by_label("Name").fill("orders")
        choose(page, "Upstream", "backend")
        button(dialog(page), "Create").click()
        services = page.get_by_role("table", name="Services")
        expect(services.get_by_role("row").filter(has_text="orders")).to_contain_text("backend")

        page.get_by_role("tab", name="Routes").click()
        button(page, "New route").click()
        form = dialog(page)
        form.get_by_label("Name").fill("orders")
        choose(page, "Service", "orders")
        path_1 = form.get_by_role("group", name="Path 1")
        paths = path_1.get_by_role("textbox", name="Path")
        paths.fill("orders")  # no leading slash: the API refuses it
        choose(page, "Plugins", "key-auth")
        expect(form.get_by_role("textbox", name="header")).to_have_attribute("placeholder", "apikey")
        button(form, "Create").click()
        # The API's message beside the field it is about, and the form kept as typed.
        expect(paths).to_have_attribute("aria-invalid", "true")
        paths_field = path_1.locator(".mantine-InputWrapper-root").filter(
            has=page.get_by_role("textbox", name="Path")
        )
        expect(paths_field).to_contain_text("a path starts with / and has no spaces")
        expect(form.get_by_text("Please correct the fields marked below.")).to_be_visible()
        screenshot(page, "02-validation-error")
        paths.fill("/orders")
        button(form, "Create").click()
        routes = page.get_by_role("table", name="Routes")
        expect(routes.get_by_text("/orders", exact=True)).to_be_visible()
        # Scoped to the table: the closing dialog still shows its own key-auth chip for a moment.
        expect(routes.locator("code", has_text="key-auth")).to_be_visible()
        expect(dialog(page)).to_have_count(0)

        # A consumer and its generated key, shown once.
        page.get_by_role("tab", name="Consumers").click()
        button(page, "New consumer").click()
        dialog(page).get_by_label("Username").fill("mobile-app")
        button(dialog(page), "Create").click()
        button(page, "Credentials of mobile-app").click()
        button(dialog(page), "Add key-auth credential").click()
        shown = dialog(page).get_by_role("alert").filter(has_text="Shown once: copy it now")
        key = shown.locator("code").inner_text()
        assert len(key) >= 16, key
        screenshot(page, "03-consumer-key")
        page.keyboard.press("Escape")
        expect(dialog(page)).to_have_count(0)

        # A certificate from PEM: listed by its names; its key is never shown again.
        page.get_by_role("tab", name="Certificates").click()
        button(page, "New certificate").click()
        certificate, private_key = self_signed_certificate("api.example.com")
        dialog(page).get_by_label("Name").fill("api")
        dialog(page).get_by_label("Certificate").fill(certificate)
        dialog(page).get_by_label("Private key").fill(private_key)
        button(dialog(page), "Create").click()
        certificates = page.get_by_role("table", name="Certificates")
        expect(certificates.get_by_role("row").filter(has_text="api.example.com")).to_be_visible()
        screenshot(page, "04-catalog")

        # The install page: a cluster token, and the command with it filled in.
        page.get_by_role("tab", name="Install").click()
        button(page, "Create cluster token").click()
        expect(page.get_by_text("Your cluster token (shown once)")).to_be_visible()
        command = page.locator("pre", has_text="gateway-agent run").inner_text()
        assert "<cluster token>" not in command and "gct_" in command, command
        screenshot(page, "05-install")
        argv = shlex.split(command)
        assert argv[:2] == ["gateway-agent", "run"] and f"--control-plane {control_plane}" in command
        http_port = free_port()
        agent = subprocess.Popen(
            [
                str(Path(sys.executable).with_name(argv[0])),
                *argv[1:],
                # This machine's own places and ports instead of the defaults, and quick reports.
                "--data-dir",
                str(data_dir),
                "--http-port",
                str(http_port),
                "--https-port",
                "0",
                "--metrics-port",
                "0",
                "--bind",
                "127.0.0.1",
                "--heartbeat-interval",
                "1",
            ],
            cwd=tmp_path,
        )
        gateway = f"http://127.0.0.1:{http_port}"
        answered = 0
        with_key = 0  # answered for the consumer mobile-app

        def call(path: str, **headers: str) -> int:
            nonlocal answered, with_key
            status = httpx.get(f"{gateway}{path}", headers=headers, timeout=2).status_code
            answered += 1
            with_key += status == 200 and headers.get("apikey") == key
            return status

        wait_for(lambda: call("/orders/1", apikey=key) == 200, 30, what="the gateway to serve /orders")
        assert call("/orders/2") == 401  # no key
        assert call("/orders/3", apikey="not-a-key-of-anyone") == 401
        for i in range(5):
            assert call(f"/orders/{10 + i}", apikey=key) == 200
        assert call("/elsewhere") == 404

        # The instance online, on the latest version.
        page.get_by_role("tab", name="Gateways").click()
        expect(page.get_by_text("online", exact=True)).to_be_visible()
        expect(page.get_by_text("up to date", exact=True)).to_be_visible()
        screenshot(page, "06-instances")

        # Every call metered: in the traffic chart and this period's usage.
        organization = Organization.objects.get(slug="analytical-engines")
        period = BillingPeriod.containing(timezone_now())
        wait_for(
            lambda: billable_calls(organization, period) == answered, 30, what=f"{answered} calls billed"
        )
        connections.close_all()
        page.get_by_role("tab", name="Traffic").click()
        expect(page.get_by_text(f"{answered} requests", exact=True)).to_be_visible()
        expect(page.locator(".recharts-surface").first).to_be_visible()
        traffic = page.get_by_role("tabpanel", name="Traffic")
        expect(traffic.get_by_text("mobile-app", exact=True)).to_be_visible()  # top consumers
        screenshot(page, "07-traffic")
        # Filtered by the consumer: its calls alone.
        choose(page, "Consumer", "mobile-app")
        expect(page.get_by_text(f"{with_key} requests (consumer mobile-app)", exact=True)).to_be_visible()
        screenshot(page, "07b-traffic-by-consumer")
        # The overviews: the cluster's, then the organization's (the first page after signing in):
        # the gateway online on the latest version, and the calls of the last hour.
        page.get_by_role("tab", name="Overview").click()
        _expect_overview(page, answered)
        screenshots(page, "06b-cluster-overview")
        page.get_by_role("link", name="Overview").click()
        _expect_overview(page, answered)
        failing = page.get_by_role("table", name="Top failing routes")
        expect(failing.get_by_role("row").filter(has_text="(no route matched)")).to_contain_text("production")
        changes = page.get_by_role("region", name="Recent changes", exact=True)
        expect(changes).to_contain_text("ada@example.com")
        quota = page.get_by_role("region", name="Quota", exact=True)
        expect(quota).to_contain_text(f"{answered:,} of")  # calls this period, against the plan's
        expect(quota.get_by_role("progressbar")).to_have_attribute("aria-label", re.compile(r"^Calls used"))
        screenshots(page, "06c-overview")
        page.get_by_role("link", name="Billing").click()
        expect(page.get_by_role("heading", name=str(answered), exact=True)).to_be_visible()
        expect(page.get_by_text("Stripe is not connected")).to_be_visible()
        screenshot(page, "08-billing")

        # Rollback: the route deleted, then the version before it restored, at the gateway too.
        page.get_by_role("link", name="Clusters").click()
        page.get_by_role("link", name="production").click()
        page.get_by_role("tab", name="Catalog").click()
        route_row = page.get_by_role("table", name="Routes").get_by_role("row").filter(has_text="/orders")
        button(route_row, "Delete orders").click()
        button(dialog(page), "Delete").click()
        expect(page.get_by_text("No routes yet.")).to_be_visible()
        wait_for(lambda: call("/orders/20", apikey=key) == 404, what="the deletion at the gateway")
        page.get_by_role("tab", name="History").click()
        page.get_by_role("button", name=re.compile(r"^Roll back to v\d+$")).first.click()
        button(dialog(page), "Roll back").click()
        expect(page.get_by_text(re.compile(r"rollback", re.IGNORECASE)).first).to_be_visible()
        wait_for(lambda: call("/orders/21", apikey=key) == 200, what="the rollback at the gateway")
        assert call("/orders/22") == 401  # key-auth is back with the route
        page.get_by_role("button", name=re.compile(r"^What changed in v\d+$")).first.click()
        expect(page.get_by_text(re.compile(r"^What changed in v\d+$"))).to_be_visible()
        screenshot(page, "09-history")
        button(page, "Export").click()
        expect(page.locator("textarea").first).to_have_value(re.compile("orders"))
        button(page, "Preview changes").click()
        expect(page.get_by_text("Nothing would change")).to_be_visible()
        # The rollback's version (the content of an earlier one) is applied and shown up to date.
        page.get_by_role("tab", name="Gateways").click()
        expect(page.get_by_text("up to date", exact=True)).to_be_visible()
        screenshot(page, "09b-instances-up-to-date")

        # The organization: members, an API token shown once, and the audit log of all of it.
        page.get_by_role("link", name="Organization").click()
        expect(page.get_by_text("ada@example.com").first).to_be_visible()
        page.get_by_role("tab", name="API tokens").click()
        page.get_by_label("Token name").fill("ci")
        button(page, "Create API token").click()
        expect(page.get_by_text("shown once")).to_be_visible()
        page.get_by_role("tab", name="Audit log").click()
        expect(page.get_by_text("snapshot.rollback").first).to_be_visible()
        screenshot(page, "10-audit-log")
        # Upgrading (billing runs locally here: no Stripe keys).
        page.get_by_role("link", name="Billing").click()
        button(page, "Upgrade to Pro").click()
        button(dialog(page), "Upgrade").click()  # the confirmation, stating Pro's price
        expect(button(page, "Upgrade to Pro")).to_have_count(0)
        expect(page.locator("main")).to_contain_text("Pro")
    finally:
        if agent is not None:
            stop_gateway(agent, data_dir)
        upstream.shutdown()


def test_a_viewer_sees_no_control_for_what_the_role_may_not_do(page: Page, control_plane: str) -> None:
    from saas.catalog import services as catalog

    org, author, cluster = make_org_with_cluster("staging")
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author, cluster, {"name": "backend", "targets": [{"host": "10.0.0.5", "port": 80}]}
        )
        catalog.save_service(author, cluster, {"name": "orders", "upstream": "backend"})
        catalog.save_route(
            author, cluster, {"name": "orders", "service": "orders", "paths": [{"value": "/orders"}]}
        )
    # Signed up through the control plane, which hashes passwords its own way (the tests' fast
    # hasher is not among its hashers), then added as a viewer.
    signup = httpx.post(
        f"{control_plane}/api/v1/auth/signup/", json={"email": "viewer@example.com", "password": PASSWORD}
    )
    assert signup.status_code == 201, signup.text
    add_member(org, Role.VIEWER, User.objects.get(email="viewer@example.com"))
    connections.close_all()

    # Logged in with the keyboard alone.
    page.goto(f"{control_plane}/console/login")
    page.get_by_label("Email").focus()
    page.keyboard.type("viewer@example.com")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="staging")).to_be_visible()
    expect(button(page, "New cluster")).to_have_count(0)
    expect(page.get_by_role("link", name="Billing")).to_have_count(0)
    expect(page.get_by_role("link", name="Deploy to AWS")).to_have_count(0)
    page.get_by_role("link", name="staging").click()
    page.get_by_role("tab", name="Catalog").click()
    expect(page.get_by_role("table", name="Routes").get_by_text("/orders", exact=True)).to_be_visible()
    expect(button(page, "New route")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^(Edit|Delete)"))).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)  # no rows to select for a bulk delete
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("button", name=re.compile("^What changed in v"))).not_to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Roll back"))).to_have_count(0)
    expect(button(page, "Export")).to_have_count(0)
    page.get_by_role("tab", name="Install").click()
    expect(page.locator("pre", has_text="gateway-agent run")).to_be_visible()
    expect(button(page, "Create cluster token")).to_have_count(0)

    # On a phone: the navigation folds behind a button, and opens from it.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_role("link", name="Organization")).not_to_be_in_viewport()
    button(page, "Open navigation").click()
    expect(page.get_by_role("link", name="Organization")).to_be_in_viewport()
    screenshot(page, "11-phone-navigation")
    page.get_by_role("link", name="Organization").click()
    expect(page.locator("main").get_by_text("viewer@example.com")).to_be_visible()
    expect(button(page, "Close navigation")).to_have_count(0)
    screenshot(page, "12-phone-organization")

    # Logged out, a wrong password is an error on the page, not a crash.
    page.set_viewport_size({"width": 1280, "height": 900})
    button(page, "Log out").click()
    page.get_by_label("Email").fill("viewer@example.com")
    page.get_by_label("Password").fill("wrong")
    button(page, "Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()


def test_an_owner_connects_aws_and_follows_a_deploy_step_by_step(
    page: Page, transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against moto (AWS) and the fake Kubernetes API: the quick-create link's ExternalId, the
    role verified, a deploy whose step log fills in, and a failure shown with a retry."""
    import boto3
    from moto.server import ThreadedMotoServer

    from saas.deployments import services
    from tests.fakes.kubernetes_api import FakeKubernetes

    moto = ThreadedMotoServer(port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    aws_url = f"http://{host}:{port}"
    httpx.post(f"{aws_url}/moto-api/reset")
    kube = FakeKubernetes()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env = control_plane_env(
        SAAS_AWS_ENDPOINT_URL=aws_url,
        SAAS_EKS_ENDPOINT_OVERRIDE=kube.url,
        SAAS_DEPLOY_WAIT_S="2",
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    control_port = free_port()
    control = start_control_plane(control_port, env)
    try:
        wait_until_up(control_port)
        sign_up(page, f"http://127.0.0.1:{control_port}", "grace@example.com", "Compilers")
        button(page, "New cluster").click()
        dialog(page).get_by_label("Name").fill("edge")
        button(page, "Create cluster").click()
        expect(page.get_by_role("link", name="edge")).to_be_visible()
        page.get_by_role("link", name="Deploy to AWS").click()
        external_id = page.get_by_text(re.compile(r"^gwc-")).first.inner_text()
        # What the customer does in their account: launch the template, copy the role ARN.
        client = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=aws_url)
        client.create_stack(
            StackName="gateway-cloud",
            TemplateBody=services.role_template(),
            Parameters=[{"ParameterKey": "ExternalId", "ParameterValue": external_id}],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        role_arn = client.describe_stacks(StackName="gateway-cloud")["Stacks"][0]["Outputs"][0]["OutputValue"]
        boto3.client("eks", region_name="us-east-1", endpoint_url=aws_url).create_cluster(
            name="prod-eks",
            roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": []},
        )
        page.get_by_label("Role ARN").fill(role_arn)
        button(page, "Verify and connect").click()
        expect(page.get_by_text("connected to 123456789012")).to_be_visible()
        expect(page.get_by_text(re.compile("it may list EKS clusters"))).to_be_visible()
        choose(page, "Gateway cluster", "edge")
        choose(page, "EKS cluster", "prod-eks")
        button(page, "Deploy").click()
        # Applied and rolled out, but no gateway came online in time (none runs here): the step
        # log says which step failed and why, and offers a retry.
        expect(page.get_by_text("wait for rollout: succeeded")).to_be_visible()
        expect(page.get_by_text("instances online: failed")).to_be_visible()
        expect(page.get_by_text("No gateway instance came online").first).to_be_visible()
        expect(button(page, "Retry")).to_be_visible()
        expect(page.get_by_text("Gateway image:")).to_be_visible()
        screenshot(page, "13-aws-deploy")
        assert {a.kind for a in kube.applies} >= {"Namespace", "Deployment", "Service", "NetworkPolicy"}
    finally:
        control.terminate()
        control.wait(timeout=20)
        kube.close()
        moto.stop()


def test_an_edit_in_the_console_changes_only_what_the_user_changed(page: Page, control_plane: str) -> None:
    """Every field set through the API; in the console each object is opened, only its name (a
    global plugin: one setting) is changed and saved; every other field is exactly as it was.
    Then two writers: a save from a form opened before a colleague's change is refused, says
    who changed it, and changes nothing."""
    from saas.catalog import services as catalog
    from saas.catalog.api.views import ConsumerViewSet, RouteViewSet, ServiceViewSet, UpstreamViewSet
    from saas.catalog.models import Consumer, GlobalPlugin, Route, Service, Upstream

    org, author, cluster = make_org_with_cluster("edits")
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author,
            cluster,
            {
                "name": "billing",
                "targets": [
                    {"host": "10.0.0.7", "port": 9000, "weight": 30},
                    {"host": "10.0.0.8", "port": 9000},
                ],
                "load_balancing": "leastconn",
                "retries": 3,
                "timeouts": {"connect_s": 2, "send_s": 7, "read_s": 45},
                "passive_health_check": {"max_fails": 5, "fail_timeout_s": 20},
            },
        )
        catalog.save_service(
            author,
            cluster,
            {
                "name": "billing-api",
                "upstream": "billing",
                "description": "Invoices",
                "plugins": {"key-auth": {}},
            },
        )
        catalog.save_route(
            author,
            cluster,
            {
                "name": "invoices",
                "service": "billing-api",
                "hosts": ["api.example.com", "*.shop.example.com"],
                "paths": [
                    {"type": "exact", "value": "/invoices"},
                    {"type": "regex", "value": "^/invoices/[0-9]+$"},
                ],
                "methods": ["GET", "POST"],
                "headers": [{"name": "X-Tenant", "value": "acme", "type": "exact"}],
                "priority": 5,
                "strip_path_prefix": "/invoices",
                "plugins": {"limit-count": {"count": 10, "time_window": 60}},
            },
        )
        catalog.save_consumer(
            author,
            cluster,
            {
                "username": "mobile",
                "labels": {"team": "apps"},
                "plugins": {"limit-count": {"count": 5, "time_window": 1}},
            },
        )
        catalog.set_global_plugin(
            author,
            cluster,
            "cors",
            {"allow_origins": ["https://a.example.com"], "max_age": 600, "allow_credentials": True},
        )
    kinds = {
        "Routes": (Route, RouteViewSet.spec, "invoices"),
        "Services": (Service, ServiceViewSet.spec, "billing-api"),
        "Upstreams": (Upstream, UpstreamViewSet.spec, "billing"),
        "Consumers": (Consumer, ConsumerViewSet.spec, "mobile"),
    }

    def spec_of(model: type, spec: object) -> dict:
        with schema_context(org.schema_name):
            found = spec(model.objects.get())  # type: ignore[operator]
        connections.close_all()
        return found

    before = {tab: spec_of(model, spec) for tab, (model, spec, _) in kinds.items()}
    sign_in_as_member(page, control_plane, org, "editor@example.com", Role.DEVELOPER)
    page.get_by_role("link", name="edits").click()
    page.get_by_role("tab", name="Catalog").click()
    for tab, (model, spec, name) in kinds.items():
        page.get_by_role("tab", name=tab, exact=True).click()
        panel = page.get_by_role("tabpanel", name=tab)
        button(panel, f"Edit {name}").click()
        field = dialog(page).get_by_role("textbox", name=re.compile("^(Name|Username)"))
        expect(field).to_have_value(name)
        field.fill(f"{name}-renamed")
        button(dialog(page), "Save").click()
        expect(dialog(page)).to_have_count(0)
        expect(panel.get_by_text(f"{name}-renamed", exact=True)).to_be_visible()
        after = spec_of(model, spec)
        key = "username" if tab == "Consumers" else "name"
        assert after == {**before[tab], key: f"{name}-renamed"}, tab
        # What refers to it by name follows the rename.
        before = {t: spec_of(m, s) for t, (m, s, _) in kinds.items()}
    screenshot(page, "20-edited-consumers")

    page.get_by_role("tab", name="Global plugins").click()
    plugins = page.get_by_role("tabpanel", name="Global plugins")
    button(plugins, "Edit cors").click()
    dialog(page).get_by_role("textbox", name=re.compile("Max age")).fill("900")
    button(dialog(page), "Save").click()
    expect(dialog(page)).to_have_count(0)
    with schema_context(org.schema_name):
        assert GlobalPlugin.objects.get(name="cors").config == {
            "allow_origins": ["https://a.example.com"],
            "max_age": 900,
            "allow_credentials": True,
        }
    connections.close_all()

    # Two writers: the form is opened, a colleague changes the route meanwhile, the save is refused.
    page.get_by_role("tab", name="Routes", exact=True).click()
    button(page.get_by_role("tabpanel", name="Routes"), "Edit invoices-renamed").click()
    with schema_context(org.schema_name):
        route = Route.objects.get()
        catalog.save_route(author, cluster, {**RouteViewSet.spec(route), "priority": 7}, route)  # the owner
    connections.close_all()
    dialog(page).get_by_role("textbox", name=re.compile("^Name")).fill("invoices-mine")
    button(dialog(page), "Save").click()
    expect(dialog(page).get_by_text(re.compile(f"was changed by {re.escape(author.label)}"))).to_be_visible()
    screenshot(page, "21-edit-refused-as-stale")
    with schema_context(org.schema_name):
        assert (Route.objects.get().name, Route.objects.get().priority) == ("invoices-renamed", 7)
    connections.close_all()
    button(dialog(page), "Reload").click()
    expect(dialog(page)).to_have_count(0)


# --- the catalog's forms, credentials, traffic filters, history (issue 24) ---------------------


def test_every_field_of_a_route_and_an_upstream_is_set_in_the_console_and_read_back_from_the_api(
    page: Page, control_plane: str
) -> None:
    """The forms generated from the API's schemas offer every field: an upstream and a route are
    made with each of theirs set through the UI, and the API answers exactly that."""
    from saas.catalog.specs import RouteSpec, UpstreamSpec

    org, _, cluster = make_org_with_cluster("fields")
    ca_pem, _ = self_signed_certificate("ca.payments.internal")
    base = f"{control_plane}/api/v1/orgs/{org.slug}/clusters/{cluster.id}"
    open_catalog(page, control_plane, org, "fields", "builder@example.com")

    # An upstream: two targets, hash balancing, TLS, timeouts, retries, both health checks.
    page.get_by_role("tab", name="Upstreams", exact=True).click()
    button(page, "New upstream").click()
    form = dialog(page)
    textbox(form, "Name").fill("payments")
    first = form.get_by_role("group", name="Target 1")
    textbox(first, "Host").fill("10.0.0.7")
    textbox(first, "Port").fill("9443")
    textbox(first, "Weight").fill("30")
    button(form, "Add target").click()
    second = form.get_by_role("group", name="Target 2")
    textbox(second, "Host").fill("pay.internal")
    textbox(second, "Port").fill("9443")
    textbox(second, "Weight").fill("70")
    expect(textbox(form, "Hash header")).to_have_count(0)  # only with hash_header balancing
    pick(page, form, "Load balancing", "hash_header")
    textbox(form, "Hash header").fill("X-User")
    form.get_by_role("button", name=re.compile("Advanced settings")).click()
    pick(page, form, "Scheme", "https")
    textbox(form, "TLS server name (SNI)").fill("pay.internal")
    switch_on(form, "Verify the targets' certificates")
    textbox(form, "CA certificates (PEM)").fill(ca_pem)
    timeouts = form.get_by_role("group", name="Timeouts")
    textbox(timeouts, "Connect (s)").fill("2")
    textbox(timeouts, "Send (s)").fill("7")
    textbox(timeouts, "Read (s)").fill("45")
    textbox(form, "Retries").fill("3")
    switch_on(form, "Check the targets")
    textbox(form, "Check path").fill("/healthz")
    textbox(form, "Interval (s)").fill("2.5")
    textbox(form, "Healthy after").fill("4")
    textbox(form, "Unhealthy after").fill("5")
    switch_on(form, "Watch answers")
    textbox(form, "Failures").fill("6")
    textbox(form, "Fail timeout (s)").fill("20")
    screenshots(page, "30-upstream-form")
    button(form, "Create").click()
    expect(dialog(page)).to_have_count(0)
    [upstream] = read_api(page, f"{base}/upstreams/")["results"]
    assert {key: upstream[key] for key in UpstreamSpec.model_fields} == {
        "name": "payments",
        "targets": [
            {"host": "10.0.0.7", "port": 9443, "weight": 30},
            {"host": "pay.internal", "port": 9443, "weight": 70},
        ],
        "load_balancing": "hash_header",
        "hash_header": "X-User",
        "scheme": "https",
        "tls_sni": "pay.internal",
        "tls_verify": True,
        "tls_ca_pem": ca_pem,
        "timeouts": {"connect_s": 2, "send_s": 7, "read_s": 45},
        "retries": 3,
        "active_health_check": {
            "path": "/healthz",
            "interval_s": 2.5,
            "healthy_threshold": 4,
            "unhealthy_threshold": 5,
        },
        "passive_health_check": {"max_fails": 6, "fail_timeout_s": 20},
    }

    page.get_by_role("tab", name="Services", exact=True).click()
    button(page, "New service").click()
    textbox(dialog(page), "Name").fill("payments-api")
    pick(page, dialog(page), "Upstream", "payments")
    textbox(dialog(page), "Description").fill("Charges and refunds")
    button(dialog(page), "Create").click()
    expect(dialog(page)).to_have_count(0)

    # A route: hosts, paths of two types, methods, a header condition, priority, prefix
    # stripping, and plugins set through the forms their schemas generate.
    page.get_by_role("tab", name="Routes", exact=True).click()
    button(page, "New route").click()
    form = dialog(page)
    textbox(form, "Name").fill("charges")
    pick(page, form, "Service", "payments-api")
    textbox(form.get_by_role("group", name="Path 1"), "Path").fill("/charges")
    button(form, "Add path").click()
    regex = form.get_by_role("group", name="Path 2")
    pick(page, regex, "Match", "regex")
    textbox(regex, "Path").fill("^/charges/[0-9]+$")
    hosts = textbox(form, "Hosts")
    for host in ("api.example.com", "*.shop.example.com"):
        hosts.fill(host)
        hosts.press("Enter")
    pick(page, form, "Methods", "GET", multiple=True)
    pick(page, form, "Methods", "POST", multiple=True)
    button(form, "Add header").click()
    header = form.get_by_role("group", name="Header 1")
    textbox(header, "Header name").fill("X-Tenant")
    textbox(header, "Value").fill("^acme-[a-z]+$")
    pick(page, header, "Match", "regex")
    textbox(form, "Priority").fill("7")
    form.get_by_role("button", name=re.compile("Advanced settings")).click()
    textbox(form, "Strip path prefix").fill("/charges")
    pick(page, form, "Plugins", "limit-count", multiple=True)
    pick(page, form, "Plugins", "key-auth", multiple=True)
    expect(form.get_by_text("Requests allowed in each time window.")).to_be_visible()  # the schema's help
    textbox(form, "Requests").fill("10")
    pick(page, form, "Time window (seconds)", "60")
    pick(page, form, "Counted per", "consumer")
    textbox(form, "Header").fill("X-Key")
    button(form, "Create").click()
    expect(dialog(page)).to_have_count(0)
    [route] = read_api(page, f"{base}/routes/")["results"]
    assert {key: route[key] for key in RouteSpec.model_fields} == {
        "name": "charges",
        "service": "payments-api",
        "hosts": ["*.shop.example.com", "api.example.com"],
        "paths": [{"type": "prefix", "value": "/charges"}, {"type": "regex", "value": "^/charges/[0-9]+$"}],
        "methods": ["GET", "POST"],
        "headers": [{"name": "X-Tenant", "value": "^acme-[a-z]+$", "type": "regex"}],
        "priority": 7,
        "strip_path_prefix": "/charges",
        "plugins": {
            "limit-count": {"count": 10, "time_window": 60, "key": "consumer"},
            "key-auth": {"header": "X-Key"},
        },
    }
    routes = page.get_by_role("table", name="Routes")
    expect(routes.get_by_role("columnheader", name="Priority")).to_be_visible()
    expect(routes.get_by_text("~ ^/charges/[0-9]+$")).to_be_visible()
    screenshots(page, "31-routes")

    # Opened again, the form holds every value; saved unchanged, nothing is sent.
    button(page, "Edit charges").click()
    form = dialog(page)
    expect(textbox(form.get_by_role("group", name="Header 1"), "Value")).to_have_value("^acme-[a-z]+$")
    expect(textbox(form, "Priority")).to_have_value("7")
    expect(form.get_by_role("button", name="Save")).to_be_in_viewport()  # the sticky footer
    screenshots(page, "32-route-form")
    button(form, "Save").click()
    expect(dialog(page)).to_have_count(0)
    assert read_api(page, f"{base}/routes/")["results"][0]["revision"] == route["revision"]


def test_jwt_basic_and_hmac_credentials_are_made_with_their_forms(page: Page, control_plane: str) -> None:
    """Each credential type has a form of its own: generated secrets are shown once with a copy
    button, and what the API stores is what was typed."""
    from passlib.hash import sha512_crypt

    from core.encryption import decrypt_secret
    from saas.catalog import services as catalog
    from saas.catalog.models import Credential

    org, author, cluster = make_org_with_cluster("credentials")
    with schema_context(org.schema_name):
        consumer = catalog.save_consumer(author, cluster, {"username": "mobile"})
    connections.close_all()
    open_catalog(page, control_plane, org, "credentials", "keys@example.com")
    page.get_by_role("tab", name="Consumers", exact=True).click()
    button(page, "Credentials of mobile").click()
    credentials = dialog(page)

    # jwt-auth, HS256: the secret left empty is generated and shown once.
    credentials.locator("label").filter(has_text=re.compile("^jwt-auth$")).click()
    textbox(credentials, "Key claim").fill("mobile-jwt")
    expect(textbox(credentials, "Algorithm")).to_have_value("HS256")
    expect(credentials.get_by_label("Public key (PEM)")).to_have_count(0)
    button(credentials, "Add jwt-auth credential").click()
    shown = credentials.get_by_role("alert").filter(has_text="Shown once: copy it now")
    jwt_secret = shown.locator("code").inner_text()
    expect(button(shown, "Copy the secret")).to_be_visible()
    screenshots(page, "33-credential-secret-shown-once")

    # basic-auth: username and password, the password never shown again.
    credentials.locator("label").filter(has_text=re.compile("^basic-auth$")).click()
    textbox(credentials, "Username").fill("mobile-basic")
    credentials.get_by_label("Password").fill("correct horse battery")
    button(credentials, "Add basic-auth credential").click()
    table = credentials.get_by_role("table", name="Credentials")
    expect(table.get_by_text("user mobile-basic")).to_be_visible()

    # hmac-auth: a key id, the secret generated.
    credentials.locator("label").filter(has_text=re.compile("^hmac-auth$")).click()
    textbox(credentials, "Key id").fill("mobile-hmac")
    button(credentials, "Add hmac-auth credential").click()
    hmac_secret = credentials.get_by_role("alert").filter(has_text="Shown once").locator("code").inner_text()
    expect(table.get_by_text("key id mobile-hmac")).to_be_visible()
    expect(table.get_by_text("key claim mobile-jwt, HS256")).to_be_visible()
    screenshots(page, "34-credentials")

    listed = read_api(
        page,
        f"{control_plane}/api/v1/orgs/{org.slug}/clusters/{cluster.id}/consumers/{consumer.id}/credentials/",
    )["results"]
    assert [{k: v for k, v in c.items() if k != "id"} for c in listed] == [
        {"type": "jwt-auth", "key": "mobile-jwt", "algorithm": "HS256", "public_key": None},
        {"type": "basic-auth", "username": "mobile-basic"},
        {"type": "hmac-auth", "key_id": "mobile-hmac"},
    ]
    with schema_context(org.schema_name):
        stored = {c.type: c for c in Credential.objects.filter(consumer_id=consumer.id)}
        assert decrypt_secret(stored["jwt-auth"].jwt_secret_ciphertext) == jwt_secret
        assert sha512_crypt.verify("correct horse battery", stored["basic-auth"].basic_password_crypt)
        assert decrypt_secret(stored["hmac-auth"].hmac_secret_ciphertext) == hmac_secret
    connections.close_all()


def test_traffic_starts_at_the_last_hour_and_filters_by_route_consumer_and_status(
    page: Page, control_plane: str
) -> None:
    """Usage recorded as the usage consumer records agents' reports; the traffic page starts at
    the last hour and narrows to a consumer, a route, the anonymous requests, and a status code
    (picked in the filter or in the top statuses); the requests chart shows status codes, the
    latency chart p50, p95 and p99 per minute."""
    import uuid

    from gateway_agent.protocol import UsageBatch
    from saas.catalog import services as catalog
    from saas.metering.services import record_usage_batches

    org, author, cluster = make_org_with_cluster("traffic")
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author, cluster, {"name": "backend", "targets": [{"host": "10.0.0.5", "port": 80}]}
        )
        catalog.save_service(author, cluster, {"name": "shop", "upstream": "backend"})
        orders = catalog.save_route(
            author, cluster, {"name": "orders", "service": "shop", "paths": [{"value": "/orders"}]}
        )
        carts = catalog.save_route(
            author, cluster, {"name": "carts", "service": "shop", "paths": [{"value": "/carts"}]}
        )
        for username in ("mobile-app", "web"):
            catalog.save_consumer(author, cluster, {"username": username})
    minute = int(timezone_now().timestamp()) // 60 * 60 - 120
    # (route, consumer, class, code, requests, answers per latency bucket: 1, 2, 5, 10, 20 ms...)
    items = [
        (orders.id, "mobile-app", "2xx", None, 10, [0, 0, 0, 2, 6, 2]),
        (orders.id, "mobile-app", "5xx", 503, 1, [0] * 8 + [1]),  # in 200 to 500 ms
        (carts.id, "mobile-app", "2xx", None, 4, [0, 0, 4]),
        (carts.id, "web", "4xx", 429, 5, []),  # refused by the gateway: no upstream answer
        (orders.id, "", "4xx", 401, 3, []),
    ]
    batch = UsageBatch.model_validate(
        {
            "batch_id": uuid.uuid4().hex,
            "instance_id": "gw-1",
            "window_start": minute,
            "window_end": minute + 60,
            "items": [
                {
                    "minute": minute,
                    "route_id": r,
                    "consumer": c,
                    "status_class": s,
                    "status_code": code,
                    "requests": n,
                    "latency_ms_buckets": latency,
                }
                for r, c, s, code, n, latency in items
            ],
        }
    )
    record_usage_batches(org.schema_name, [(cluster.id, batch)])
    connections.close_all()

    sign_in_as_member(page, control_plane, org, "watcher@example.com", Role.VIEWER)
    page.get_by_role("link", name="traffic", exact=True).click()
    page.get_by_role("tab", name="Traffic").click()
    expect(page.get_by_role("radio", name="Last 1h")).to_be_checked()
    expect(page.get_by_text("23 requests", exact=True)).to_be_visible()
    choose(page, "Consumer", "mobile-app")
    expect(page.get_by_text("15 requests (consumer mobile-app)", exact=True)).to_be_visible()
    expect(page.locator(".recharts-surface").first).to_be_visible()
    screenshots(page, "35-traffic-by-consumer")
    choose(page, "Route", "orders")
    expect(page.get_by_text("11 requests (route orders, consumer mobile-app)", exact=True)).to_be_visible()
    choose(page, "Consumer", "(anonymous)")
    expect(page.get_by_text("3 requests (route orders, consumer (anonymous))", exact=True)).to_be_visible()
    page.locator("label").filter(has_text=re.compile("^Last 24h$")).click()
    expect(page.get_by_role("radio", name="Last 24h")).to_be_checked()
    expect(page.get_by_text("3 requests (route orders, consumer (anonymous))", exact=True)).to_be_visible()

    # By status: 401 in the filter; the route and the consumer lifted from their top tables.
    choose(page, "Status", "401 Unauthorized")
    expect(
        page.get_by_text("3 requests (route orders, consumer (anonymous), status 401)", exact=True)
    ).to_be_visible()
    top_routes = page.get_by_role("table", name="Top routes")
    top_consumers = page.get_by_role("table", name="Top consumers")
    top_statuses = page.get_by_role("table", name="Top statuses")
    button(top_routes, "Filter by route orders").click()
    button(top_consumers, "Filter by consumer (anonymous)").press("Enter")  # by keyboard
    expect(page.get_by_text("3 requests (status 401)", exact=True)).to_be_visible()
    expect(top_statuses.get_by_role("row")).to_have_text(["StatusRequests", "401 Unauthorized3"])
    expect(top_consumers.get_by_role("row")).to_have_text(["ConsumerRequests", "(anonymous)3"])

    # 429: only the calls the gateway refused, all web's on carts.
    choose(page, "Status", "429 Too Many Requests")
    expect(page.get_by_text("5 requests (status 429)", exact=True)).to_be_visible()
    expect(top_routes.get_by_role("row")).to_have_text(["RouteRequests", "carts5"])
    expect(top_consumers.get_by_role("row")).to_have_text(["ConsumerRequests", "web5"])
    page.locator("label").filter(has_text=re.compile("^Last 1h$")).click()
    page.locator("label").filter(has_text=re.compile("^By code$")).click()
    expect(page.get_by_role("radio", name="By code")).to_be_checked()
    expect(
        page.get_by_role("img", name="Requests per minute by status code, last 1h: 429 Too Many Requests 5")
    ).to_be_visible()

    # Every status again (the applied one pressed in the top statuses): each code in the chart.
    button(top_statuses, "Filter by status 429 Too Many Requests").click()
    expect(page.get_by_text("23 requests", exact=True)).to_be_visible()
    requests_chart = page.get_by_role(
        "img",
        name="Requests per minute by status code, last 1h: 2xx 14, 401 Unauthorized 3, "
        "429 Too Many Requests 5, 503 Service Unavailable 1",
    )
    expect(requests_chart.get_by_text("503 Service Unavailable")).to_be_visible()  # the legend
    latency_chart = page.get_by_role(
        "img", name="Latency per minute, last 1h; at its highest: p50 ≤ 20 ms, p95 ≤ 500 ms, p99 ≤ 500 ms"
    )
    expect(latency_chart.locator(".recharts-line")).to_have_count(3)
    # A bar's tooltip names each code (the range's first minute: none of any). Read at the left
    # edge, then left: a hidden tooltip keeps its last place, which the phone check would count
    # as text cut off by the chart's box (it was last shown where a status option was picked).
    chart_box = requests_chart.bounding_box()
    assert chart_box
    page.mouse.move(chart_box["x"] + 75, chart_box["y"] + 100)
    expect(
        requests_chart.locator(".recharts-tooltip-wrapper").get_by_text("429 Too Many Requests")
    ).to_be_visible()
    page.mouse.move(0, 0)
    screenshots(page, "35b-traffic-by-status")


def test_shadowed_routes_global_plugins_and_the_history_diff_side_by_side(
    page: Page, control_plane: str
) -> None:
    """A route a higher-priority prefix hides is flagged, in the list and its form; global plugins
    are listed with their settings by title; the history shows the chosen version's changes beside
    the list, each object before and after, whole."""
    from saas.catalog import services as catalog
    from saas.gateways.models import ConfigSnapshot

    org, author, cluster = make_org_with_cluster("shadows")
    long_regex = "^/orders/" + "[0-9a-f]" * 24 + "/lines/[0-9]+$"
    with schema_context(org.schema_name):
        catalog.save_upstream(
            author, cluster, {"name": "backend", "targets": [{"host": "10.0.0.5", "port": 80}]}
        )
        catalog.save_service(author, cluster, {"name": "shop", "upstream": "backend"})
        catalog.save_route(
            author,
            cluster,
            {"name": "catch-all", "service": "shop", "paths": [{"value": "/"}], "priority": 10},
        )
        route = catalog.save_route(
            author, cluster, {"name": "orders", "service": "shop", "paths": [{"value": "/orders"}]}
        )
        catalog.set_global_plugin(
            author, cluster, "cors", {"allow_origins": ["https://a.example.com"], "max_age": 600}
        )
        catalog.save_route(
            author,
            cluster,
            {
                "name": "orders",
                "service": "shop",
                "paths": [{"type": "regex", "value": long_regex}],
                "priority": 20,
            },
            route,
        )
        regex_version = ConfigSnapshot.objects.filter(cluster=cluster).order_by("-version").first().version
    connections.close_all()
    open_catalog(page, control_plane, org, "shadows", "reader@example.com")
    routes = page.get_by_role("table", name="Routes")
    catch_all = routes.get_by_role("row").filter(has_text="catch-all")
    expect(catch_all.get_by_text("Shadowed")).to_have_count(0)
    page.get_by_role("tab", name="Global plugins").click()
    expect(
        page.get_by_text("Allowed origins: https://a.example.com · Max age (seconds): 600")
    ).to_be_visible()
    screenshots(page, "36-global-plugins")

    # The route made to shadow: a prefix under the catch-all at a lower priority.
    page.get_by_role("tab", name="Routes", exact=True).click()
    button(page, "Edit orders").click()
    form = dialog(page)
    pick(page, form.get_by_role("group", name="Path 1"), "Match", "prefix")
    textbox(form.get_by_role("group", name="Path 1"), "Path").fill("/orders")
    textbox(form, "Priority").fill("0")
    button(form, "Save").click()
    expect(dialog(page)).to_have_count(0)
    expect(
        routes.get_by_role("row").filter(has_text="orders").filter(has_text="/orders").get_by_text("Shadowed")
    ).to_be_visible()
    button(page, "Edit orders").click()
    expect(
        dialog(page).get_by_text(re.compile(r"/orders is never reached: route catch-all \(priority 10\)"))
    ).to_be_visible()
    screenshots(page, "37-shadowed-route")
    page.keyboard.press("Escape")

    # The history: the latest version's changes, beside the list, nothing cut short.
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("heading", name=re.compile(r"^What changed in v\d+$"))).to_be_visible()
    changed = page.get_by_role("region", name="route orders changed")
    expect(changed.get_by_role("columnheader")).to_have_count(2)
    expect(changed.locator("tr[data-diff=changed]").first).to_be_visible()
    # The version that made the path a long regex: the whole pattern shown.
    button(page, f"What changed in v{regex_version}").click()
    expect(page.get_by_role("heading", name=f"What changed in v{regex_version}")).to_be_visible()
    expect(
        page.get_by_role("region", name="route orders changed").get_by_text(long_regex, exact=False)
    ).to_be_visible()
    versions = page.get_by_role("table", name="Versions").bounding_box()
    diff = page.get_by_role("heading", name=f"What changed in v{regex_version}").bounding_box()
    assert versions and diff and diff["x"] > versions["x"] + versions["width"] - 1, (versions, diff)
    screenshots(page, "38-history")


# --- overviews, gateways, cluster and API tokens, the audit log (issue 24) ---------------------


def _expect_overview(page: Page, requests: int) -> None:
    """An overview on screen: one gateway, online and on the latest version, and `requests` calls
    in the last hour with their sparkline and error rates."""
    gateways = page.get_by_role("region", name="Gateways", exact=True)
    expect(gateways).to_contain_text("1 of 1 online")
    expect(gateways).to_contain_text("1 on the latest version")
    traffic = page.get_by_role("region", name="Requests, last hour", exact=True)
    expect(traffic.get_by_text(f"{requests:,}", exact=True)).to_be_visible()
    expect(traffic.get_by_role("img")).to_be_visible()  # the sparkline
    expect(page.get_by_role("region", name="Error rates, last hour", exact=True)).to_contain_text("%")


def test_an_owner_rotates_a_cluster_token_and_makes_an_api_token_with_a_ceiling_and_an_expiry(
    page: Page, control_plane: str
) -> None:
    """Through the console only: a cluster token made, rotated with a 24-hour grace period (the old
    one listed as rotating until then), and revoked once confirmed; an API token made with the
    developer role ceiling and an expiry, read back through the API and used; the audit log
    filtered by action, by who and by day."""
    from datetime import date, datetime, timedelta

    org, _, cluster = make_org_with_cluster("edge")
    sign_in_as_member(page, control_plane, org, "ops@example.com", Role.OWNER)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("region", name="Gateways", exact=True)).to_contain_text("0 of 0 online")
    page.get_by_role("link", name="Clusters").click()
    expect(page.get_by_role("table", name="Clusters").get_by_role("link", name="edge")).to_be_visible()
    screenshots(page, "40-clusters")
    page.get_by_role("link", name="edge").click()
    expect(page.get_by_role("tab", name="Overview")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="Gateways").click()
    expect(page.get_by_text("No gateway has connected yet")).to_be_visible()

    # A cluster token, shown once with a copy button.
    tokens = page.get_by_role("table", name="Cluster tokens")
    page.get_by_label("Token name").fill("eu-gateways")
    button(page, "Create cluster token").click()
    made = page.get_by_role("alert").filter(has_text="Your cluster token eu-gateways (shown once)")
    old_secret = made.locator("code").inner_text()
    assert old_secret.startswith("gct_"), old_secret
    expect(button(made, "Copy the secret")).to_be_visible()
    row = tokens.get_by_role("row").filter(has_text="eu-gateways")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("never used")

    # Rotated, the old secret kept for 24 hours: listed as rotating until then.
    row.get_by_role("button", name=re.compile("^Rotate eu-gateways")).click()
    choose(page, "Grace period", "24 hours")
    button(dialog(page), "Rotate").click()
    expect(dialog(page)).to_have_count(0)
    rotated = page.get_by_role("alert").filter(has_text="The new secret of eu-gateways (shown once)")
    new_secret = rotated.locator("code").inner_text()
    assert new_secret.startswith("gct_") and new_secret != old_secret
    # Each listed by its prefix: gct_<organization id>_ and 6 characters.
    prefix = len(f"gct_{org.id}_") + 6
    old_row = tokens.get_by_role("row").filter(has_text=old_secret[:prefix])
    expect(old_row).to_contain_text("rotating")
    expect(old_row).to_contain_text("(in 24 h)")
    expect(tokens.get_by_role("row").filter(has_text=new_secret[:prefix])).to_contain_text("active")
    screenshots(page, "41-gateways-and-cluster-tokens")
    listed = read_api(page, f"{control_plane}/api/v1/orgs/{org.slug}/clusters/{cluster.id}/tokens/")[
        "results"
    ]
    [old] = [token for token in listed if token["prefix"] == old_secret[:prefix]]
    until = datetime.fromisoformat(old["revoked_at"].replace("Z", "+00:00"))
    assert old["status"] == "rotating"
    assert abs(until - timezone_now() - timedelta(hours=24)) < timedelta(minutes=5), until

    # Revoked once confirmed: refused from now on.
    old_row.get_by_role("button", name=re.compile("^Revoke eu-gateways")).click()
    button(dialog(page), "Revoke").click()
    expect(old_row).to_contain_text("revoked")
    listed = read_api(page, f"{control_plane}/api/v1/orgs/{org.slug}/clusters/{cluster.id}/tokens/")[
        "results"
    ]
    assert [token["status"] for token in listed if token["prefix"] == old_secret[:prefix]] == ["revoked"]

    # An API token: a developer's ceiling, an expiry in 30 days.
    page.get_by_role("link", name="Organization").click()
    members = page.get_by_role("table", name="Members")
    expect(members.get_by_role("textbox", name="Role of ops@example.com")).to_have_value("owner")
    screenshots(page, "42-organization-members")
    page.get_by_role("tab", name="API tokens").click()
    expect(page.get_by_role("textbox", name="Role ceiling")).to_have_value("viewer")  # the least, unasked
    page.get_by_label("Token name").fill("deploy-bot")
    choose(page, "Role ceiling", "developer")
    expiry = (date.today() + timedelta(days=30)).isoformat()
    page.get_by_label("Expires on").fill(expiry)
    button(page, "Create API token").click()
    shown = page.get_by_role("alert").filter(has_text="Your API token (shown once)")
    secret = shown.locator("code").inner_text()
    row = page.get_by_role("table", name="API tokens").get_by_role("row").filter(has_text="deploy-bot")
    expect(row).to_contain_text("developer")
    expect(row).to_contain_text("never used")
    screenshots(page, "43-api-tokens")
    [token] = read_api(page, f"{control_plane}/api/v1/orgs/{org.slug}/tokens/?search=deploy-bot")["results"]
    assert token["role_ceiling"] == "developer"
    # The start of that day where the browser is.
    midnight = page.evaluate("day => new Date(day + 'T00:00:00').toISOString()", expiry)
    assert datetime.fromisoformat(token["expires_at"].replace("Z", "+00:00")) == datetime.fromisoformat(
        midnight.replace("Z", "+00:00")
    )
    # The token reads as a developer, and cannot do what a developer may not.
    bearer = {"Authorization": f"Bearer {secret}"}
    clusters = httpx.get(f"{control_plane}/api/v1/orgs/{org.slug}/clusters/", headers=bearer)
    assert clusters.status_code == 200 and clusters.json()["count"] == 1, clusters.text
    refused = httpx.post(
        f"{control_plane}/api/v1/orgs/{org.slug}/clusters/", headers=bearer, json={"name": "x"}
    )
    assert refused.status_code == 403, refused.text

    # The audit log, filtered: the cluster token's entries, by who, from today.
    page.get_by_role("tab", name="Audit log").click()
    log = page.get_by_role("table", name="Audit log")
    expect(log.get_by_text("api_token.create")).to_be_visible()
    page.get_by_role("textbox", name="Action", exact=True).fill("cluster_token.*")
    expect(log.get_by_text("api_token.create")).to_have_count(0)
    for action in ("cluster_token.create", "cluster_token.rotate", "cluster_token.revoke"):
        expect(log.get_by_text(action, exact=True).first).to_be_visible()
    choose(page, "Who", "ops@example.com")
    page.get_by_label("From", exact=True).fill(date.today().isoformat())
    page.get_by_label("To", exact=True).fill(date.today().isoformat())
    expect(log.get_by_text("cluster_token.rotate", exact=True)).to_be_visible()
    page.get_by_label("From", exact=True).fill((date.today() - timedelta(days=3)).isoformat())
    page.get_by_label("To", exact=True).fill((date.today() - timedelta(days=2)).isoformat())
    expect(page.get_by_role("tabpanel", name="Audit log").get_by_text("Nothing matches.")).to_be_visible()
    page.get_by_label("To", exact=True).fill(date.today().isoformat())
    expect(log.get_by_text("cluster_token.rotate", exact=True)).to_be_visible()
    screenshots(page, "44-audit-log")
