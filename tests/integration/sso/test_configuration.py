"""An owner sets up single sign-on with the organization's OpenID provider, changes it and turns
it off; nobody else may, nor any API token; the client secret is stored encrypted and never shown;
every change is in the audit log."""

import pytest
from django_tenants.utils import schema_context

from core.encryption import decrypt_secret
from sso.models import SsoConfiguration
from sso.services import callback_url, rotate_client_secrets
from tenants.models import AuditEntry
from tenants.roles import Role
from tests.factories import client_for, make_org, make_user

from .steps import configure, last_audit, sso_settings


def test_an_owner_sets_up_sso_and_the_secret_is_kept_encrypted(world, provider):
    owner = world.a.client(Role.OWNER)
    url = f"/api/v1/orgs/{world.a.org.slug}/sso/"

    before = owner.get(url).json()
    assert before["configured"] is False
    assert before["redirect_uri"] == callback_url() == "http://localhost:8000/console/login"

    answer = configure(owner, world.a.org, sso_settings(provider))
    assert answer.status_code == 200, answer.content
    shown = answer.json()
    assert shown["configured"] is True
    assert shown["issuer"] == provider.issuer
    assert shown["allowed_domains"] == ["acme.test"]
    assert shown["role_mapping"][0] == {"value": "platform-admins", "role": "admin"}
    assert shown["client_secret_set"] is True
    assert "client_secret" not in shown and provider.client_secret not in answer.content.decode()

    stored = SsoConfiguration.objects.get(organization=world.a.org)
    assert provider.client_secret not in stored.client_secret_ciphertext
    assert decrypt_secret(stored.client_secret_ciphertext) == provider.client_secret

    entry = last_audit(world.a.org, "sso.configure")
    assert entry.actor == world.a.user(Role.OWNER)
    assert entry.changes["after"]["issuer"] == provider.issuer
    assert provider.client_secret not in str(entry.changes)


def test_a_change_keeps_the_secret_unless_a_new_one_is_given(world, provider):
    owner = world.a.client(Role.OWNER)
    assert configure(owner, world.a.org, sso_settings(provider)).status_code == 200

    changed = sso_settings(
        provider, client_secret="", sso_only=True, allowed_domains=["acme.test", "Acme.Example"]
    )
    answer = configure(owner, world.a.org, changed)
    assert answer.status_code == 200, answer.content
    assert answer.json()["allowed_domains"] == ["acme.example", "acme.test"]
    assert SsoConfiguration.objects.get(organization=world.a.org).client_secret == provider.client_secret
    entry = last_audit(world.a.org, "sso.update")
    assert entry.changes["before"] == {"allowed_domains": ["acme.test"], "sso_only": False}
    assert entry.changes["after"] == {"allowed_domains": ["acme.example", "acme.test"], "sso_only": True}

    assert (
        configure(owner, world.a.org, sso_settings(provider, client_secret="a new secret")).status_code == 200
    )
    assert SsoConfiguration.objects.get(organization=world.a.org).client_secret == "a new secret"
    assert last_audit(world.a.org, "sso.update").changes["after"]["client_secret"] == "changed"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DEVELOPER, Role.VIEWER, Role.BILLING])
def test_only_owners_see_or_change_sso(world, provider, role):
    member = world.a.client(role)
    url = f"/api/v1/orgs/{world.a.org.slug}/sso/"
    assert member.get(url).status_code == 403
    assert configure(member, world.a.org, sso_settings(provider)).status_code == 403
    assert member.delete(url).status_code == 403
    assert not SsoConfiguration.objects.exists()


def test_not_with_an_api_token_nor_from_another_organization(world, provider, api):
    owner = world.a.client(Role.OWNER)
    made = owner.post(
        f"/api/v1/orgs/{world.a.org.slug}/tokens/", {"name": "ci", "role_ceiling": "owner"}, format="json"
    )
    assert made.status_code == 201, made.content
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {made.json()['token']}")
    assert api.get(f"/api/v1/orgs/{world.a.org.slug}/sso/").status_code == 403
    assert configure(api, world.a.org, sso_settings(provider)).status_code == 403

    other_owner = world.b.client(Role.OWNER)
    assert other_owner.get(f"/api/v1/orgs/{world.a.org.slug}/sso/").status_code == 404


def test_a_provider_that_does_not_confirm_its_issuer_is_refused(world, provider, settings):
    owner = world.a.client(Role.OWNER)
    # Nothing answers there.
    answer = configure(owner, world.a.org, sso_settings(provider, issuer="http://127.0.0.1:9/"))
    assert answer.status_code == 400
    assert list(answer.json()["errors"]) == ["issuer"]
    assert "discovery document" in answer.json()["detail"]
    # The provider's discovery names another issuer than the one given.
    answer = configure(
        owner, world.a.org, sso_settings(provider, issuer=provider.issuer.replace("127.0.0.1", "localhost"))
    )
    assert answer.status_code == 400
    assert f"names the issuer {provider.issuer}" in answer.json()["detail"]
    # Plain HTTP only where a setting allows it (tests), never by default.
    settings.SSO_ALLOW_HTTP_ISSUER = False
    answer = configure(owner, world.a.org, sso_settings(provider))
    assert answer.status_code == 400
    assert answer.json()["detail"] == f"The provider's issuer URL must use HTTPS: {provider.issuer}"
    # Nor to an internal address (here, a cloud's metadata service among them): the control plane
    # would fetch it for whoever owns an organization.
    for issuer in ("https://localhost:8443", "https://10.0.0.7", "https://169.254.169.254"):
        answer = configure(owner, world.a.org, sso_settings(provider, issuer=issuer))
        assert answer.status_code == 400, issuer
        assert "must be on the public internet" in answer.json()["detail"], answer.json()
    assert not SsoConfiguration.objects.exists()


def test_settings_that_make_no_sense_are_refused_naming_the_field(world, provider):
    owner = world.a.client(Role.OWNER)
    cases = [
        ({"allowed_domains": []}, "allowed_domains"),
        ({"allowed_domains": ["not a domain"]}, "allowed_domains"),
        ({"default_role": "owner"}, "default_role"),
        ({"role_mapping": [{"value": "boss", "role": "owner"}]}, "role_mapping"),
        ({"role_mapping": [{"value": " ", "role": "admin"}]}, "role_mapping"),
        ({"role_claim": ""}, "role_claim"),
        ({"client_secret": ""}, "client_secret"),
        ({"client_id": "  "}, "client_id"),
    ]
    for change, field in cases:
        answer = configure(owner, world.a.org, sso_settings(provider, **change))
        assert answer.status_code == 400, (change, answer.content)
        assert field in str(answer.json()["errors"]), (change, answer.json())
    assert not SsoConfiguration.objects.exists()


def test_a_domain_signs_in_with_one_organization_only(world, provider):
    assert configure(world.a.client(Role.OWNER), world.a.org, sso_settings(provider)).status_code == 200
    answer = configure(
        world.b.client(Role.OWNER), world.b.org, sso_settings(provider, allowed_domains=["acme.test"])
    )
    assert answer.status_code == 400
    assert answer.json()["errors"]["allowed_domains"] == [
        "acme.test: another organization signs in with single sign-on for this domain already."
    ]
    assert not SsoConfiguration.objects.filter(organization=world.b.org).exists()


def test_an_owner_turns_sso_off(world, provider, api):
    owner = world.a.client(Role.OWNER)
    assert configure(owner, world.a.org, sso_settings(provider)).status_code == 200
    assert owner.delete(f"/api/v1/orgs/{world.a.org.slug}/sso/").status_code == 204
    assert owner.get(f"/api/v1/orgs/{world.a.org.slug}/sso/").json()["configured"] is False
    assert last_audit(world.a.org, "sso.remove").changes["before"]["issuer"] == provider.issuer
    assert (
        api.post("/api/v1/auth/sso/discover/", {"email": "ann@acme.test"}, format="json").status_code == 404
    )
    assert owner.delete(f"/api/v1/orgs/{world.a.org.slug}/sso/").status_code == 404


def test_the_client_secret_is_re_encrypted_with_the_other_secrets(db, provider, settings):
    from cryptography.fernet import Fernet

    owner = make_user()
    organization = make_org(owner)
    assert configure(client_for(owner), organization, sso_settings(provider)).status_code == 200
    old = SsoConfiguration.objects.get(organization=organization).client_secret_ciphertext
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    with schema_context(organization.schema_name):
        first = rotate_client_secrets()
        again = rotate_client_secrets()
    assert (first.rotated, first.current) == (1, 0)
    assert (again.rotated, again.current) == (0, 1)
    rotated = SsoConfiguration.objects.get(organization=organization)
    assert rotated.client_secret_ciphertext != old
    assert (
        Fernet(new_key.encode()).decrypt(rotated.client_secret_ciphertext.encode()).decode()
        == provider.client_secret
    )
    assert AuditEntry.objects.filter(organization=organization, action="sso.configure").count() == 1
