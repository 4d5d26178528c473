"""Identity in a real browser, against the control plane as `make run` serves it, its emails written
to files (Django's file-based backend) and its clock movable (tests/e2e/movable_clock.py): a
forgotten password reset from the emailed link, which works once and expires; repeated failed
sign-ins locked out with a message saying until when; a session ended from another browser; the
address verified from the banner's link; two-factor sign-in set up from the Account page (its
codes computed with pyotp from the key the page shows, as an authenticator app would) and used
with a code and with a recovery code; an owner's "Require two-factor sign-in" holding another
member to its setup at their next sign-in.

Screenshots: test-artifacts/console/60-... to 69-..."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp
import pytest
from django.db import connections
from playwright.sync_api import Browser, Locator, Page, expect

from saas.launcher.services import free_port
from tenants.models import Organization, User
from tenants.roles import Role
from tests.e2e.console_steps import button, control_plane_env, screenshots, switch_on
from tests.e2e.movable_clock import move_clock, serving
from tests.factories import PASSWORD, add_member

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a brand new passphrase 2026"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


@dataclass
class ControlPlane:
    url: str
    clock: Path  # movable_clock.move_clock moves the control plane's clock
    mail: Path  # where its emails are written, one file per message

    def last_link(self, kind: str) -> str:
        """The link to /console/<kind>/... in the newest email that has one."""
        for message in sorted(self.mail.glob("*.log"), key=lambda path: path.stat().st_mtime, reverse=True):
            links = re.findall(rf"{re.escape(self.url)}/console/{kind}/\S+", message.read_text())
            if links:
                return links[-1]
        raise AssertionError(f"no email with a /console/{kind}/ link in {self.mail}")

    def sign_up(self, email: str) -> None:
        answer = httpx.post(f"{self.url}/api/v1/auth/signup/", json={"email": email, "password": PASSWORD})
        assert answer.status_code == 201, answer.text


@pytest.fixture
def control_plane(transactional_db: None, tmp_path: Path) -> Iterator[ControlPlane]:
    """The web process with a movable clock, writing its emails into files and sending them at
    once (Celery's tasks run in the request: no worker to start)."""
    port = free_port()
    plane = ControlPlane(url=f"http://127.0.0.1:{port}", clock=tmp_path / "clock", mail=tmp_path / "mail")
    env = control_plane_env(
        SAAS_PUBLIC_URL=plane.url,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(plane.mail),
        CELERY_TASK_ALWAYS_EAGER="true",
    )
    with serving(plane.clock, port, env):
        yield plane


def log_in(page: Page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_response(re.compile(r"/api/v1/auth/login/$")):
        button(page, "Log in").click()


def test_a_forgotten_password_is_reset_from_the_emailed_link_which_works_once_and_expires(
    page: Page, control_plane: ControlPlane
) -> None:
    url = control_plane.url
    control_plane.sign_up("ada@example.com")

    page.goto(f"{url}/console/login")
    page.get_by_role("link", name="Forgot password?").click()
    page.get_by_label("Email").fill("ada@example.com")
    button(page, "Send the link").click()
    expect(page.get_by_role("alert")).to_contain_text("The link works once, within 60 minutes.")
    screenshots(page, "60-identity-forgot-password")

    # The emailed link opens the console's page for a new password.
    link = control_plane.last_link("reset")
    page.goto(link)
    expect(page.get_by_text("For ada@example.com.")).to_be_visible()
    page.get_by_label("New password").fill("short")
    button(page, "Set the new password").click()
    expect(page.get_by_text(re.compile("This password is too short"))).not_to_have_count(0)
    screenshots(page, "61-identity-reset-password")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    button(page, "Set the new password").click()
    expect(page.get_by_role("alert")).to_have_text("Your password is changed: log in with it.")
    button(page, "Log in").click()
    log_in(page, url, "ada@example.com", NEW_PASSWORD)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # The same link again: refused, with the way to a new one.
    page.goto(link)
    expect(page.get_by_text("This link has expired or was already used: ask for a new one.")).to_be_visible()
    expect(page.get_by_role("link", name="Ask for a new link")).to_be_visible()
    screenshots(page, "62-identity-reset-link-used")

    # A fresh link, opened past its hour: refused too.
    asked = httpx.post(f"{url}/api/v1/auth/password-reset/", json={"email": "ada@example.com"})
    assert asked.status_code == 202, asked.text
    fresh = control_plane.last_link("reset")
    assert fresh != link
    move_clock(control_plane.clock, 61 * 60)
    page.goto(fresh)
    expect(page.get_by_text("This link has expired or was already used: ask for a new one.")).to_be_visible()


def test_repeated_failed_sign_ins_lock_the_account_and_say_until_when(
    page: Page, control_plane: ControlPlane
) -> None:
    url = control_plane.url
    control_plane.sign_up("grace@example.com")
    alert = page.get_by_role("alert")
    for attempt in range(1, 11):
        log_in(page, url, "grace@example.com", f"guess number {attempt}")
        expect(alert).to_contain_text("Email or password is wrong.")
    expect(alert).to_contain_text(
        re.compile(
            r"Too many failed sign-ins for this account: try again after \d\d:\d\d UTC \(in 15 min\)\."
        )
    )
    screenshots(page, "63-identity-locked-out")

    # The right password too is refused while the lock lasts, saying until when.
    log_in(page, url, "grace@example.com", PASSWORD)
    expect(alert).to_have_text(re.compile(r"^Too many failed sign-ins for this account: try again after"))
    expect(page.get_by_role("heading", name="Overview")).to_have_count(0)

    # A quarter of an hour later, it signs in.
    move_clock(control_plane.clock, 16 * 60)
    log_in(page, url, "grace@example.com", PASSWORD)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_a_session_ended_from_another_browser_is_signed_out_and_the_address_is_verified(
    chromium: Browser, page: Page, control_plane: ControlPlane
) -> None:
    url = control_plane.url
    control_plane.sign_up("linus@example.com")
    log_in(page, url, "linus@example.com", PASSWORD)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    phone_context = chromium.new_context(user_agent=IPHONE, viewport={"width": 390, "height": 844})
    try:
        phone = phone_context.new_page()
        log_in(phone, url, "linus@example.com", PASSWORD)
        expect(phone.get_by_role("heading", name="Overview")).to_be_visible()

        # Until verified, every page says so; the banner sends the link again.
        banner = page.get_by_role("region", name="Account verification")
        expect(banner).to_contain_text("Confirm your email address")
        button(banner, "Resend the link").click()
        expect(banner.get_by_role("status")).to_have_text("A new link is on its way to linus@example.com.")
        screenshots(page, "64-identity-verification-banner")

        # The account page, from the user menu: both sessions, this one marked.
        button(page, "Your account").click()
        page.get_by_role("menuitem", name="Account").click()
        sessions = page.get_by_role("table", name="Sessions")
        phone_row = sessions.get_by_role("row").filter(has_text="Safari on iOS")
        this_row = sessions.get_by_role("row").filter(has_text="This session")
        expect(phone_row).to_be_visible()
        expect(this_row).to_contain_text("Headless Chrome on Linux")
        expect(this_row).to_contain_text("127.0.0.1")
        expect(page.get_by_text("Not verified")).to_be_visible()
        screenshots(page, "65-identity-account")

        button(phone_row, "End").click()
        expect(page.get_by_role("alert")).to_have_text("The session on Safari on iOS is signed out.")
        expect(phone_row).to_have_count(0)
        # The other browser is signed out at its next step.
        phone.reload()
        expect(phone.get_by_text("Log in to Gateway Cloud")).to_be_visible()

        # The emailed link verifies the address: the banner goes away.
        page.goto(control_plane.last_link("verify-email"))
        expect(page.get_by_role("alert")).to_have_text("linus@example.com is verified.")
        screenshots(page, "66-identity-email-verified")
        page.get_by_role("link", name="Go to the console").click()
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        expect(page.get_by_role("region", name="Account verification")).to_have_count(0)

        # The password changed from the account page: this session goes on.
        button(page, "Your account").click()
        page.get_by_role("menuitem", name="Account").click()
        form = page.get_by_role("region", name="Change password")
        form.get_by_label("Current password").fill(PASSWORD)
        form.get_by_label("New password").fill(NEW_PASSWORD)
        button(form, "Change password").click()
        # The only other session left was the sign-up's own (made through the API, above).
        expect(form.get_by_role("alert")).to_have_text("Password changed. 1 other session signed out.")
        expect(sessions.get_by_role("row")).to_have_count(2)  # the header, and this session
        expect(page.get_by_text("Verified", exact=True)).to_be_visible()
        screenshots(page, "67-identity-password-changed")
    finally:
        phone_context.close()


# --- two-factor sign-in ----------------------------------------------------------------------


def code_of(secret: str, ahead_s: float = 0) -> str:
    """What the authenticator app shows, on a clock `ahead_s` seconds ahead (the control plane's,
    once moved: a code is accepted once, so the next sign-in needs the next step's)."""
    return pyotp.TOTP(secret).at(time.time() + ahead_s)


def open_account(page: Page) -> None:
    button(page, "Your account").click()
    page.get_by_role("menuitem", name="Account").click()


def set_up_two_factor(
    scope: Page | Locator, page: Page, screenshot: str | None = None
) -> tuple[str, list[str]]:
    """From the QR code to the recovery codes, in `scope` (the Account page's section, or the
    setup page): the key read from "Can't scan? Enter this key", the first code typed."""
    expect(scope.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = scope.get_by_label("Setup key").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    if screenshot:
        screenshots(page, screenshot)
    scope.get_by_label("Code from the app").fill(code_of(secret))
    button(scope, "Turn on").click()
    codes_box = scope.get_by_role("region", name="Recovery codes")
    codes = codes_box.get_by_label("Your recovery codes").inner_text().split()
    assert len(codes) == 10, codes
    return secret, codes


def log_out(page: Page) -> None:
    button(page, "Log out").click()
    expect(page.get_by_text("Log in to Gateway Cloud")).to_be_visible()


def enter_code(page: Page, code: str, *, recovery: bool = False) -> None:
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    if recovery:
        button(page, "Use a recovery code").click()
    page.get_by_label("Recovery code" if recovery else "Authentication code").fill(code)
    with page.expect_response(re.compile(r"/api/v1/auth/mfa/verify/$")):
        button(page, "Verify").click()


def test_two_factor_sign_in_is_set_up_from_the_account_page_and_signs_in_with_a_code_or_a_recovery_code(
    page: Page, control_plane: ControlPlane
) -> None:
    url = control_plane.url
    control_plane.sign_up("ada@example.com")
    log_in(page, url, "ada@example.com", PASSWORD)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    open_account(page)
    section = page.get_by_role("region", name="Two-factor sign-in")
    expect(section.get_by_text("Off", exact=True)).to_be_visible()
    button(section, "Set up two-factor sign-in").click()
    secret, codes = set_up_two_factor(section, page, "68-identity-mfa-setup")
    codes_box = section.get_by_role("region", name="Recovery codes")
    with page.expect_download() as download:
        button(codes_box, "Download").click()
    assert download.value.suggested_filename == "gateway-cloud-recovery-codes.txt"
    assert all(code in Path(download.value.path()).read_text() for code in codes)
    screenshots(page, "68-identity-mfa-recovery-codes")
    button(codes_box, "I have saved them").click()
    # Shown once: gone, and the section says it is on.
    expect(codes_box).to_have_count(0)
    expect(section.get_by_text("On", exact=True)).to_be_visible()
    expect(section).to_contain_text("10 recovery codes left")

    # The password alone is not enough any more: the app's code is asked for. The code of the
    # setup works once: the next sign-in takes the next one (the control plane's clock moved on).
    log_out(page)
    log_in(page, url, "ada@example.com", PASSWORD)
    expect(page.get_by_text("Enter the 6-digit code from your authenticator app.")).to_be_visible()
    screenshots(page, "69-identity-mfa-sign-in")
    move_clock(control_plane.clock, 30)
    enter_code(page, code_of(secret, 30))
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # A recovery code signs in once.
    log_out(page)
    log_in(page, url, "ada@example.com", PASSWORD)
    enter_code(page, codes[0], recovery=True)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    open_account(page)
    expect(section).to_contain_text("9 recovery codes left")
    log_out(page)
    log_in(page, url, "ada@example.com", PASSWORD)
    enter_code(page, codes[0], recovery=True)
    expect(page.get_by_role("alert")).to_have_text(
        "This code is not valid: enter the current code from your authenticator app, or an unused recovery code."
    )
    screenshots(page, "69-identity-mfa-recovery-code-used")
    expect(page.get_by_role("heading", name="Overview")).to_have_count(0)


def test_an_owner_requires_two_factor_sign_in_and_another_member_sets_it_up_before_anything_else(
    chromium: Browser, page: Page, control_plane: ControlPlane
) -> None:
    url = control_plane.url
    for email, organization in (("olga@example.com", "Acme"), ("dev@example.com", "Dev's own")):
        answer = httpx.post(
            f"{url}/api/v1/auth/signup/",
            json={"email": email, "password": PASSWORD, "organization_name": organization},
        )
        assert answer.status_code == 201, answer.text
    acme = Organization.objects.get(name="Acme")
    add_member(acme, Role.DEVELOPER, User.objects.get(email="dev@example.com"))
    connections.close_all()

    # The owner turns two-factor sign-in on for themselves, then requires it of everyone.
    log_in(page, url, "olga@example.com", PASSWORD)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    open_account(page)
    section = page.get_by_role("region", name="Two-factor sign-in")
    button(section, "Set up two-factor sign-in").click()
    set_up_two_factor(section, page)
    button(section, "I have saved them").click()
    page.goto(f"{url}/console/orgs/{acme.slug}/settings")
    requirement = page.get_by_role("region", name="Two-factor sign-in")
    expect(requirement).to_contain_text("1 member has not turned on two-factor sign-in yet.")
    switch_on(requirement, "Require two-factor sign-in")
    screenshots(page, "69-identity-mfa-required-switch")

    # The developer, at their next sign-in: the setup first, whatever page they ask for.
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        dev = context.new_page()
        log_in(dev, url, "dev@example.com", PASSWORD)
        expect(dev.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
        expect(dev.get_by_role("alert")).to_contain_text(
            "Acme requires two-factor sign-in: set it up to go on."
        )
        screenshots(dev, "69-identity-mfa-setup-required")
        dev.goto(f"{url}/console/orgs/{acme.slug}/clusters")
        expect(dev.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
        expect(dev).to_have_url(f"{url}/console/mfa/setup")
        # The API too: nothing but the setup, signing out and who they are.
        held = dev.request.get(f"{url}/api/v1/orgs/{acme.slug}/")
        assert (held.status, held.json()["code"]) == (403, "mfa_setup_required")
        assert dev.request.get(f"{url}/api/v1/auth/me/").ok

        button(dev, "Set up two-factor sign-in").click()
        set_up_two_factor(dev, dev)
        button(dev, "I have saved them").click()
        expect(dev.get_by_role("heading", name="Overview")).to_be_visible()
        assert dev.request.get(f"{url}/api/v1/orgs/{acme.slug}/").ok

        # Everyone has it now, the owner sees.
        page.reload()
        expect(requirement).to_contain_text("Every member has two-factor sign-in on.")
        expect(requirement.get_by_role("switch", name="Require two-factor sign-in")).to_be_checked()
    finally:
        context.close()
