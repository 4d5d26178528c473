"""Steps of the console's end-to-end tests, as a user takes them in the browser, and the
screenshots they save (test-artifacts/console/)."""

from __future__ import annotations

import re

import httpx
from django.db import connections
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tenants.models import Organization, User
from tenants.roles import Role
from tests.control_plane import ROOT, env_sharing_test_database
from tests.factories import PASSWORD, add_member

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


def control_plane_env(**extra: str) -> dict[str, str]:
    """The environment of a control plane process that shares the test database."""
    env = {**env_sharing_test_database(), **extra}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True, animations="disabled")


def button(scope: Page | Locator, name: str) -> Locator:
    return scope.get_by_role("button", name=name, exact=True)


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the Mantine select or multi-select labelled `label`."""
    # force: a multi-select's pills box lies over its input, and takes the click as the user's.
    page.get_by_role("textbox", name=label).click(force=True)
    page.get_by_role("option", name=option, exact=True).click()


def sign_up(page: Page, url: str, email: str, organization: str) -> None:
    page.goto(f"{url}/console/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("a long enough passphrase 42")
    page.get_by_label("Organization").fill(organization)
    button(page, "Sign up").click()
    # Signed in, the organization's overview first; then its clusters (none yet).
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("link", name="Clusters").click()
    expect(page.get_by_text("No clusters yet")).to_be_visible()


def dialog(page: Page) -> Locator:
    return page.get_by_role("dialog")


def sign_in_as_member(page: Page, control_plane: str, org: Organization, email: str, role: str) -> None:
    """Signed up through the control plane (its own password hasher), added to `org`, signed in."""
    signup = httpx.post(f"{control_plane}/api/v1/auth/signup/", json={"email": email, "password": PASSWORD})
    assert signup.status_code == 201, signup.text
    add_member(org, role, User.objects.get(email=email))
    connections.close_all()
    page.goto(f"{control_plane}/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    button(page, "Log in").click()


def textbox(scope: Page | Locator, label: str) -> Locator:
    """The input labelled `label` (a required one's asterisk aside)."""
    return scope.get_by_role("textbox", name=re.compile(f"^{re.escape(label)}( \\*)?$"))


def pick(page: Page, scope: Page | Locator, label: str, option: str, *, multiple: bool = False) -> None:
    """Pick `option` in the select (or `multiple`: multi-select) labelled exactly `label` within
    `scope`; the click that opens it waits for the field to stand still (a section unfolding),
    except on a multi-select, whose pills lie over its input."""
    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):
        textbox(scope, label).click(force=multiple)
        try:
            choice.wait_for(state="visible", timeout=3_000)
            break
        except PlaywrightTimeoutError:
            continue
    choice.click()


def switch_on(scope: Page | Locator, label: str) -> None:
    """Turn on the switch labelled `label`, as a user does: by its label."""
    scope.locator("label").filter(has_text=re.compile(f"^{re.escape(label)}$")).click()
    expect(scope.get_by_role("switch", name=label)).to_be_checked()


def read_api(page: Page, url: str) -> dict:
    """A GET of the API with the browser's own session: what the console wrote, read back."""
    answer = page.request.get(url)
    assert answer.ok, answer.text()
    return answer.json()


def open_catalog(page: Page, control_plane: str, org: Organization, cluster_name: str, email: str) -> None:
    sign_in_as_member(page, control_plane, org, email, Role.DEVELOPER)
    page.get_by_role("link", name=cluster_name, exact=True).click()
    page.get_by_role("tab", name="Catalog").click()


LAPTOP_AND_PHONE = ((1440, 900), (390, 844))


def screenshots(page: Page, name: str, *, fits_a_phone: bool = True) -> None:
    """The page at a laptop's size and at a phone's (test-artifacts/console/<name>-<size>.png);
    on the phone nothing is wider than the screen (wide tables scroll in place) unless the page
    is known not to fit yet (`fits_a_phone`)."""
    before = page.viewport_size
    for width, height in LAPTOP_AND_PHONE:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # the layout settles (a dialog goes full screen on a phone)
        screenshot(page, f"{name}-{width}x{height}")
        if width < 500 and fits_a_phone:
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name}: {overflow}px wider than a phone"
    if before:
        page.set_viewport_size(before)
