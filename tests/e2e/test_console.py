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
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connections
from django.utils.timezone import now as timezone_now
from django_tenants.utils import schema_context
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from saas.launcher.services import free_port
from tenants.models import Organization, User
from tenants.roles import Role
from tests.control_plane import (
    ROOT,
    env_sharing_test_database,
    start_control_plane,
    start_echo_upstream,
    stop_gateway,
    wait_for,
    wait_until_up,
)
from tests.factories import PASSWORD, add_member, make_org_with_cluster, self_signed_certificate

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ARTIFACTS = ROOT / "test-artifacts" / "console"
# Chromium as root, in a sandbox with no network beyond loopback: no sandboxing of its own, and
# none of the background connections it would make to Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not (settings.CONSOLE_DIST / "index.html").is_file():
        pytest.fail("The console is not built: `make test` builds it (make console).")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if not executable:
        pytest.fail("Chromium is missing: `make test` installs it (make system-deps).")
    # Playwright's sync API keeps an event loop on this thread while the browser runs; the
    # tests' own ORM calls are still plain synchronous ones.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)  # what a live page waits for: a refresh, a heartbeat
    page = context.new_page()
    yield page
    context.close()


def _control_plane_env(**extra: str) -> dict[str, str]:
    env = {**env_sharing_test_database(), **extra}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


@pytest.fixture
def control_plane(transactional_db: None) -> Iterator[str]:
    """The control plane's URL: its web process and the usage consumer, as `make run` starts them."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _control_plane_env(SAAS_PUBLIC_URL=url)
    web = start_control_plane(port, env)
    consumer = subprocess.Popen(
        [sys.executable, "manage.py", "consume_usage", "--name", "console-e2e"], cwd=ROOT, env=env
    )
    try:
        wait_until_up(port)
        yield url
    finally:
        for process in (consumer, web):
            process.terminate()
            process.wait(timeout=20)


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True, animations="disabled")


def _button(scope: Page | Locator, name: str) -> Locator:
    return scope.get_by_role("button", name=name, exact=True)


def _choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the Mantine select or multi-select labelled `label`."""
    # force: a multi-select's pills box lies over its input, and takes the click as the user's.
    page.get_by_role("textbox", name=label).click(force=True)
    page.get_by_role("option", name=option, exact=True).click()


def _sign_up(page: Page, url: str, email: str, organization: str) -> None:
    page.goto(f"{url}/console/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("a long enough passphrase 42")
    page.get_by_label("Organization").fill(organization)
    _button(page, "Sign up").click()
    # Signed in, the organization's overview first; then its clusters (none yet).
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("link", name="Clusters").click()
    expect(page.get_by_text("No clusters yet")).to_be_visible()


def _dialog(page: Page) -> Locator:
    return page.get_by_role("dialog")


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
        _sign_up(page, control_plane, "ada@example.com", "Analytical Engines")
        _screenshot(page, "01-clusters-empty")
        _button(page, "New cluster").click()
        _dialog(page).get_by_label("Name").fill("production")
        _button(page, "Create cluster").click()
        page.get_by_role("link", name="production").click()
        expect(page.get_by_text("No gateway has connected yet")).to_be_visible()

        # The catalog: an upstream (edited in place), a service, a route with key-auth.
        page.get_by_role("tab", name="Catalog").click()
        page.get_by_role("tab", name="Upstreams").click()
        _button(page, "New upstream").click()
        _dialog(page).get_by_label("Name").fill("backend")
        target = _dialog(page).get_by_role("group", name="Target 1")
        target.get_by_label("Host").fill("127.0.0.1")
        target.get_by_label("Port").fill("9")
        _button(_dialog(page), "Create").click()
        expect(page.get_by_text("127.0.0.1:9", exact=True)).to_be_visible()
        _button(page, "Edit backend").click()
        port = _dialog(page).get_by_role("group", name="Target 1").get_by_label("Port")
        expect(port).to_have_value("9")  # the form comes filled in
        port.fill(str(upstream.server_address[1]))
        _button(_dialog(page), "Save").click()
        expect(page.get_by_text(f"127.0.0.1:{upstream.server_address[1]}")).to_be_visible()

        page.get_by_role("tab", name="Services").click()
        _button(page, "New service").click()
        _dialog(page).get_by_label("Name").fill("orders")
        _choose(page, "Upstream", "backend")
        _button(_dialog(page), "Create").click()
        services = page.get_by_role("table", name="Services")
        expect(services.get_by_role("row").filter(has_text="orders")).to_contain_text("backend")

        page.get_by_role("tab", name="Routes").click()
        _button(page, "New route").click()
        form = _dialog(page)
        form.get_by_label("Name").fill("orders")
        _choose(page, "Service", "orders")
        path_1 = form.get_by_role("group", name="Path 1")
        paths = path_1.get_by_role("textbox", name="Path")
        paths.fill("orders")  # no leading slash: the API refuses it
        _choose(page, "Plugins", "key-auth")
        expect(form.get_by_role("textbox", name="header")).to_have_attribute("placeholder", "apikey")
        _button(form, "Create").click()
        # The API's message beside the field it is about, and the form kept as typed.
        expect(paths).to_have_attribute("aria-invalid", "true")
        paths_field = path_1.locator(".mantine-InputWrapper-root").filter(
            has=page.get_by_role("textbox", name="Path")
        )
        expect(paths_field).to_contain_text("a path starts with / and has no spaces")
        expect(form.get_by_text("Please correct the fields marked below.")).to_be_visible()
        _screenshot(page, "02-validation-error")
        paths.fill("/orders")
        _button(form, "Create").click()
        expect(page.get_by_role("table", name="Routes").get_by_text("/orders", exact=True)).to_be_visible()
        expect(page.locator("code", has_text="key-auth")).to_be_visible()

        # A consumer and its generated key, shown once.
        page.get_by_role("tab", name="Consumers").click()
        _button(page, "New consumer").click()
        _dialog(page).get_by_label("Username").fill("mobile-app")
        _button(_dialog(page), "Create").click()
        _button(page, "Credentials of mobile-app").click()
        _button(_dialog(page), "Add key-auth credential").click()
        shown = _dialog(page).get_by_role("alert").filter(has_text="Shown once: copy it now")
        key = shown.locator("code").inner_text()
        assert len(key) >= 16, key
        _screenshot(page, "03-consumer-key")
        page.keyboard.press("Escape")
        expect(_dialog(page)).to_have_count(0)

        # A certificate from PEM: listed by its names; its key is never shown again.
        page.get_by_role("tab", name="Certificates").click()
        _button(page, "New certificate").click()
        certificate, private_key = self_signed_certificate("api.example.com")
        _dialog(page).get_by_label("Name").fill("api")
        _dialog(page).get_by_label("Certificate").fill(certificate)
        _dialog(page).get_by_label("Private key").fill(private_key)
        _button(_dialog(page), "Create").click()
        certificates = page.get_by_role("table", name="Certificates")
        expect(certificates.get_by_role("row").filter(has_text="api.example.com")).to_be_visible()
        _screenshot(page, "04-catalog")

        # The install page: a cluster token, and the command with it filled in.
        page.get_by_role("tab", name="Install").click()
        _button(page, "Create cluster token").click()
        expect(page.get_by_text("Your cluster token (shown once)")).to_be_visible()
        command = page.locator("pre", has_text="gateway-agent run").inner_text()
        assert "<cluster token>" not in command and "gct_" in command, command
        _screenshot(page, "05-install")
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
        _screenshot(page, "06-instances")

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
        _screenshot(page, "07-traffic")
        # Filtered by the consumer: its calls alone.
        _choose(page, "Consumer", "mobile-app")
        expect(page.get_by_text(f"{with_key} requests (consumer mobile-app)", exact=True)).to_be_visible()
        _screenshot(page, "07b-traffic-by-consumer")
        # The overviews: the cluster's, then the organization's (the first page after signing in):
        # the gateway online on the latest version, and the calls of the last hour.
        page.get_by_role("tab", name="Overview").click()
        _expect_overview(page, answered)
        _screenshots_on_a_phone_too(page, "06b-cluster-overview")
        page.get_by_role("link", name="Overview").click()
        _expect_overview(page, answered)
        failing = page.get_by_role("table", name="Top failing routes")
        expect(failing.get_by_role("row").filter(has_text="(no route matched)")).to_contain_text("production")
        changes = page.get_by_role("region", name="Recent changes", exact=True)
        expect(changes).to_contain_text("ada@example.com")
        quota = page.get_by_role("region", name="Quota", exact=True)
        expect(quota).to_contain_text(f"{answered:,} of")  # calls this period, against the plan's
        expect(quota.get_by_role("progressbar")).to_have_attribute("aria-label", re.compile(r"^Calls used"))
        _screenshots_on_a_phone_too(page, "06c-overview")
        page.get_by_role("link", name="Billing").click()
        expect(page.get_by_role("heading", name=str(answered), exact=True)).to_be_visible()
        expect(page.get_by_text("Stripe is not connected")).to_be_visible()
        _screenshot(page, "08-billing")

        # Rollback: the route deleted, then the version before it restored, at the gateway too.
        page.get_by_role("link", name="Clusters").click()
        page.get_by_role("link", name="production").click()
        page.get_by_role("tab", name="Catalog").click()
        route_row = page.get_by_role("table", name="Routes").get_by_role("row").filter(has_text="/orders")
        _button(route_row, "Delete orders").click()
        _button(_dialog(page), "Delete").click()
        expect(page.get_by_text("No routes yet.")).to_be_visible()
        wait_for(lambda: call("/orders/20", apikey=key) == 404, what="the deletion at the gateway")
        page.get_by_role("tab", name="History").click()
        page.get_by_role("button", name=re.compile(r"^Roll back to v\d+$")).first.click()
        _button(_dialog(page), "Roll back").click()
        expect(page.get_by_text(re.compile(r"rollback", re.IGNORECASE)).first).to_be_visible()
        wait_for(lambda: call("/orders/21", apikey=key) == 200, what="the rollback at the gateway")
        assert call("/orders/22") == 401  # key-auth is back with the route
        page.get_by_role("button", name=re.compile(r"^What changed in v\d+$")).first.click()
        expect(page.get_by_text(re.compile(r"^What changed in v\d+$"))).to_be_visible()
        _screenshot(page, "09-history")
        _button(page, "Export").click()
        expect(page.locator("textarea").first).to_have_value(re.compile("orders"))
        _button(page, "Preview changes").click()
        expect(page.get_by_text("Nothing would change")).to_be_visible()
        # The rollback's version (the content of an earlier one) is applied and shown up to date.
        page.get_by_role("tab", name="Gateways").click()
        expect(page.get_by_text("up to date", exact=True)).to_be_visible()
        _screenshot(page, "09b-instances-up-to-date")

        # The organization: members, an API token shown once, and the audit log of all of it.
        page.get_by_role("link", name="Organization").click()
        expect(page.get_by_text("ada@example.com").first).to_be_visible()
        page.get_by_role("tab", name="API tokens").click()
        page.get_by_label("Token name").fill("ci")
        _button(page, "Create API token").click()
        expect(page.get_by_text("shown once")).to_be_visible()
        page.get_by_role("tab", name="Audit log").click()
        expect(page.get_by_text("snapshot.rollback").first).to_be_visible()
        _screenshot(page, "10-audit-log")
        # Upgrading (billing runs locally here: no Stripe keys).
        page.get_by_role("link", name="Billing").click()
        _button(page, "Upgrade to Pro").click()
        expect(_button(page, "Upgrade to Pro")).to_have_count(0)
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
    expect(_button(page, "New cluster")).to_have_count(0)
    expect(page.get_by_role("link", name="Billing")).to_have_count(0)
    expect(page.get_by_role("link", name="Deploy to AWS")).to_have_count(0)
    page.get_by_role("link", name="staging").click()
    page.get_by_role("tab", name="Catalog").click()
    expect(page.get_by_role("table", name="Routes").get_by_text("/orders", exact=True)).to_be_visible()
    expect(_button(page, "New route")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^(Edit|Delete)"))).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)  # no rows to select for a bulk delete
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("button", name=re.compile("^What changed in v"))).not_to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Roll back"))).to_have_count(0)
    expect(_button(page, "Export")).to_have_count(0)
    page.get_by_role("tab", name="Install").click()
    expect(page.locator("pre", has_text="gateway-agent run")).to_be_visible()
    expect(_button(page, "Create cluster token")).to_have_count(0)

    # On a phone: the navigation folds behind a button, and opens from it.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(page.get_by_role("link", name="Organization")).not_to_be_in_viewport()
    _button(page, "Open navigation").click()
    expect(page.get_by_role("link", name="Organization")).to_be_in_viewport()
    _screenshot(page, "11-phone-navigation")
    page.get_by_role("link", name="Organization").click()
    expect(page.locator("main").get_by_text("viewer@example.com")).to_be_visible()
    expect(_button(page, "Close navigation")).to_have_count(0)
    _screenshot(page, "12-phone-organization")

    # Logged out, a wrong password is an error on the page, not a crash.
    page.set_viewport_size({"width": 1280, "height": 900})
    _button(page, "Log out").click()
    page.get_by_label("Email").fill("viewer@example.com")
    page.get_by_label("Password").fill("wrong")
    _button(page, "Log in").click()
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
    env = _control_plane_env(
        SAAS_AWS_ENDPOINT_URL=aws_url,
        SAAS_EKS_ENDPOINT_OVERRIDE=kube.url,
        SAAS_DEPLOY_WAIT_S="2",
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    control_port = free_port()
    control = start_control_plane(control_port, env)
    try:
        wait_until_up(control_port)
        _sign_up(page, f"http://127.0.0.1:{control_port}", "grace@example.com", "Compilers")
        _button(page, "New cluster").click()
        _dialog(page).get_by_label("Name").fill("edge")
        _button(page, "Create cluster").click()
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
        _button(page, "Verify and connect").click()
        expect(page.get_by_text("connected to 123456789012")).to_be_visible()
        expect(page.get_by_text(re.compile("it may list EKS clusters"))).to_be_visible()
        _choose(page, "Gateway cluster", "edge")
        _choose(page, "EKS cluster", "prod-eks")
        _button(page, "Deploy").click()
        # Applied and rolled out, but no gateway came online in time (none runs here): the step
        # log says which step failed and why, and offers a retry.
        expect(page.get_by_text("wait for rollout: succeeded")).to_be_visible()
        expect(page.get_by_text("instances online: failed")).to_be_visible()
        expect(page.get_by_text("No gateway instance came online").first).to_be_visible()
        expect(_button(page, "Retry")).to_be_visible()
        expect(page.get_by_text("Gateway image:")).to_be_visible()
        _screenshot(page, "13-aws-deploy")
        assert {a.kind for a in kube.applies} >= {"Namespace", "Deployment", "Service", "NetworkPolicy"}
    finally:
        control.terminate()
        control.wait(timeout=20)
        kube.close()
        moto.stop()


def _sign_in_as_member(page: Page, control_plane: str, org: Organization, email: str, role: str) -> None:
    """Signed up through the control plane (its own password hasher), added to `org`, signed in."""
    signup = httpx.post(f"{control_plane}/api/v1/auth/signup/", json={"email": email, "password": PASSWORD})
    assert signup.status_code == 201, signup.text
    add_member(org, role, User.objects.get(email=email))
    connections.close_all()
    page.goto(f"{control_plane}/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    _button(page, "Log in").click()


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
    _sign_in_as_member(page, control_plane, org, "editor@example.com", Role.DEVELOPER)
    page.get_by_role("link", name="edits").click()
    page.get_by_role("tab", name="Catalog").click()
    for tab, (model, spec, name) in kinds.items():
        page.get_by_role("tab", name=tab, exact=True).click()
        panel = page.get_by_role("tabpanel", name=tab)
        _button(panel, f"Edit {name}").click()
        field = _dialog(page).get_by_role("textbox", name=re.compile("^(Name|Username)"))
        expect(field).to_have_value(name)
        field.fill(f"{name}-renamed")
        _button(_dialog(page), "Save").click()
        expect(_dialog(page)).to_have_count(0)
        expect(panel.get_by_text(f"{name}-renamed", exact=True)).to_be_visible()
        after = spec_of(model, spec)
        key = "username" if tab == "Consumers" else "name"
        assert after == {**before[tab], key: f"{name}-renamed"}, tab
        # What refers to it by name follows the rename.
        before = {t: spec_of(m, s) for t, (m, s, _) in kinds.items()}
    _screenshot(page, "20-edited-consumers")

    page.get_by_role("tab", name="Global plugins").click()
    plugins = page.get_by_role("tabpanel", name="Global plugins")
    _button(plugins, "Edit cors").click()
    _dialog(page).get_by_role("textbox", name=re.compile("Max age")).fill("900")
    _button(_dialog(page), "Save").click()
    expect(_dialog(page)).to_have_count(0)
    with schema_context(org.schema_name):
        assert GlobalPlugin.objects.get(name="cors").config == {
            "allow_origins": ["https://a.example.com"],
            "max_age": 900,
            "allow_credentials": True,
        }
    connections.close_all()

    # Two writers: the form is opened, a colleague changes the route meanwhile, the save is refused.
    page.get_by_role("tab", name="Routes", exact=True).click()
    _button(page.get_by_role("tabpanel", name="Routes"), "Edit invoices-renamed").click()
    with schema_context(org.schema_name):
        route = Route.objects.get()
        catalog.save_route(author, cluster, {**RouteViewSet.spec(route), "priority": 7}, route)  # the owner
    connections.close_all()
    _dialog(page).get_by_role("textbox", name=re.compile("^Name")).fill("invoices-mine")
    _button(_dialog(page), "Save").click()
    expect(_dialog(page).get_by_text(re.compile(f"was changed by {re.escape(author.label)}"))).to_be_visible()
    _screenshot(page, "21-edit-refused-as-stale")
    with schema_context(org.schema_name):
        assert (Route.objects.get().name, Route.objects.get().priority) == ("invoices-renamed", 7)
    connections.close_all()
    _button(_dialog(page), "Reload").click()
    expect(_dialog(page)).to_have_count(0)


# --- the catalog's forms, credentials, traffic filters, history (issue 24) ---------------------

SIZES = {"desktop": (1440, 900), "phone": (390, 844)}


def _screenshots(page: Page, name: str) -> None:
    """The page as it is, at a laptop's size and at a phone's (test-artifacts/console/)."""
    before = page.viewport_size
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # the layout settles (a dialog goes full screen on a phone)
        _screenshot(page, f"{name}-{size}-{width}x{height}")
    if before:
        page.set_viewport_size(before)


def _textbox(scope: Page | Locator, label: str) -> Locator:
    """The input labelled `label` (a required one's asterisk aside)."""
    return scope.get_by_role("textbox", name=re.compile(f"^{re.escape(label)}( \\*)?$"))


def _pick(page: Page, scope: Page | Locator, label: str, option: str, *, multiple: bool = False) -> None:
    """Pick `option` in the select (or `multiple`: multi-select) labelled exactly `label` within
    `scope`; the click that opens it waits for the field to stand still (a section unfolding),
    except on a multi-select, whose pills lie over its input."""
    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):
        _textbox(scope, label).click(force=multiple)
        try:
            choice.wait_for(state="visible", timeout=3_000)
            break
        except PlaywrightTimeoutError:
            continue
    choice.click()


def _switch_on(scope: Page | Locator, label: str) -> None:
    """Turn on the switch labelled `label`, as a user does: by its label."""
    scope.locator("label").filter(has_text=re.compile(f"^{re.escape(label)}$")).click()
    expect(scope.get_by_role("switch", name=label)).to_be_checked()


def _api(page: Page, url: str) -> dict:
    """A GET of the API with the browser's own session: what the console wrote, read back."""
    answer = page.request.get(url)
    assert answer.ok, answer.text()
    return answer.json()


def _open_catalog(page: Page, control_plane: str, org: Organization, cluster_name: str, email: str) -> None:
    _sign_in_as_member(page, control_plane, org, email, Role.DEVELOPER)
    page.get_by_role("link", name=cluster_name, exact=True).click()
    page.get_by_role("tab", name="Catalog").click()


def test_every_field_of_a_route_and_an_upstream_is_set_in_the_console_and_read_back_from_the_api(
    page: Page, control_plane: str
) -> None:
    """The forms generated from the API's schemas offer every field: an upstream and a route are
    made with each of theirs set through the UI, and the API answers exactly that."""
    from saas.catalog.specs import RouteSpec, UpstreamSpec

    org, _, cluster = make_org_with_cluster("fields")
    ca_pem, _ = self_signed_certificate("ca.payments.internal")
    base = f"{control_plane}/api/v1/orgs/{org.slug}/clusters/{cluster.id}"
    _open_catalog(page, control_plane, org, "fields", "builder@example.com")

    # An upstream: two targets, hash balancing, TLS, timeouts, retries, both health checks.
    page.get_by_role("tab", name="Upstreams", exact=True).click()
    _button(page, "New upstream").click()
    form = _dialog(page)
    _textbox(form, "Name").fill("payments")
    first = form.get_by_role("group", name="Target 1")
    _textbox(first, "Host").fill("10.0.0.7")
    _textbox(first, "Port").fill("9443")
    _textbox(first, "Weight").fill("30")
    _button(form, "Add target").click()
    second = form.get_by_role("group", name="Target 2")
    _textbox(second, "Host").fill("pay.internal")
    _textbox(second, "Port").fill("9443")
    _textbox(second, "Weight").fill("70")
    expect(_textbox(form, "Hash header")).to_have_count(0)  # only with hash_header balancing
    _pick(page, form, "Load balancing", "hash_header")
    _textbox(form, "Hash header").fill("X-User")
    form.get_by_role("button", name=re.compile("Advanced settings")).click()
    _pick(page, form, "Scheme", "https")
    _textbox(form, "TLS server name (SNI)").fill("pay.internal")
    _switch_on(form, "Verify the targets' certificates")
    _textbox(form, "CA certificates (PEM)").fill(ca_pem)
    timeouts = form.get_by_role("group", name="Timeouts")
    _textbox(timeouts, "Connect (s)").fill("2")
    _textbox(timeouts, "Send (s)").fill("7")
    _textbox(timeouts, "Read (s)").fill("45")
    _textbox(form, "Retries").fill("3")
    _switch_on(form, "Check the targets")
    _textbox(form, "Check path").fill("/healthz")
    _textbox(form, "Interval (s)").fill("2.5")
    _textbox(form, "Healthy after").fill("4")
    _textbox(form, "Unhealthy after").fill("5")
    _switch_on(form, "Watch answers")
    _textbox(form, "Failures").fill("6")
    _textbox(form, "Fail timeout (s)").fill("20")
    _screenshots(page, "30-upstream-form")
    _button(form, "Create").click()
    expect(_dialog(page)).to_have_count(0)
    [upstream] = _api(page, f"{base}/upstreams/")["results"]
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
    _button(page, "New service").click()
    _textbox(_dialog(page), "Name").fill("payments-api")
    _pick(page, _dialog(page), "Upstream", "payments")
    _textbox(_dialog(page), "Description").fill("Charges and refunds")
    _button(_dialog(page), "Create").click()
    expect(_dialog(page)).to_have_count(0)

    # A route: hosts, paths of two types, methods, a header condition, priority, prefix
    # stripping, and plugins set through the forms their schemas generate.
    page.get_by_role("tab", name="Routes", exact=True).click()
    _button(page, "New route").click()
    form = _dialog(page)
    _textbox(form, "Name").fill("charges")
    _pick(page, form, "Service", "payments-api")
    _textbox(form.get_by_role("group", name="Path 1"), "Path").fill("/charges")
    _button(form, "Add path").click()
    regex = form.get_by_role("group", name="Path 2")
    _pick(page, regex, "Match", "regex")
    _textbox(regex, "Path").fill("^/charges/[0-9]+$")
    hosts = _textbox(form, "Hosts")
    for host in ("api.example.com", "*.shop.example.com"):
        hosts.fill(host)
        hosts.press("Enter")
    _pick(page, form, "Methods", "GET", multiple=True)
    _pick(page, form, "Methods", "POST", multiple=True)
    _button(form, "Add header").click()
    header = form.get_by_role("group", name="Header 1")
    _textbox(header, "Header name").fill("X-Tenant")
    _textbox(header, "Value").fill("^acme-[a-z]+$")
    _pick(page, header, "Match", "regex")
    _textbox(form, "Priority").fill("7")
    form.get_by_role("button", name=re.compile("Advanced settings")).click()
    _textbox(form, "Strip path prefix").fill("/charges")
    _pick(page, form, "Plugins", "limit-count", multiple=True)
    _pick(page, form, "Plugins", "key-auth", multiple=True)
    expect(form.get_by_text("Requests allowed in each time window.")).to_be_visible()  # the schema's help
    _textbox(form, "Requests").fill("10")
    _pick(page, form, "Time window (seconds)", "60")
    _pick(page, form, "Counted per", "consumer")
    _textbox(form, "Header").fill("X-Key")
    _button(form, "Create").click()
    expect(_dialog(page)).to_have_count(0)
    [route] = _api(page, f"{base}/routes/")["results"]
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
    _screenshots(page, "31-routes")

    # Opened again, the form holds every value; saved unchanged, nothing is sent.
    _button(page, "Edit charges").click()
    form = _dialog(page)
    expect(_textbox(form.get_by_role("group", name="Header 1"), "Value")).to_have_value("^acme-[a-z]+$")
    expect(_textbox(form, "Priority")).to_have_value("7")
    expect(form.get_by_role("button", name="Save")).to_be_in_viewport()  # the sticky footer
    _screenshots(page, "32-route-form")
    _button(form, "Save").click()
    expect(_dialog(page)).to_have_count(0)
    assert _api(page, f"{base}/routes/")["results"][0]["revision"] == route["revision"]


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
    _open_catalog(page, control_plane, org, "credentials", "keys@example.com")
    page.get_by_role("tab", name="Consumers", exact=True).click()
    _button(page, "Credentials of mobile").click()
    dialog = _dialog(page)

    # jwt-auth, HS256: the secret left empty is generated and shown once.
    dialog.locator("label").filter(has_text=re.compile("^jwt-auth$")).click()
    _textbox(dialog, "Key claim").fill("mobile-jwt")
    expect(_textbox(dialog, "Algorithm")).to_have_value("HS256")
    expect(dialog.get_by_label("Public key (PEM)")).to_have_count(0)
    _button(dialog, "Add jwt-auth credential").click()
    shown = dialog.get_by_role("alert").filter(has_text="Shown once: copy it now")
    jwt_secret = shown.locator("code").inner_text()
    expect(_button(shown, "Copy the secret")).to_be_visible()
    _screenshots(page, "33-credential-secret-shown-once")

    # basic-auth: username and password, the password never shown again.
    dialog.locator("label").filter(has_text=re.compile("^basic-auth$")).click()
    _textbox(dialog, "Username").fill("mobile-basic")
    dialog.get_by_label("Password").fill("correct horse battery")
    _button(dialog, "Add basic-auth credential").click()
    table = dialog.get_by_role("table", name="Credentials")
    expect(table.get_by_text("user mobile-basic")).to_be_visible()

    # hmac-auth: a key id, the secret generated.
    dialog.locator("label").filter(has_text=re.compile("^hmac-auth$")).click()
    _textbox(dialog, "Key id").fill("mobile-hmac")
    _button(dialog, "Add hmac-auth credential").click()
    hmac_secret = dialog.get_by_role("alert").filter(has_text="Shown once").locator("code").inner_text()
    expect(table.get_by_text("key id mobile-hmac")).to_be_visible()
    expect(table.get_by_text("key claim mobile-jwt, HS256")).to_be_visible()
    _screenshots(page, "34-credentials")

    listed = _api(
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


def test_traffic_starts_at_the_last_hour_and_filters_by_route_and_consumer(
    page: Page, control_plane: str
) -> None:
    """Usage recorded as the usage consumer records agents' reports; the traffic page starts at
    the last hour and narrows to a consumer, a route, and the anonymous requests."""
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
    items = [
        (orders.id, "mobile-app", "2xx", 10),
        (orders.id, "mobile-app", "5xx", 1),
        (carts.id, "mobile-app", "2xx", 4),
        (carts.id, "web", "4xx", 5),
        (orders.id, "", "4xx", 3),
    ]
    batch = UsageBatch.model_validate(
        {
            "batch_id": uuid.uuid4().hex,
            "instance_id": "gw-1",
            "window_start": minute,
            "window_end": minute + 60,
            "items": [
                {"minute": minute, "route_id": r, "consumer": c, "status_class": s, "requests": n}
                for r, c, s, n in items
            ],
        }
    )
    record_usage_batches(org.schema_name, [(cluster.id, batch)])
    connections.close_all()

    _sign_in_as_member(page, control_plane, org, "watcher@example.com", Role.VIEWER)
    page.get_by_role("link", name="traffic", exact=True).click()
    page.get_by_role("tab", name="Traffic").click()
    expect(page.get_by_role("radio", name="Last 1h")).to_be_checked()
    expect(page.get_by_text("23 requests", exact=True)).to_be_visible()
    _choose(page, "Consumer", "mobile-app")
    expect(page.get_by_text("15 requests (consumer mobile-app)", exact=True)).to_be_visible()
    expect(page.locator(".recharts-surface").first).to_be_visible()
    _screenshots(page, "35-traffic-by-consumer")
    _choose(page, "Route", "orders")
    expect(page.get_by_text("11 requests (route orders, consumer mobile-app)", exact=True)).to_be_visible()
    _choose(page, "Consumer", "(anonymous)")
    expect(page.get_by_text("3 requests (route orders, consumer (anonymous))", exact=True)).to_be_visible()
    page.locator("label").filter(has_text=re.compile("^Last 24h$")).click()
    expect(page.get_by_role("radio", name="Last 24h")).to_be_checked()
    expect(page.get_by_text("3 requests (route orders, consumer (anonymous))", exact=True)).to_be_visible()


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
    _open_catalog(page, control_plane, org, "shadows", "reader@example.com")
    routes = page.get_by_role("table", name="Routes")
    catch_all = routes.get_by_role("row").filter(has_text="catch-all")
    expect(catch_all.get_by_text("Shadowed")).to_have_count(0)
    page.get_by_role("tab", name="Global plugins").click()
    expect(
        page.get_by_text("Allowed origins: https://a.example.com · Max age (seconds): 600")
    ).to_be_visible()
    _screenshots(page, "36-global-plugins")

    # The route made to shadow: a prefix under the catch-all at a lower priority.
    page.get_by_role("tab", name="Routes", exact=True).click()
    _button(page, "Edit orders").click()
    form = _dialog(page)
    _pick(page, form.get_by_role("group", name="Path 1"), "Match", "prefix")
    _textbox(form.get_by_role("group", name="Path 1"), "Path").fill("/orders")
    _textbox(form, "Priority").fill("0")
    _button(form, "Save").click()
    expect(_dialog(page)).to_have_count(0)
    expect(
        routes.get_by_role("row").filter(has_text="orders").filter(has_text="/orders").get_by_text("Shadowed")
    ).to_be_visible()
    _button(page, "Edit orders").click()
    expect(
        _dialog(page).get_by_text(re.compile(r"/orders is never reached: route catch-all \(priority 10\)"))
    ).to_be_visible()
    _screenshots(page, "37-shadowed-route")
    page.keyboard.press("Escape")

    # The history: the latest version's changes, beside the list, nothing cut short.
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_role("heading", name=re.compile(r"^What changed in v\d+$"))).to_be_visible()
    changed = page.get_by_role("region", name="route orders changed")
    expect(changed.get_by_role("columnheader")).to_have_count(2)
    expect(changed.locator("tr[data-diff=changed]").first).to_be_visible()
    # The version that made the path a long regex: the whole pattern shown.
    _button(page, f"What changed in v{regex_version}").click()
    expect(page.get_by_role("heading", name=f"What changed in v{regex_version}")).to_be_visible()
    expect(
        page.get_by_role("region", name="route orders changed").get_by_text(long_regex, exact=False)
    ).to_be_visible()
    versions = page.get_by_role("table", name="Versions").bounding_box()
    diff = page.get_by_role("heading", name=f"What changed in v{regex_version}").bounding_box()
    assert versions and diff and diff["x"] > versions["x"] + versions["width"] - 1, (versions, diff)
    _screenshots(page, "38-history")


# --- overviews, gateways, cluster and API tokens, the audit log (issue 24) ---------------------

LAPTOP_AND_PHONE = ((1440, 900), (390, 844))


def _screenshots_on_a_phone_too(page: Page, name: str) -> None:
    """The page at a laptop's size and at a phone's (test-artifacts/console/<name>-<size>.png); on
    the phone nothing is wider than the screen (wide tables scroll in place)."""
    before = page.viewport_size
    for width, height in LAPTOP_AND_PHONE:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # the layout settles
        _screenshot(page, f"{name}-{width}x{height}")
        if width < 500:
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name}: {overflow}px wider than a phone"
    if before:
        page.set_viewport_size(before)


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
    _sign_in_as_member(page, control_plane, org, "ops@example.com", Role.OWNER)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("region", name="Gateways", exact=True)).to_contain_text("0 of 0 online")
    page.get_by_role("link", name="Clusters").click()
    expect(page.get_by_role("table", name="Clusters").get_by_role("link", name="edge")).to_be_visible()
    _screenshots_on_a_phone_too(page, "40-clusters")
    page.get_by_role("link", name="edge").click()
    expect(page.get_by_role("tab", name="Overview")).to_have_attribute("aria-selected", "true")
    page.get_by_role("tab", name="Gateways").click()
    expect(page.get_by_text("No gateway has connected yet")).to_be_visible()

    # A cluster token, shown once with a copy button.
    tokens = page.get_by_role("table", name="Cluster tokens")
    page.get_by_label("Token name").fill("eu-gateways")
    _button(page, "Create cluster token").click()
    made = page.get_by_role("alert").filter(has_text="Your cluster token eu-gateways (shown once)")
    old_secret = made.locator("code").inner_text()
    assert old_secret.startswith("gct_"), old_secret
    expect(_button(made, "Copy the secret")).to_be_visible()
    row = tokens.get_by_role("row").filter(has_text="eu-gateways")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("never used")

    # Rotated, the old secret kept for 24 hours: listed as rotating until then.
    row.get_by_role("button", name=re.compile("^Rotate eu-gateways")).click()
    _choose(page, "Grace period", "24 hours")
    _button(_dialog(page), "Rotate").click()
    expect(_dialog(page)).to_have_count(0)
    rotated = page.get_by_role("alert").filter(has_text="The new secret of eu-gateways (shown once)")
    new_secret = rotated.locator("code").inner_text()
    assert new_secret.startswith("gct_") and new_secret != old_secret
    # Each listed by its prefix: gct_<organization id>_ and 6 characters.
    prefix = len(f"gct_{org.id}_") + 6
    old_row = tokens.get_by_role("row").filter(has_text=old_secret[:prefix])
    expect(old_row).to_contain_text("rotating")
    expect(old_row).to_contain_text("(in 24 h)")
    expect(tokens.get_by_role("row").filter(has_text=new_secret[:prefix])).to_contain_text("active")
    _screenshots_on_a_phone_too(page, "41-gateways-and-cluster-tokens")
    listed = _api(page, f"{control_plane}/api/v1/orgs/{org.slug}/clusters/{cluster.id}/tokens/")["results"]
    [old] = [token for token in listed if token["prefix"] == old_secret[:prefix]]
    until = datetime.fromisoformat(old["revoked_at"].replace("Z", "+00:00"))
    assert old["status"] == "rotating"
    assert abs(until - timezone_now() - timedelta(hours=24)) < timedelta(minutes=5), until

    # Revoked once confirmed: refused from now on.
    old_row.get_by_role("button", name=re.compile("^Revoke eu-gateways")).click()
    _button(_dialog(page), "Revoke").click()
    expect(old_row).to_contain_text("revoked")
    listed = _api(page, f"{control_plane}/api/v1/orgs/{org.slug}/clusters/{cluster.id}/tokens/")["results"]
    assert [token["status"] for token in listed if token["prefix"] == old_secret[:prefix]] == ["revoked"]

    # An API token: a developer's ceiling, an expiry in 30 days.
    page.get_by_role("link", name="Organization").click()
    members = page.get_by_role("table", name="Members")
    expect(members.get_by_role("textbox", name="Role of ops@example.com")).to_have_value("owner")
    _screenshots_on_a_phone_too(page, "42-organization-members")
    page.get_by_role("tab", name="API tokens").click()
    expect(page.get_by_role("textbox", name="Role ceiling")).to_have_value("viewer")  # the least, unasked
    page.get_by_label("Token name").fill("deploy-bot")
    _choose(page, "Role ceiling", "developer")
    expiry = (date.today() + timedelta(days=30)).isoformat()
    page.get_by_label("Expires on").fill(expiry)
    _button(page, "Create API token").click()
    shown = page.get_by_role("alert").filter(has_text="Your API token (shown once)")
    secret = shown.locator("code").inner_text()
    row = page.get_by_role("table", name="API tokens").get_by_role("row").filter(has_text="deploy-bot")
    expect(row).to_contain_text("developer")
    expect(row).to_contain_text("never used")
    _screenshots_on_a_phone_too(page, "43-api-tokens")
    [token] = _api(page, f"{control_plane}/api/v1/orgs/{org.slug}/tokens/?search=deploy-bot")["results"]
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
    _choose(page, "Who", "ops@example.com")
    page.get_by_label("From", exact=True).fill(date.today().isoformat())
    page.get_by_label("To", exact=True).fill(date.today().isoformat())
    expect(log.get_by_text("cluster_token.rotate", exact=True)).to_be_visible()
    page.get_by_label("From", exact=True).fill((date.today() - timedelta(days=3)).isoformat())
    page.get_by_label("To", exact=True).fill((date.today() - timedelta(days=2)).isoformat())
    expect(page.get_by_role("tabpanel", name="Audit log").get_by_text("Nothing matches.")).to_be_visible()
    page.get_by_label("To", exact=True).fill(date.today().isoformat())
    expect(log.get_by_text("cluster_token.rotate", exact=True)).to_be_visible()
    _screenshots_on_a_phone_too(page, "44-audit-log")
