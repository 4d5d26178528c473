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
    try:
        textbox(scope, label).wait_for(state="attached")
    except PlaywrightTimeoutError:
        # What the user saw instead, in the failure's report (CI keeps no screenshots).
        seen = (scope if isinstance(scope, Locator) else scope.locator("body")).aria_snapshot()
        raise AssertionError(f"no field labelled {label!r}; the accessibility tree:\n{seen}") from None
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

# What does not fit a phone's screen, described: the page wider than the screen; a dialog that
# scrolls sideways; anything fixed (a header, a dialog) or placed past the right edge with no box
# around it that scrolls or clips it; text cut off by a box too narrow for it (a badge, a secret).
# Wide tables scroll inside their own box, which is fine.
_WHAT_DOES_NOT_FIT_A_PHONE = """() => {
  const screen = document.documentElement.clientWidth;
  const describe = (el) => {
    const text = (el.innerText || el.getAttribute("aria-label") || "").trim().replace(/\\s+/g, " ").slice(0, 60);
    const names = typeof el.className === "string" ? el.className.split(" ").filter((c) => c.startsWith("mantine-")).join(".") : "";
    return `<${el.tagName.toLowerCase()}${names ? " " + names : ""}> ${Math.round(el.getBoundingClientRect().width)}px "${text}"`;
  };
  const found = [];
  const overflow = document.documentElement.scrollWidth - screen;
  if (overflow > 0) found.push(`the page is ${overflow}px wider than the screen`);
  for (const box of document.querySelectorAll(".mantine-Modal-content, .mantine-Modal-body")) {
    if (box.scrollWidth > box.clientWidth + 1) found.push(`a dialog scrolls sideways: ${describe(box)}`);
  }
  const clipped = (el) => {
    for (let up = el.parentElement; up && up !== document.body; up = up.parentElement) {
      if (getComputedStyle(up).overflowX !== "visible") return true;
    }
    return false;
  };
  // Seen by the user: not hidden, not transparent (a chart's tooltip once it is left), itself
  // or through an ancestor, and with text.
  const shown = (el) =>
    el.checkVisibility({ opacityProperty: true, visibilityProperty: true }) && (el.innerText || "").trim() !== "";
  // Text of its own (itself), or a visible descendant with text, past a clipping box's right edge.
  const cutOff = (el) => {
    if (el.scrollWidth <= el.clientWidth + 1 || !shown(el) || el.matches("input, textarea, select")) return false;
    const right = el.getBoundingClientRect().right + 1;
    const past = (node) => {
      const range = document.createRange();
      range.selectNodeContents(node);
      return range.getBoundingClientRect().right > right;
    };
    const texts = [...el.childNodes].filter((node) => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
    if (texts.some(past)) return el;
    return [...el.querySelectorAll("*")].find((inner) => shown(inner) && past(inner));
  };
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (box.width <= 1 || box.height <= 1) continue;
    const cut = ["hidden", "clip"].includes(style.overflowX) ? cutOff(el) : undefined;
    if (cut) {
      found.push(`cut off: ${describe(el)} holds ${el.scrollWidth}px${cut === el ? "" : `: ${describe(cut)}`}`);
    } else if (box.right > screen + 1 && !clipped(el)) {
      // Hidden too: an invisible box still widens the page.
      found.push(`past the right edge${style.visibility === "hidden" ? " (hidden)" : ""}: ${describe(el)}`);
    }
    if (found.length > 10) break;
  }
  return found;
}"""


def screenshots(page: Page, name: str) -> None:
    """The page at a laptop's size and at a phone's (test-artifacts/console/<name>-<size>.png);
    on the phone nothing is wider than the screen or cut off (wide tables scroll in place)."""
    before = page.viewport_size
    for width, height in LAPTOP_AND_PHONE:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)  # the layout settles (a dialog goes full screen on a phone)
        screenshot(page, f"{name}-{width}x{height}")
        if width < 500:
            wide = page.evaluate(_WHAT_DOES_NOT_FIT_A_PHONE)
            assert not wide, f"{name}: does not fit a phone: " + "; ".join(wide)
    if before:
        page.set_viewport_size(before)
