"""Single sign-on in a real browser, against a real OpenID provider (oidc-provider, OpenID
Certified, on loopback) and the control plane as `make run` serves it.

An owner sets SSO up in the organization's settings; a new person from an allowed domain signs
in through the provider from the sign-in page and joins with the default role; a groups claim
gives a role; a group changed at the provider changes the role at the next sign-in; "SSO only"
refuses a non-owner's password and keeps the owner's; an answer the browser did not ask for is
refused, saying why. Screenshots in test-artifacts/console/70-*."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, expect

from sso.models import SsoConfiguration
from sso.services import password_sign_in_refused
from tenants.models import AuditEntry, Membership, Organization, User
from tenants.roles import Role
from tests.e2e.console_steps import (
    button,
    dialog,
    pick,
    read_api,
    screenshot,
    screenshots,
    sign_up,
    textbox,
)
from tests.oidc_provider import OidcProvider

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _http_issuer_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # The control plane started for the test (control_plane) may use a provider on plain HTTP on
    # loopback: an explicit setting, never the default.
    monkeypatch.setenv("SAAS_SSO_ALLOW_HTTP_ISSUER", "1")


@pytest.fixture
def provider(control_plane: str, tmp_path: Path) -> Iterator[OidcProvider]:
    """The company's identity provider, with the control plane registered as its client."""
    started = OidcProvider(
        folder=tmp_path / "oidc-provider", redirect_uris=[f"{control_plane}/console/login"]
    )
    started.start()
    yield started
    started.stop()


def _sign_in_with_sso(page: Page, control_plane: str, email: str, login: str | None) -> None:
    """From the console's sign-in page: "Sign in with SSO", the work email, then the provider's
    own sign-in form (`login` typed there), unless the provider remembers the person already."""
    page.goto(f"{control_plane}/console/login")
    button(page, "Sign in with SSO").click()
    dialog(page).get_by_label("Work email").fill(email)
    button(dialog(page), "Continue").click()
    if login is not None:
        page.get_by_placeholder("Enter any login").fill(login)
        page.get_by_placeholder("and password").fill("the provider checks this, not us")
        page.get_by_role("button", name="Sign-in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def _role_in(page: Page, control_plane: str, slug: str) -> str:
    me = read_api(page, f"{control_plane}/api/v1/auth/me/")
    return {org["slug"]: org["role"] for org in me["organizations"]}[slug]


def test_an_owner_sets_up_sso_and_people_sign_in_through_the_provider(
    page: Page, chromium: Browser, control_plane: str, provider: OidcProvider
) -> None:
    provider.set_account("ann", "ann@acme.test", name="Ann Lovelace")
    provider.set_account("bob", "bob@acme.test", name="Bob Babbage", groups=["everyone", "platform-admins"])

    # The owner signs up, and opens the organization's single sign-on.
    sign_up(page, control_plane, "olga@acme.test", "Acme")
    organization = Organization.objects.get(name="Acme")
    page.get_by_role("link", name="Organization").click()
    page.get_by_role("tab", name="Single sign-on").click()
    redirect_uri = page.get_by_label("Redirect URI")
    expect(redirect_uri).to_have_text(f"{control_plane}/console/login")
    screenshots(page, "70-sso-settings-empty")

    # What the provider gave: issuer, client; who signs in; groups mapped to roles.
    textbox(page, "Issuer URL").fill(provider.issuer)
    textbox(page, "Client ID").fill(provider.client_id)
    page.get_by_label("Client secret").fill(provider.client_secret)
    textbox(page, "Allowed email domains").fill("acme.test")
    pick(page, page, "Default role", "viewer")
    textbox(page, "Role claim").fill("groups")
    button(page, "Add a rule").click()
    first = page.get_by_role("group", name="Rule 1")
    textbox(first, "Claim value").fill("platform-admins")
    pick(page, first, "Role", "admin")
    button(page, "Add a rule").click()
    second = page.get_by_role("group", name="Rule 2")
    textbox(second, "Claim value").fill("engineers")
    pick(page, second, "Role", "developer")
    button(page, "Turn on single sign-on").click()
    expect(page.get_by_role("alert").filter(has_text="Single sign-on is on")).to_have_text(
        f"Single sign-on is on: people at acme.test sign in with {provider.issuer}."
    )
    expect(page.get_by_text("Saved (stored encrypted). Leave empty to keep it.")).to_be_visible()
    screenshots(page, "71-sso-settings-saved")
    saved = read_api(page, f"{control_plane}/api/v1/orgs/{organization.slug}/sso/")
    assert (saved["configured"], saved["client_secret_set"], saved["allowed_domains"]) == (
        True,
        True,
        ["acme.test"],
    )
    assert saved["role_mapping"] == [
        {"value": "platform-admins", "role": "admin"},
        {"value": "engineers", "role": "developer"},
    ]
    stored = SsoConfiguration.objects.get(organization=organization)
    assert provider.client_secret not in stored.client_secret_ciphertext
    assert stored.client_secret == provider.client_secret

    # Ann, new, from acme.test: "Sign in with SSO", her work email, the provider's sign-in; she
    # joins Acme as a viewer (no group of hers is mapped).
    ann_context = chromium.new_context(viewport={"width": 1280, "height": 900})
    ann = ann_context.new_page()
    ann.goto(f"{control_plane}/console/login")
    button(ann, "Sign in with SSO").click()
    dialog(ann).get_by_label("Work email").fill("ann@acme.test")
    screenshots(ann, "72-sso-sign-in")
    button(dialog(ann), "Continue").click()
    expect(ann.get_by_placeholder("Enter any login")).to_be_visible()  # at the provider now
    assert ann.url.startswith(provider.issuer)
    ann.get_by_placeholder("Enter any login").fill("ann")
    ann.get_by_placeholder("and password").fill("whatever the provider wants")
    ann.get_by_role("button", name="Sign-in").click()
    expect(ann.get_by_role("heading", name="Overview")).to_be_visible()
    assert ann.url == f"{control_plane}/console/orgs/{organization.slug}/overview"
    assert _role_in(ann, control_plane, organization.slug) == Role.VIEWER
    screenshots(ann, "73-sso-signed-in")
    ann_context.close()

    # Bob is in platform-admins at the provider: admin.
    bob_context = chromium.new_context(viewport={"width": 1280, "height": 900})
    bob = bob_context.new_page()
    _sign_in_with_sso(bob, control_plane, "bob@acme.test", "bob")
    assert _role_in(bob, control_plane, organization.slug) == Role.ADMIN

    # The provider moves Bob to the engineers. Signed out and in again (the provider remembers
    # him: no form this time), he is a developer.
    provider.set_account("bob", "bob@acme.test", name="Bob Babbage", groups=["engineers"])
    button(bob, "Log out").click()
    _sign_in_with_sso(bob, control_plane, "bob@acme.test", None)
    assert _role_in(bob, control_plane, organization.slug) == Role.DEVELOPER
    bob_context.close()

    # The owner, the page opened again, sees both among the members; every SSO event is in the
    # audit log.
    page.reload()
    page.get_by_role("tab", name="Members").click()
    members = page.get_by_role("table", name="Members")
    expect(members.get_by_role("row").filter(has_text="ann@acme.test")).to_contain_text("Ann Lovelace")
    expect(members.get_by_label("Role of bob@acme.test")).to_have_value("developer")
    actions = set(AuditEntry.objects.filter(organization=organization).values_list("action", flat=True))
    assert {"sso.configure", "sso.join", "sso.role_change", "user.sign_in"} <= actions
    assert (
        AuditEntry.objects.filter(
            organization=organization, action="user.sign_in", changes__after__method="sso"
        ).count()
        == 3
    )

    # SSO only: members other than owners may no longer sign in with a password.
    page.get_by_role("tab", name="Single sign-on").click()
    # By its label, as a user does (the switch's description sits in the same label).
    page.get_by_text("SSO only", exact=True).click()
    expect(page.get_by_role("switch", name="SSO only")).to_be_checked()
    button(page, "Save").click()
    expect(page.get_by_role("alert").filter(has_text="Single sign-on is on")).to_be_visible()
    screenshots(page, "74-sso-only")
    connections.close_all()
    assert SsoConfiguration.objects.get(organization=organization).sso_only is True
    viewer = User.objects.get(email="ann@acme.test")
    assert password_sign_in_refused(viewer) == (
        "Acme signs in with single sign-on only: choose \u201cSign in with SSO\u201d and give your work email."
    )
    # Break-glass: the owner keeps her password.
    owner = Membership.objects.get(organization=organization, role=Role.OWNER).user
    assert password_sign_in_refused(owner) is None


def test_an_answer_this_browser_did_not_ask_for_is_refused_saying_why(page: Page, control_plane: str) -> None:
    # Someone's link, with a code and a state this browser never started.
    page.goto(f"{control_plane}/console/login?code=stolen-code&state=forged-state")
    expect(page.get_by_role("alert")).to_contain_text(
        "This sign-in has expired or was started in another browser: start again from the sign-in page."
    )
    screenshots(page, "75-sso-refused")
    button(page, "Back to sign-in").click()
    expect(button(page, "Log in")).to_be_visible()
    assert page.url == f"{control_plane}/console/login"

    # An email whose domain no organization signs in with SSO for: said in the dialog.
    button(page, "Sign in with SSO").click()
    dialog(page).get_by_label("Work email").fill("zoe@nowhere.test")
    button(dialog(page), "Continue").click()
    expect(dialog(page).get_by_role("alert")).to_have_text(
        "No organization signs in with single sign-on for nowhere.test: sign in with your password."
    )
    screenshot(page, "76-sso-no-organization")
