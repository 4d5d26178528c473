"""The web console in a real browser (Chromium, through Selenium), served by the control plane
as `make run` serves it: a newcomer signs up, lands in their organization, creates a cluster,
finds the install command and its empty instance list, upgrades on the billing page; a viewer
sees no button for what their role may not do."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import httpx
import pytest
from django.conf import settings
from django.db import connections
from selenium import webdriver
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from saas.launcher.services import free_port
from tenants.models import User
from tenants.roles import Role
from tests.control_plane import env_sharing_test_database, start_control_plane, wait_until_up
from tests.factories import PASSWORD, add_member, make_org, make_user, self_signed_certificate

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if not (settings.CONSOLE_DIST / "index.html").is_file():
        pytest.fail("The console is not built: `make test` builds it (make console).")
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        options.binary_location = chromium
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


@pytest.fixture
def console_url(transactional_db: None) -> Iterator[str]:
    port = free_port()
    process = start_control_plane(port, env_sharing_test_database())
    try:
        wait_until_up(port)
        yield f"http://127.0.0.1:{port}/console"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _wait(driver: WebDriver, condition, timeout: float = 15):
    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        page = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"timed out at {driver.current_url}; the page says:\n{page[:1500]}") from None


def _text(driver: WebDriver, text: str):
    """The innermost element whose text (all of it, however React split it) contains `text`."""
    has = f"contains(normalize-space(.), {text!r})"
    return _wait(driver, seen.presence_of_element_located((By.XPATH, f"//*[{has} and not(*[{has}])]")))


def _field(driver: WebDriver, label: str):
    return _wait(
        driver,
        seen.presence_of_element_located((By.XPATH, f"//label[contains(., {label!r})]/following::input[1]")),
    )


class _Button:
    """A button found by its exact label whose click waits out a closing modal's overlay (Mantine
    fades it for 200 ms, and the browser refuses a click that lands on it)."""

    def __init__(self, driver: WebDriver, text: str) -> None:
        self.driver, self.xpath = driver, f"//button[normalize-space(.)={text!r}]"
        _wait(driver, seen.element_to_be_clickable((By.XPATH, self.xpath)))

    def click(self) -> None:
        button = self.driver.find_element(By.XPATH, self.xpath)
        if not self.driver.execute_script("return !!arguments[0].closest('.mantine-Modal-content')", button):
            # A button of the page: whatever modal was open must be gone, fade-out included.
            _wait(self.driver, lambda d: not d.find_elements(By.CSS_SELECTOR, ".mantine-Modal-overlay"))
        deadline = time.monotonic() + 5
        while True:
            try:
                self.driver.find_element(By.XPATH, self.xpath).click()
                return
            except (ElementClickInterceptedException, StaleElementReferenceException):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def _link(driver: WebDriver, text: str) -> None:
    """Follow a link by its text; a script's click, which a fading overlay cannot intercept."""
    link = _wait(driver, seen.presence_of_element_located((By.LINK_TEXT, text)))
    driver.execute_script("arguments[0].click()", link)


def _button(driver: WebDriver, text: str) -> _Button:
    return _Button(driver, text)


def _tab(driver: WebDriver, name: str) -> None:
    tab = _wait(
        driver, seen.presence_of_element_located((By.XPATH, f"//button[@role='tab'][contains(., {name!r})]"))
    )
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", tab)


def _choose(driver: WebDriver, label: str, option: str) -> None:
    """Pick `option` in the Mantine select or multi-select labelled `label` (re-rendered as the
    form changes, hence found again when stale)."""
    for attempt in range(3):
        try:
            # A script's click: a multi-select's input sits under its pills box.
            driver.execute_script("arguments[0].click()", _field(driver, label))
            xpath = f"//*[@role='option'][contains(., {option!r})]"
            _wait(driver, seen.element_to_be_clickable((By.XPATH, xpath))).click()
            break
        except StaleElementReferenceException:
            if attempt == 2:
                raise


def test_a_newcomer_signs_up_creates_a_cluster_and_finds_how_to_install_it(browser, console_url):
    browser.get(f"{console_url}/")
    _text(browser, "Log in to Gateway Cloud")  # signed out: the login page
    browser.get(f"{console_url}/signup")
    _field(browser, "Email").send_keys("ada@example.com")
    _field(browser, "Password").send_keys("a long enough passphrase 42")
    _field(browser, "Organization").send_keys("Analytical Engines")
    _button(browser, "Sign up").click()
    _text(browser, "No clusters yet")  # landed in the new organization
    _button(browser, "New cluster").click()
    _field(browser, "Name").send_keys("production")
    _button(browser, "Create cluster").click()
    _link(browser, "production")
    _text(browser, "No gateway has connected yet")
    # The catalog: an upstream, then a service with key-auth set through its generated form.
    _tab(browser, "Catalog")
    _tab(browser, "Upstreams")
    _button(browser, "New upstream").click()
    _field(browser, "Name").send_keys("backend")
    _wait(
        browser,
        seen.presence_of_element_located(
            (By.XPATH, "//label[contains(., 'Targets')]/following::textarea[1]")
        ),
    ).send_keys("127.0.0.1:9000")
    _button(browser, "Create").click()
    _text(browser, "127.0.0.1:9000")
    # Edited in place: the form comes filled in; saving replaces the entry.
    _button(browser, "Edit").click()
    targets = _wait(
        browser,
        seen.presence_of_element_located(
            (By.XPATH, "//label[contains(., 'Targets')]/following::textarea[1]")
        ),
    )
    assert targets.get_attribute("value") == "127.0.0.1:9000"
    targets.clear()
    targets.send_keys("127.0.0.1:9001")
    _button(browser, "Save").click()
    _text(browser, "127.0.0.1:9001")
    # A certificate from PEM; its key is never shown again.
    _tab(browser, "Certificates")
    _button(browser, "New certificate").click()
    certificate, key = self_signed_certificate("api.example.com")
    _field(browser, "Name").send_keys("api")
    for label, pem in (("Certificate", certificate), ("Private key", key)):
        area = browser.find_element(By.XPATH, f"//label[contains(., {label!r})]/following::textarea[1]")
        browser.execute_script("arguments[0].focus()", area)
        area.send_keys(pem)
    _button(browser, "Create").click()
    _text(browser, "api.example.com")
    _tab(browser, "Upstreams")
    _tab(browser, "Services")
    _button(browser, "New service").click()
    _field(browser, "Name").send_keys("orders")
    _choose(browser, "Upstream", "backend")
    _choose(browser, "Plugins", "key-auth")
    _text(browser, "header")  # key-auth's own settings, from its JSON Schema
    _button(browser, "Create").click()
    _wait(browser, seen.presence_of_element_located((By.XPATH, "//code[contains(., 'key-auth')]")))
    # A consumer with a generated key-auth key, shown once.
    _tab(browser, "Consumers")
    _button(browser, "New consumer").click()
    _field(browser, "Username").send_keys("mobile-app")
    _button(browser, "Create").click()
    _button(browser, "Credentials").click()
    _button(browser, "Add credential").click()
    _text(browser, "Shown once: copy it now")
    _wait(
        browser, seen.presence_of_element_located((By.XPATH, "//*[contains(normalize-space(.), 'key-auth')]"))
    )
    browser.find_element(By.XPATH, "//button[contains(@class, 'CloseButton')]").click()
    # History: the versions those changes published, what each changed, and a dry-run plan.
    _tab(browser, "History")
    _text(browser, "service.create orders").click()  # the version it published, by its reason
    _text(browser, "What changed in")
    _wait(browser, seen.presence_of_element_located((By.XPATH, "//p[normalize-space(.)='+ orders']")))
    _button(browser, "Export").click()
    _wait(browser, lambda d: "orders" in d.find_element(By.XPATH, "//textarea").get_attribute("value"))
    _button(browser, "Preview changes").click()
    _text(browser, "Nothing would change")
    _tab(browser, "Traffic")
    _text(browser, "No traffic in this range")
    _tab(browser, "Install")
    _text(browser, "install.sh")
    _button(browser, "Create cluster token").click()
    token = _text(browser, "gct_").text
    assert token.startswith("gct_")
    # Billing: the owner sees the plan and upgrades (billing runs locally here).
    _link(browser, "Billing")
    _text(browser, "Stripe is not connected")
    _button(browser, "Upgrade to Pro").click()
    _wait(
        browser, seen.invisibility_of_element_located((By.XPATH, "//button[contains(., 'Upgrade to Pro')]"))
    )
    assert "Pro" in browser.find_element(By.TAG_NAME, "main").text
    # The organization: its members, an API token shown once, and the audit log of all of it.
    _link(browser, "Organization")
    _text(browser, "ada@example.com")
    _tab(browser, "API tokens")
    _field(browser, "Token name").send_keys("ci")
    _button(browser, "Create API token").click()
    _text(browser, "shown once")
    _tab(browser, "Audit log")
    _text(browser, "billing.plan_changed")


def test_the_console_hides_what_a_viewer_may_not_do(browser, console_url):
    # The viewer signs up through the control plane, which hashes passwords its own way (the
    # tests' fast hasher is not among its hashers), then joins as a viewer.
    owner = make_user("owner@example.com")
    org = make_org(owner, name="Viewers Inc", slug="viewers-inc")
    signup = httpx.post(
        console_url.replace("/console", "/api/v1/auth/signup/"),
        json={"email": "viewer@example.com", "password": PASSWORD},
    )
    assert signup.status_code == 201, signup.text
    viewer = add_member(org, Role.VIEWER, User.objects.get(email="viewer@example.com"))
    connections.close_all()
    browser.get(f"{console_url}/login")
    _field(browser, "Email").send_keys(viewer.user.email)
    _field(browser, "Password").send_keys(PASSWORD)
    _button(browser, "Log in").click()
    _text(browser, "No clusters yet")
    assert not browser.find_elements(By.XPATH, "//button[contains(., 'New cluster')]")
    assert not browser.find_elements(By.LINK_TEXT, "Billing")
    # A wrong password is an error on the page, not a crash.
    browser.find_element(By.XPATH, "//button[contains(., 'Log out')]").click()
    _field(browser, "Email").send_keys(viewer.user.email)
    _field(browser, "Password").send_keys("wrong")
    _button(browser, "Log in").click()
    _wait(browser, seen.presence_of_element_located((By.XPATH, "//*[@role='alert']")))


def test_an_owner_connects_aws_and_follows_a_deploy_step_by_step(
    browser, transactional_db, monkeypatch, tmp_path
):
    """Against moto (AWS) and the fake Kubernetes API: the quick-create link's ExternalId, the
    role verified, a deploy whose step log fills in, and a failure shown with a retry."""
    import boto3
    from moto.server import ThreadedMotoServer

    from saas.deployments import aws
    from tests.fakes.kubernetes_api import FakeKubernetes

    moto = ThreadedMotoServer(port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    aws_url = f"http://{host}:{port}"
    httpx.post(f"{aws_url}/moto-api/reset")
    kube = FakeKubernetes()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    env = {
        **env_sharing_test_database(),
        "SAAS_AWS_ENDPOINT_URL": aws_url,
        "SAAS_EKS_ENDPOINT_OVERRIDE": kube.url,
        "SAAS_DEPLOY_WAIT_S": "2",
        "CELERY_TASK_ALWAYS_EAGER": "true",
    }
    control_port = free_port()
    control = start_control_plane(control_port, env)
    try:
        wait_until_up(control_port)
        base = f"http://127.0.0.1:{control_port}/console"
        browser.get(f"{base}/signup")
        _field(browser, "Email").send_keys("grace@example.com")
        _field(browser, "Password").send_keys("a long enough passphrase 42")
        _field(browser, "Organization").send_keys("Compilers")
        _button(browser, "Sign up").click()
        _button(browser, "New cluster").click()
        _field(browser, "Name").send_keys("edge")
        _button(browser, "Create cluster").click()
        _wait(browser, seen.element_to_be_clickable((By.LINK_TEXT, "edge")))
        _link(browser, "Deploy to AWS")
        external_id = _text(browser, "gwc-").text
        # What the customer does in their account: launch the template, copy the role ARN.
        client = boto3.client("cloudformation", region_name="us-east-1", endpoint_url=aws_url)
        client.create_stack(
            StackName="gateway-cloud",
            TemplateBody=aws.role_template(),
            Parameters=[{"ParameterKey": "ExternalId", "ParameterValue": external_id}],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        role_arn = client.describe_stacks(StackName="gateway-cloud")["Stacks"][0]["Outputs"][0]["OutputValue"]
        boto3.client("eks", region_name="us-east-1", endpoint_url=aws_url).create_cluster(
            name="prod-eks",
            roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": []},
        )
        _field(browser, "Role ARN").send_keys(role_arn)
        _button(browser, "Verify and connect").click()
        _text(browser, "connected to 123456789012")
        _choose(browser, "Gateway cluster", "edge")
        _choose(browser, "EKS cluster", "prod-eks")
        _button(browser, "Deploy").click()
        # Applied and rolled out, but no gateway came online in time (none runs here): the step
        # log says which step failed and why, and offers a retry.
        _text(browser, "wait for rollout: succeeded")
        _text(browser, "instances online: failed")
        _text(browser, "No gateway instance came online")
        _button(browser, "Retry")
        assert {a.kind for a in kube.applies} >= {"Namespace", "Deployment", "Service", "NetworkPolicy"}
    finally:
        control.terminate()
        control.wait(timeout=20)
        kube.close()
        moto.stop()
