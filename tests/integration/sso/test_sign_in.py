"""People sign in through their organization's OpenID provider (a real one, oidc-provider, on
loopback): found by their email's domain; joining on their first sign-in with the default role or
the one their groups map to; their role following the provider at every sign-in. Anything the
control plane did not ask for, or cannot verify, is refused and recorded."""

import base64
import json
import re

import pytest
from authlib.integrations.requests_client import OAuth2Session
from django.core import mail
from joserfc.jwk import RSAKey
from rest_framework.test import APIClient

from identity.models import UserSession
from sso.models import SsoIdentity
from sso.services import LINK_INVALID, password_sign_in_refused
from tenants.models import AuditEntry, Membership, User
from tenants.roles import Role
from tests.factories import PASSWORD, add_member, make_user

from .steps import (
    come_back,
    configure,
    last_audit,
    sign_in_at_provider,
    sign_in_with_sso,
    sso_settings,
    start,
)


@pytest.fixture
def acme(world, provider):
    """Organization A signs in with the provider for acme.test."""
    answer = configure(world.a.client(Role.OWNER), world.a.org, sso_settings(provider))
    assert answer.status_code == 200, answer.content
    return world.a.org


def _browser() -> APIClient:
    return APIClient(REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0")


def test_the_sign_in_page_finds_the_organization_by_email_domain(acme, api):
    found = api.post("/api/v1/auth/sso/discover/", {"email": "Ann@ACME.test"}, format="json")
    assert found.status_code == 200, found.content
    assert found.json() == {"organization_name": acme.name, "organization_slug": acme.slug}

    missing = api.post("/api/v1/auth/sso/discover/", {"email": "ann@elsewhere.test"}, format="json")
    assert missing.status_code == 404
    assert missing.json()["detail"] == (
        "No organization signs in with single sign-on for elsewhere.test: sign in with your password."
    )
    assert (
        api.post("/api/v1/auth/sso/start/", {"email": "ann@elsewhere.test"}, format="json").status_code == 404
    )


def test_the_provider_is_asked_with_pkce_state_and_nonce(acme, provider):
    url = start(_browser(), "ann@acme.test")
    assert url.startswith(f"{provider.issuer}/auth?")
    for parameter in (
        "response_type=code",
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "login_hint=ann%40acme.test",
    ):
        assert parameter in url, parameter
    # The role claim's scope is asked for, since the provider offers it.
    assert "scope=openid+email+profile+groups" in url


def test_a_new_person_joins_on_first_sign_in_with_the_default_role(acme, provider):
    provider.set_account("ann", "ann@acme.test", name="Ann Example")
    browser = _browser()

    answer = sign_in_with_sso(browser, "ann@acme.test", "ann")

    assert answer.status_code == 200, answer.content
    assert answer.json()["organization"] == {"name": acme.name, "slug": acme.slug, "role": "viewer"}
    assert answer.json()["joined"] is True
    me = browser.get("/api/v1/auth/me/").json()
    assert me["user"]["email"] == "ann@acme.test"
    assert [(o["slug"], o["role"]) for o in me["organizations"]] == [(acme.slug, "viewer")]
    ann = User.objects.get(email="ann@acme.test")
    assert ann.name == "Ann Example"
    assert not ann.has_usable_password()
    assert SsoIdentity.objects.get(user=ann).subject == "ann"
    assert UserSession.objects.get(user=ann).method == "sso"
    joined = last_audit(acme, "sso.join")
    assert (joined.actor, joined.changes["after"]) == (
        ann,
        {"user": "ann@acme.test", "role": "viewer", "new_account": True},
    )
    signed = last_audit(acme, "user.sign_in")
    assert (signed.actor, signed.changes["after"]["method"], signed.ip_address) == (ann, "sso", "10.1.2.3")


def test_groups_map_to_a_role_applied_again_at_every_sign_in(acme, provider):
    provider.set_account("bob", "bob@acme.test", groups=["everyone", "platform-admins"])
    first = sign_in_with_sso(_browser(), "bob@acme.test", "bob")
    assert first.status_code == 200, first.content
    assert first.json()["organization"]["role"] == "admin"

    # The provider moves Bob to the engineers: his next sign-in makes him a developer.
    provider.set_account("bob", "bob@acme.test", groups=["engineers"])
    second = sign_in_with_sso(_browser(), "bob@acme.test", "bob")
    assert second.status_code == 200, second.content
    assert (second.json()["organization"]["role"], second.json()["joined"]) == ("developer", False)
    bob = User.objects.get(email="bob@acme.test")
    assert Membership.objects.get(organization=acme, user=bob).role == Role.DEVELOPER
    change = last_audit(acme, "sso.role_change")
    assert (change.changes["before"], change.changes["after"]) == (
        {"role": "admin"},
        {"role": "developer", "claim": "groups"},
    )

    # Out of every mapped group: the default role.
    provider.set_account("bob", "bob@acme.test", groups=[])
    assert sign_in_with_sso(_browser(), "bob@acme.test", "bob").json()["organization"]["role"] == "viewer"


def _link_in_last_email(address: str) -> str:
    message = mail.outbox[-1]
    assert message.to == [address]
    found = re.search(r"/console/sso/link/(\S+)", message.body)
    assert found, message.body
    return found.group(1)


def test_owners_and_existing_members_sign_in_as_themselves_once_their_mailbox_connects_them(
    acme, world, provider, django_capture_on_commit_callbacks
):
    owner = world.a.user(Role.OWNER)
    owner.email = "boss@acme.test"
    owner.save(update_fields=["email"])
    provider.set_account("boss", "boss@acme.test", groups=["engineers"])
    # The provider alone does not speak for an account that existed before: not signed in, and
    # the account's address gets a link.
    browser = _browser()
    with django_capture_on_commit_callbacks(execute=True):
        answer = sign_in_with_sso(browser, "boss@acme.test", "boss")
    assert answer.status_code == 202, answer.content
    assert answer.json()["link_sent_to"] == "boss@acme.test"
    assert browser.get("/api/v1/auth/me/").status_code in (401, 403)
    assert not SsoIdentity.objects.filter(subject="boss").exists()
    assert last_audit(acme, "sso.link_requested").changes["after"] == {"email": "boss@acme.test"}

    token = _link_in_last_email("boss@acme.test")
    linked = _browser().post("/api/v1/auth/sso/link/", {"token": token}, format="json")
    assert linked.status_code == 200, linked.content
    assert SsoIdentity.objects.get(subject="boss").user == owner
    assert last_audit(acme, "sso.link").changes["after"] == {"user": "boss@acme.test"}
    again = _browser().post("/api/v1/auth/sso/link/", {"token": token}, format="json")
    assert again.status_code == 400 and "used already" in again.json()["detail"]

    answer = sign_in_with_sso(_browser(), "boss@acme.test", "boss")
    assert answer.status_code == 200, answer.content
    # SSO neither gives nor takes the owner role.
    assert answer.json()["organization"]["role"] == "owner"
    assert answer.json()["joined"] is False


def test_an_owners_provider_cannot_sign_in_as_a_member_without_the_members_mailbox(
    acme, world, provider, settings, django_capture_on_commit_callbacks
):
    """An owner's provider asserts a member's address (the member also belongs to organization B):
    nothing signs in as the member, and only the member's own link would connect them."""
    member = make_user("victim@acme.test")
    add_member(world.a.org, Role.VIEWER, user=member)
    add_member(world.b.org, Role.OWNER, user=member)
    provider.set_account("forged", "victim@acme.test")
    browser = _browser()
    with django_capture_on_commit_callbacks(execute=True):
        assert sign_in_with_sso(browser, "victim@acme.test", "forged").status_code == 202
    assert browser.get("/api/v1/auth/me/").status_code in (401, 403)
    assert not SsoIdentity.objects.exists()
    token = _link_in_last_email("victim@acme.test")

    def link(token: str) -> tuple[int, dict]:
        answer = _browser().post("/api/v1/auth/sso/link/", {"token": token}, format="json")
        return answer.status_code, answer.json()

    status, body = link(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert status == 400 and body["errors"]["token"] == [LINK_INVALID]
    # Once the member's address changes, a link sent to the old one connects nothing.
    member.email = "victim@elsewhere.test"
    member.save(update_fields=["email"])
    assert link(token)[0] == 400
    member.email = "victim@acme.test"
    member.save(update_fields=["email"])
    settings.SSO_LINK_MINUTES = -1  # any link is older than that
    status, body = link(token)
    assert status == 400 and "expired" in body["errors"]["token"][0]
    assert not SsoIdentity.objects.exists()


def test_an_account_that_never_joined_is_not_taken_over(acme, provider):
    make_user("carol@acme.test")  # signed up on her own, member of nothing here
    provider.set_account("carol", "carol@acme.test")
    answer = sign_in_with_sso(_browser(), "carol@acme.test", "carol")
    assert answer.status_code == 400
    assert "is not a member of" in answer.json()["detail"]
    assert not Membership.objects.filter(organization=acme, user__email="carol@acme.test").exists()
    assert last_audit(acme, "sso.sign_in_failed").changes["after"] == {
        "reason": "existing account is not a member",
        "email": "carol@acme.test",
    }


def test_a_domain_not_allowed_is_refused(acme, provider):
    # The provider vouches for someone at another domain than the one typed.
    provider.set_account("dave", "dave@contractor.test")
    browser = _browser()
    answer = sign_in_with_sso(browser, "dave@acme.test", "dave")
    assert answer.status_code == 400
    assert answer.json()["detail"] == (
        f"contractor.test is not among the email domains {acme.name} signs in with (acme.test)."
    )
    assert browser.get("/api/v1/auth/me/").status_code in (401, 403)
    assert not User.objects.filter(email="dave@contractor.test").exists()
    assert last_audit(acme, "sso.sign_in_failed").changes["after"]["reason"] == "domain not allowed"


def test_an_address_the_provider_has_not_verified_is_refused(acme, provider):
    provider.set_account("erin", "erin@acme.test", email_verified=False)
    answer = sign_in_with_sso(_browser(), "erin@acme.test", "erin")
    assert answer.status_code == 400
    assert answer.json()["detail"] == "Your identity provider has not verified erin@acme.test."


def test_a_state_this_browser_did_not_start_is_refused(acme, provider):
    provider.set_account("fay", "fay@acme.test")
    started_elsewhere = _browser()
    answer = sign_in_at_provider(start(started_elsewhere, "fay@acme.test"), "fay")

    # Another browser (an attacker's link, say) brings the answer: its session never started it.
    other = _browser()
    refused = come_back(other, answer)
    assert refused.status_code == 400
    assert refused.json()["errors"] == {"state": [refused.json()["detail"]]}
    assert "expired or was started in another browser" in refused.json()["detail"]
    assert other.get("/api/v1/auth/me/").status_code in (401, 403)

    # A made-up state, in the browser that did start: refused too; the real one still works once.
    assert come_back(started_elsewhere, {**answer, "state": "made-up"}).status_code == 400
    assert come_back(started_elsewhere, answer).status_code == 200
    assert come_back(started_elsewhere, answer).status_code == 400


def test_an_id_token_for_another_nonce_is_refused(acme, provider):
    provider.set_account("gus", "gus@acme.test")
    browser = _browser()
    url = start(browser, "gus@acme.test")
    # The request reaching the provider carries another nonce than the one this browser keeps:
    # the provider signs an ID token for that one.
    tampered = url.replace("nonce=", "nonce=x", 1)
    answer = come_back(browser, sign_in_at_provider(tampered, "gus"))
    assert answer.status_code == 400
    assert (
        answer.json()["detail"]
        == "The ID token from the provider was refused: its 'nonce' claim is not the expected one."
    )
    assert not User.objects.filter(email="gus@acme.test").exists()
    assert "nonce" in last_audit(acme, "sso.sign_in_failed").changes["after"]["reason"]


def test_an_answer_from_another_issuer_or_the_providers_refusal_is_refused(acme, provider):
    provider.set_account("hal", "hal@acme.test")
    browser = _browser()
    answer = sign_in_at_provider(start(browser, "hal@acme.test"), "hal")
    refused = come_back(browser, {**answer, "iss": "https://evil.test"})
    assert refused.status_code == 400
    assert refused.json()["detail"] == f"The answer came from https://evil.test, not from {provider.issuer}."

    state = start(browser, "hal@acme.test").split("state=", 1)[1].split("&", 1)[0]
    refused = come_back(browser, {"state": state, "error": "access_denied"})
    assert refused.status_code == 400
    assert refused.json()["detail"] == f"{acme.name}'s identity provider did not sign you in (access_denied)."


# --- tampered ID tokens: the real provider's answer, its ID token swapped on the way ----------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims_of(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _with_id_token(monkeypatch, make_token) -> None:
    """The token endpoint's answer as the provider gave it, with `make_token(claims, original)`
    as its ID token: what a man in the middle, or a provider's bug, would hand over."""
    real_fetch = OAuth2Session.fetch_token

    def fetch_token(self, *args, **kwargs):
        token = real_fetch(self, *args, **kwargs)
        token["id_token"] = make_token(_claims_of(token["id_token"]), token["id_token"])
        return token

    monkeypatch.setattr(OAuth2Session, "fetch_token", fetch_token)


@pytest.mark.parametrize(
    ("tampering", "reason"),
    [
        (
            "payload changed, signature kept",
            "its signature does not match the provider's keys",
        ),
        ("signed with another key", "its signature does not match the provider's keys"),
        ("for another client (aud)", "its 'aud' claim is not the expected one"),
        ("from another issuer (iss)", "its 'iss' claim is not the expected one"),
        ("expired (exp)", "it has expired"),
        ("no nonce", "it lacks the 'nonce' claim"),
    ],
)
def test_a_tampered_id_token_is_refused(acme, provider, monkeypatch, tampering, reason):
    def make(claims: dict, original: str) -> str:
        if tampering == "payload changed, signature kept":
            header, _payload, signature = original.split(".")
            return f"{header}.{_b64(json.dumps({**claims, 'sub': 'someone-else'}).encode())}.{signature}"
        if tampering == "signed with another key":
            forger = RSAKey.generate_key(2048, parameters={"kid": provider.key.kid}, private=True)
            return provider.sign(claims, key=forger)
        if tampering == "for another client (aud)":
            return provider.sign({**claims, "aud": "another-client"})
        if tampering == "from another issuer (iss)":
            return provider.sign({**claims, "iss": "https://evil.test"})
        if tampering == "expired (exp)":
            return provider.sign({**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600})
        return provider.sign({key: value for key, value in claims.items() if key != "nonce"})

    _with_id_token(monkeypatch, make)
    provider.set_account("ivy", "ivy@acme.test")
    browser = _browser()
    answer = sign_in_with_sso(browser, "ivy@acme.test", "ivy")
    assert answer.status_code == 400, answer.content
    assert answer.json()["detail"] == f"The ID token from the provider was refused: {reason}."
    assert browser.get("/api/v1/auth/me/").status_code in (401, 403)
    assert not User.objects.filter(email="ivy@acme.test").exists()


def test_the_same_token_signed_by_the_providers_key_is_accepted(acme, provider, monkeypatch):
    # The control for the cases above: re-signing alone changes nothing.
    _with_id_token(monkeypatch, lambda claims, original: provider.sign(claims))
    provider.set_account("jay", "jay@acme.test")
    assert sign_in_with_sso(_browser(), "jay@acme.test", "jay").status_code == 200


# --- SSO only ----------------------------------------------------------------------------------


def test_sso_only_refuses_password_sign_in_to_members_but_not_owners(acme, world, provider):
    viewer = world.a.user(Role.VIEWER)
    owner = world.a.user(Role.OWNER)
    assert password_sign_in_refused(viewer) is None

    configure(world.a.client(Role.OWNER), acme, sso_settings(provider, client_secret="", sso_only=True))

    assert password_sign_in_refused(viewer) == (
        f"{acme.name} signs in with single sign-on only: choose \u201cSign in with SSO\u201d and give "
        "your work email."
    )
    # Break-glass: owners keep their password, for when the provider fails.
    assert password_sign_in_refused(owner) is None
    # Through the sign-in page's API: 403 with the reason for the member, a session for the owner.
    refused = _browser().post(
        "/api/v1/auth/login/", {"email": viewer.email, "password": PASSWORD}, format="json"
    )
    assert refused.status_code == 403 and "single sign-on only" in refused.json()["detail"]
    assert not UserSession.objects.filter(user=viewer).exists()
    signed_in = _browser().post(
        "/api/v1/auth/login/", {"email": owner.email, "password": PASSWORD}, format="json"
    )
    assert signed_in.status_code == 200, signed_in.content
    # Members of other organizations only are not concerned.
    assert password_sign_in_refused(world.b.user(Role.VIEWER)) is None
    # Someone who is also a member elsewhere is refused all the same: a session spans them all.
    add_member(world.b.org, Role.ADMIN, viewer)
    assert password_sign_in_refused(viewer) is not None
    assert AuditEntry.objects.filter(organization=acme, action="sso.update").exists()


def test_claims_in_the_id_token_need_no_userinfo(world, tmp_path):
    """Many providers put the email and groups in the ID token itself: nothing more is asked."""
    from sso.services import callback_url
    from tests.oidc_provider import OidcProvider

    provider = OidcProvider(
        folder=tmp_path / "provider", redirect_uris=[callback_url()], claims_in_id_token=True
    )
    provider.start()
    try:
        provider.set_account("kim", "kim@beta.test", groups=["engineers"])
        settings = sso_settings(provider, allowed_domains=["beta.test"])
        assert configure(world.b.client(Role.OWNER), world.b.org, settings).status_code == 200
        asked = []
        real_request = OAuth2Session.request

        def request(self, method, url, *args, **kwargs):
            asked.append(url)
            return real_request(self, method, url, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(OAuth2Session, "request", request)
            answer = sign_in_with_sso(_browser(), "kim@beta.test", "kim")
        assert answer.status_code == 200, answer.content
        assert answer.json()["organization"] == {
            "name": world.b.org.name,
            "slug": world.b.org.slug,
            "role": "developer",
        }
        assert [url for url in asked if url.endswith("/me")] == []
        assert any(url.endswith("/token") for url in asked)
    finally:
        provider.stop()


def test_a_sign_in_left_at_the_provider_too_long_expires(acme, provider):
    import time_machine
    from django.utils import timezone

    provider.set_account("lea", "lea@acme.test")
    browser = _browser()
    answer = sign_in_at_provider(start(browser, "lea@acme.test"), "lea")
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=11), tick=False):
        refused = come_back(browser, answer)
    assert refused.status_code == 400
    assert "has expired" in refused.json()["errors"]["state"][0]
