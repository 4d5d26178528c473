"""In a real browser: the emailed invitation link, accepted, lands in the console on the
organization joined; the home page is the console."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import Page, expect

from tenants.credentials import hash_secret, new_secret
from tenants.models import Invitation, Membership
from tenants.roles import Role
from tests.factories import PASSWORD, make_org_with_cluster

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_an_invited_person_signs_up_and_lands_in_the_organization_in_the_console(
    page: Page,
    control_plane: str,
) -> None:
    organization, author, _cluster = make_org_with_cluster("edge")
    secret = new_secret()
    Invitation.objects.create(
        organization=organization,
        email="nina@example.com",
        role=Role.DEVELOPER,
        token_hash=hash_secret(secret),
        invited_by=author.actor.user,
        expires_at=timezone.now() + timedelta(days=1),
    )
    connections.close_all()

    page.goto(f"{control_plane}/invitations/{secret}")
    page.get_by_label("Your name").fill("Nina")
    # Without a password the form does not submit: the browser asks for it.
    page.get_by_role("button", name="Accept the invitation").click()
    assert page.get_by_label("Choose a password").evaluate("field => field.validity.valueMissing")
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_role("button", name="Accept the invitation").click()
    # The organization's overview, the first page of every sign-in, with its cluster.
    expect(page).to_have_url(f"{control_plane}/console/orgs/{organization.slug}/overview")
    expect(page.get_by_role("region", name="Clusters").get_by_role("link", name="edge")).to_be_visible()
    assert (
        Membership.objects.get(organization=organization, user__email="nina@example.com").role
        == Role.DEVELOPER
    )

    # The address `make run` prints first is the console too.
    page.goto(control_plane)
    expect(page).to_have_url(f"{control_plane}/console/orgs/{organization.slug}/overview")
