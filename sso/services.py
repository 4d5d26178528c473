"""Single sign-on: an owner configures the organization's OpenID Connect provider; people sign in
through it, found by their email's domain; new people from an allowed domain join on their first
sign-in; a claim (`groups`) maps to roles, applied again at every sign-in; and "SSO only" keeps
members other than owners from signing in with a password (docs/sso.md).

The protocol (discovery, PKCE, state, nonce, the ID token's checks) is in oidc.py, on Authlib;
the rules are here. Every change of the configuration, every join, role change and refused
sign-in is in the organization's audit log; the sign-in itself is recorded by identity."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from core import clock
from core.api.client import client_ip
from core.celery import enqueue_on_commit
from core.encryption import RotationCount, reencrypted
from core.errors import InvalidInput, NotFound
from identity import services as identity
from tenants.audit import Actor, record_audit
from tenants.models import Membership, Organization, User
from tenants.roles import Role
from tenants.schemas import current_schema_name

from . import oidc
from .models import SsoConfiguration, SsoDomain, SsoIdentity

logger = logging.getLogger(__name__)

# The console's sign-in page: the provider sends the browser back there, and the page hands the
# answer to POST /api/v1/auth/sso/callback/.
CALLBACK_PATH = "/console/login"
# What the session keeps of sign-ins under way: a few, the newest (several tabs at once).
SESSION_KEY = "sso_flows"
MAX_FLOWS = 5
# SSO gives these roles; the owner role is given and taken in the console only.
MAPPABLE_ROLES = tuple(role for role in Role.values if role != Role.OWNER)
MAX_DOMAINS = 50
MAX_RULES = 50
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

FLOW_EXPIRED = (
    "This sign-in has expired or was started in another browser: start again from the sign-in page."
)


def callback_url() -> str:
    """The redirect URI to register at the provider."""
    return settings.PUBLIC_URL + CALLBACK_PATH


# --- the configuration -----------------------------------------------------------------------


@dataclass(frozen=True)
class RoleRule:
    """People whose role claim holds `value` get `role`."""

    value: str
    role: str


def configuration_of(organization: Organization) -> SsoConfiguration | None:
    return SsoConfiguration.objects.filter(organization=organization).prefetch_related("domains").first()


def domains_of(configuration: SsoConfiguration) -> list[str]:
    return [domain.domain for domain in configuration.domains.all()]


def _normalized_domains(domains: list[str]) -> list[str]:
    cleaned: list[str] = []
    for raw in domains:
        domain = raw.strip().lower().lstrip("@").rstrip(".")
        if not _DOMAIN.match(domain):
            raise InvalidInput.field("allowed_domains", f"{raw!r} is not a domain name (example.com).")
        if domain not in cleaned:
            cleaned.append(domain)
    if not cleaned:
        raise InvalidInput.field("allowed_domains", "Give at least one email domain (example.com).")
    if len(cleaned) > MAX_DOMAINS:
        raise InvalidInput.field("allowed_domains", f"At most {MAX_DOMAINS} domains.")
    return cleaned


def _checked_rules(role_claim: str, rules: list[RoleRule]) -> list[RoleRule]:
    if len(rules) > MAX_RULES:
        raise InvalidInput.field("role_mapping", f"At most {MAX_RULES} rules.")
    for rule in rules:
        if not rule.value.strip():
            raise InvalidInput.field("role_mapping", "Each rule names the claim's value it matches.")
        if rule.role not in MAPPABLE_ROLES:
            raise InvalidInput.field(
                "role_mapping", "Single sign-on does not give the owner role: owners are made in the console."
            )
    if rules and not role_claim:
        raise InvalidInput.field("role_claim", "Name the claim the rules read (for example groups).")
    return [RoleRule(value=rule.value.strip(), role=rule.role) for rule in rules]


def _summary(configuration: SsoConfiguration) -> dict[str, Any]:
    """What the audit log shows of a configuration: never the secret."""
    return {
        "issuer": configuration.issuer,
        "client_id": configuration.client_id,
        "allowed_domains": domains_of(configuration),
        "default_role": configuration.default_role,
        "role_claim": configuration.role_claim,
        "role_mapping": configuration.role_mapping,
        "sso_only": configuration.sso_only,
    }


def configure(
    actor: Actor,
    organization: Organization,
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    allowed_domains: list[str],
    default_role: str,
    role_claim: str,
    role_mapping: list[RoleRule],
    sso_only: bool,
) -> SsoConfiguration:
    """Set the organization's single sign-on, all of it at once. The secret may be left out (None
    or blank) to keep the one saved. The provider's discovery document is read first: an issuer
    it does not confirm is refused."""
    try:
        issuer = oidc.normalized_issuer(issuer)
    except oidc.ProviderError as exc:
        raise InvalidInput.field("issuer", exc.message) from exc
    client_id = client_id.strip()
    if not client_id:
        raise InvalidInput.field("client_id", "Give the client ID the provider gave this application.")
    domains = _normalized_domains(allowed_domains)
    if default_role not in MAPPABLE_ROLES:
        raise InvalidInput.field(
            "default_role", "Single sign-on does not give the owner role: owners are made in the console."
        )
    role_claim = role_claim.strip()
    rules = _checked_rules(role_claim, role_mapping)
    existing = configuration_of(organization)
    if existing is None and not client_secret:
        raise InvalidInput.field(
            "client_secret", "Give the client secret the provider gave this application."
        )
    # Outside the transaction: a request to the provider holds no database lock.
    try:
        oidc.discover(issuer)
    except oidc.ProviderError as exc:
        raise InvalidInput.field("issuer", exc.message) from exc
    with transaction.atomic():
        return _save(
            actor,
            organization,
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret or None,
            domains=domains,
            default_role=default_role,
            role_claim=role_claim,
            rules=rules,
            sso_only=sso_only,
        )


def _save(
    actor: Actor,
    organization: Organization,
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    domains: list[str],
    default_role: str,
    role_claim: str,
    rules: list[RoleRule],
    sso_only: bool,
) -> SsoConfiguration:
    configuration = SsoConfiguration.objects.select_for_update().filter(organization=organization).first()
    before = _summary(configuration) if configuration else None
    if configuration is None:
        configuration = SsoConfiguration(organization=organization)
    elif configuration.issuer != issuer:
        # Subjects are the old provider's: people are found by their email again.
        SsoIdentity.objects.filter(configuration=configuration).delete()
    secret_changed = client_secret is not None
    if client_secret is not None:
        configuration.client_secret = client_secret
    configuration.issuer = issuer
    configuration.client_id = client_id
    configuration.default_role = default_role
    configuration.role_claim = role_claim
    configuration.role_mapping = [{"value": rule.value, "role": rule.role} for rule in rules]
    configuration.sso_only = sso_only
    configuration.save()
    taken = (
        SsoDomain.objects.filter(domain__in=domains)
        .exclude(configuration=configuration)
        .values_list("domain", flat=True)
    )
    if taken:
        raise InvalidInput.field(
            "allowed_domains",
            f"{', '.join(sorted(taken))}: another organization signs in with single sign-on for "
            "this domain already.",
        )
    SsoDomain.objects.filter(configuration=configuration).exclude(domain__in=domains).delete()
    for domain in domains:
        try:
            with transaction.atomic():
                SsoDomain.objects.get_or_create(configuration=configuration, domain=domain)
        except IntegrityError as exc:  # another organization claimed it at the same moment
            raise InvalidInput.field(
                "allowed_domains", f"{domain}: another organization just claimed this domain."
            ) from exc
    after = _summary(configuration)
    if before is None:
        record_audit(actor, organization, "sso.configure", configuration, after=after)
    elif before != after or secret_changed:
        changed = {key: value for key, value in after.items() if before.get(key) != value}
        if secret_changed:
            changed["client_secret"] = "changed"
        previous = {key: before[key] for key in changed if key in before}
        record_audit(actor, organization, "sso.update", configuration, before=previous, after=changed)
    return configuration


@transaction.atomic
def remove(actor: Actor, organization: Organization) -> None:
    """Single sign-on off: its members sign in with a password again (those who never set one ask
    for a password reset)."""
    configuration = SsoConfiguration.objects.select_for_update().filter(organization=organization).first()
    if configuration is None:
        raise NotFound("This organization has no single sign-on.")
    record_audit(actor, organization, "sso.remove", configuration, before=_summary(configuration))
    configuration.delete()


def rotate_client_secrets() -> RotationCount:
    """Re-encrypt, under the first key, the client secret of the organization whose schema is
    active (`manage.py rotate_encryption_key` runs this in each): the table is in the public
    schema, and each organization's row is re-encrypted once."""
    count = RotationCount()
    row = (
        SsoConfiguration.objects.filter(organization__schema_name=current_schema_name())
        .values("pk", "client_secret_ciphertext")
        .first()
    )
    if row is None:
        return count
    new = reencrypted(row["client_secret_ciphertext"])
    if new is None:
        count.current += 1
    else:
        count.rotated += SsoConfiguration.objects.filter(
            pk=row["pk"], client_secret_ciphertext=row["client_secret_ciphertext"]
        ).update(client_secret_ciphertext=new)
    return count


# --- finding the organization ----------------------------------------------------------------


def _domain_of(email: str) -> str:
    return email.strip().rsplit("@", 1)[-1].lower().rstrip(".")


def configuration_for_email(email: str) -> SsoConfiguration:
    """The single sign-on whose allowed domains include the email's; 404 when none does."""
    domain = _domain_of(email)
    found = (
        SsoDomain.objects.select_related("configuration__organization")
        .filter(domain=domain, configuration__organization__is_template=False)
        .first()
    )
    if found is None:
        raise NotFound(
            f"No organization signs in with single sign-on for {domain}: sign in with your password."
        )
    return found.configuration


# --- signing in ------------------------------------------------------------------------------


def _client(configuration: SsoConfiguration) -> oidc.Client:
    return oidc.Client(
        issuer=configuration.issuer,
        client_id=configuration.client_id,
        client_secret=configuration.client_secret,
    )


def _flows(request: HttpRequest) -> dict[str, dict[str, Any]]:
    flows = request.session.get(SESSION_KEY)
    return flows if isinstance(flows, dict) else {}


def start_sign_in(request: HttpRequest, email: str) -> str:
    """Where to send the browser to sign in with the provider of the organization that answers
    for the email's domain. The state, nonce and PKCE verifier stay in this browser's session."""
    configuration = configuration_for_email(email)
    try:
        metadata = oidc.discover(configuration.issuer)
        scope = oidc.scopes_for(metadata, configuration.role_claim)
        auth = oidc.authorization_request(
            _client(configuration),
            metadata,
            redirect_uri=callback_url(),
            scope=scope,
            login_hint=email.strip(),
        )
    except oidc.ProviderError as exc:
        logger.warning("SSO of %s cannot start: %s", configuration.organization.slug, exc.message)
        raise InvalidInput(
            detail=f"{configuration.organization.name}'s identity provider cannot be reached: {exc.message}"
        ) from exc
    flows = _flows(request)
    flows[auth.state] = {
        "organization_id": configuration.organization_id,
        "issuer": configuration.issuer,
        "client_id": configuration.client_id,
        "nonce": auth.nonce,
        "code_verifier": auth.code_verifier,
        "redirect_uri": callback_url(),
        "started_at": clock.now().isoformat(),
    }
    newest = sorted(flows.items(), key=lambda item: item[1]["started_at"])[-MAX_FLOWS:]
    request.session[SESSION_KEY] = dict(newest)
    return auth.url


@dataclass(frozen=True)
class SignedIn:
    user: User
    organization: Organization
    role: str
    joined: bool


@dataclass(frozen=True)
class LinkSent:
    """An existing account met its organization's provider for the first time: a link to connect
    them was emailed to the account's address."""

    email: str
    organization: Organization


class _ConfirmByEmail(Exception):
    def __init__(self, user: User, subject: str) -> None:
        super().__init__(user.email)
        self.user = user
        self.subject = subject


class _Refused(Exception):
    """A sign-in refused for a reason the organization's audit log records."""

    def __init__(self, message: str, reason: str, email: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.email = email


def complete_sign_in(
    request: HttpRequest, *, state: str, code: str = "", error: str = "", issuer: str = ""
) -> SignedIn | LinkSent:
    """The provider sent the browser back: check that this browser started this sign-in (state)
    and that the answer is the provider's (issuer), exchange the code, verify the ID token
    (signature, iss, aud, exp, nonce), then sign the person in, joining the organization on their
    first sign-in. An existing account met for the first time is not signed in: its address is
    sent a link to connect it (LinkSent). Refused with 400 and the reason; refusals after the
    state is known are in the organization's audit log."""
    flows = _flows(request)
    flow = flows.pop(state, None) if state else None
    if flow is not None:
        # Single use: a second answer with the same state finds nothing.
        request.session[SESSION_KEY] = flows
    started = datetime.fromisoformat(flow["started_at"]) if flow else None
    if (
        flow is None
        or started is None
        or clock.now() - started > timedelta(minutes=settings.SSO_FLOW_MINUTES)
    ):
        raise InvalidInput.field("state", FLOW_EXPIRED)
    configuration = (
        SsoConfiguration.objects.select_related("organization")
        .filter(organization_id=flow["organization_id"])
        .first()
    )
    if configuration is None or (configuration.issuer, configuration.client_id) != (
        flow["issuer"],
        flow["client_id"],
    ):
        raise InvalidInput.field(
            "state", "The organization's single sign-on changed during this sign-in: start again."
        )
    ip_address = client_ip(request)
    try:
        claims = _verified_claims(configuration, flow, code=code, error=error, issuer=issuer)
        signed_in = _join_or_update(configuration, claims, ip_address)
    except _ConfirmByEmail as pending:
        record_audit(
            Actor(user=None, ip_address=ip_address),
            configuration.organization,
            "sso.link_requested",
            configuration,
            after={"email": pending.user.email},
        )
        from . import tasks

        user_id, configuration_id, subject = pending.user.id, configuration.id, pending.subject
        enqueue_on_commit(
            tasks.send_link_email.name,
            lambda: tasks.send_link_email.delay(user_id, configuration_id, subject),
        )
        return LinkSent(email=pending.user.email, organization=configuration.organization)
    except _Refused as refused:
        record_audit(
            Actor(user=None, ip_address=ip_address),
            configuration.organization,
            "sso.sign_in_failed",
            configuration,
            after={"reason": refused.reason, **({"email": refused.email} if refused.email else {})},
        )
        raise InvalidInput(detail=refused.message) from refused
    _open_session(request, signed_in.user)
    return signed_in


def _verified_claims(
    configuration: SsoConfiguration, flow: dict[str, Any], *, code: str, error: str, issuer: str
) -> dict[str, Any]:
    name = configuration.organization.name
    if error:
        raise _Refused(f"{name}'s identity provider did not sign you in ({error}).", f"provider: {error}")
    if not code:
        raise _Refused("The identity provider's answer has no code: start again.", "no code")
    try:
        metadata = oidc.discover(configuration.issuer)
        # RFC 9207: the answer says which provider sent it, where the provider says it will.
        if issuer and issuer != metadata["issuer"]:
            raise oidc.ProviderError(f"The answer came from {issuer}, not from {metadata['issuer']}.")
        if not issuer and metadata.get("authorization_response_iss_parameter_supported") is True:
            raise oidc.ProviderError("The answer does not say which provider sent it.")
        needed = ("email", configuration.role_claim) if configuration.role_claim else ("email",)
        return oidc.complete(
            _client(configuration),
            metadata,
            redirect_uri=flow["redirect_uri"],
            code=code,
            code_verifier=flow["code_verifier"],
            nonce=flow["nonce"],
            needed_claims=needed,
        )
    except oidc.ProviderError as exc:
        logger.warning("SSO sign-in to %s refused: %s", configuration.organization.slug, exc.message)
        raise _Refused(exc.message, exc.message) from exc


def role_from_claims(configuration: SsoConfiguration, claims: dict[str, Any]) -> str | None:
    """The role the first matching rule gives, or None when no rule matches (or none is set)."""
    if not configuration.role_claim:
        return None
    value = claims.get(configuration.role_claim)
    # One value (a string) or several (a list); anything else matches no rule.
    listed = value if isinstance(value, list) else [value]
    values = {item for item in listed if isinstance(item, str)}
    for rule in configuration.role_mapping:
        if rule.get("value") in values:
            return str(rule["role"])
    return None


def _user_of(configuration: SsoConfiguration, subject: str, email: str, name: str) -> tuple[User, bool]:
    """The user this subject is: linked at an earlier sign-in, or found by email, or new. An
    existing account joins only if it is already a member: the provider speaks for the
    organization's people, not for accounts that never joined it."""
    identity_row = (
        SsoIdentity.objects.select_related("user")
        .filter(configuration=configuration, subject=subject)
        .first()
    )
    if identity_row is not None:
        return identity_row.user, False
    user = User.objects.filter(email__iexact=email).first()
    created = False
    if user is not None:
        if not Membership.objects.filter(organization=configuration.organization, user=user).exists():
            raise _Refused(
                f"An account for {email} exists and is not a member of {configuration.organization.name}: "
                "sign in with your password and ask an owner to invite you.",
                "existing account is not a member",
                email,
            )
        # The provider is the organization's owner's to configure: its word that this is the
        # person who holds the account would let an owner sign in as any member, and so into
        # the member's other organizations. The account's own mailbox confirms the link.
        raise _ConfirmByEmail(user, subject)
    else:
        try:
            with transaction.atomic():
                user = User.objects.create_user(email=email, password=None, name=name[:150])
        except IntegrityError as exc:  # the same person's other tab, at the same moment
            raise _Refused(
                "Signing in at the same moment elsewhere: try again.", "account race", email
            ) from exc
        created = True
    SsoIdentity.objects.create(configuration=configuration, subject=subject, user=user)
    return user, created


@transaction.atomic
def _join_or_update(
    configuration: SsoConfiguration, claims: dict[str, Any], ip_address: str | None
) -> SignedIn:
    organization = configuration.organization
    email = claims.get("email")
    subject = claims.get("sub")
    if not isinstance(email, str) or "@" not in email or not isinstance(subject, str):
        raise _Refused("The identity provider did not give your email address.", "no email claim")
    email = email.strip().lower()
    allowed = domains_of(configuration)
    if _domain_of(email) not in allowed:
        raise _Refused(
            f"{_domain_of(email)} is not among the email domains {organization.name} signs in with "
            f"({', '.join(allowed)}).",
            "domain not allowed",
            email,
        )
    if claims.get("email_verified") is False:
        raise _Refused(
            f"Your identity provider has not verified {email}.", "email not verified at the provider", email
        )
    name = claims.get("name") if isinstance(claims.get("name"), str) else ""
    user, created = _user_of(configuration, subject, email, str(name or ""))
    if not user.is_active:
        raise _Refused("This account is deactivated.", "account deactivated", email)
    SsoIdentity.objects.filter(configuration=configuration, subject=subject).update(
        last_sign_in_at=clock.now()
    )
    mapped = role_from_claims(configuration, claims)
    actor = Actor(user=user, ip_address=ip_address)
    membership = Membership.objects.select_for_update().filter(organization=organization, user=user).first()
    joined = membership is None
    if membership is None:
        role = mapped or configuration.default_role
        membership = Membership.objects.create(organization=organization, user=user, role=role)
        record_audit(
            actor,
            organization,
            "sso.join",
            membership,
            after={"user": email, "role": role, **({"new_account": True} if created else {})},
        )
    elif configuration.role_mapping and membership.role != Role.OWNER:
        # The provider is the source of roles: a rule's role, or the default when none matches.
        role = mapped or configuration.default_role
        if role != membership.role:
            before = {"role": membership.role}
            membership.role = role
            membership.save(update_fields=["role"])
            record_audit(
                actor,
                organization,
                "sso.role_change",
                membership,
                before=before,
                after={"role": role, "claim": configuration.role_claim},
            )
    if claims.get("email_verified") is True and user.email.lower() == email:
        identity.mark_email_verified(user, how="single sign-on", ip_address=ip_address)
    return SignedIn(user=user, organization=organization, role=membership.role, joined=joined)


# --- connecting an existing account ----------------------------------------------------------

_LINK_SALT = "sso.account-link"
LINK_INVALID = "This link is not valid: sign in with SSO again for a new one."
LINK_EXPIRED = "This link has expired: sign in with SSO again for a new one."
LINK_STALE = (
    "This link no longer applies (the account or the single sign-on changed): sign in with SSO again."
)
LINK_USED = "This link was used already: sign in with SSO."


def link_url(configuration: SsoConfiguration, subject: str, user: User) -> str:
    """The console's address that connects `user` to the provider's `subject`, for the email."""
    token = signing.dumps(
        {
            "c": configuration.pk,
            "i": configuration.issuer,
            "s": subject,
            "u": user.pk,
            "e": user.email.lower(),
        },
        salt=_LINK_SALT,
    )
    return f"{settings.PUBLIC_URL}/console/sso/link/{token}"


@transaction.atomic
def confirm_link(token: str, ip_address: str | None) -> Organization:
    """Connect the account the emailed link names to the provider's identity it was sent for,
    once; the next sign-in with SSO goes straight in. The organization it is connected for."""
    try:
        data = signing.loads(token, salt=_LINK_SALT, max_age=settings.SSO_LINK_MINUTES * 60)
    except signing.SignatureExpired as exc:
        raise InvalidInput.field("token", LINK_EXPIRED) from exc
    except signing.BadSignature as exc:
        raise InvalidInput.field("token", LINK_INVALID) from exc
    if not isinstance(data, dict) or not all(key in data for key in "ciseu"):
        raise InvalidInput.field("token", LINK_INVALID)
    configuration = SsoConfiguration.objects.select_related("organization").filter(pk=data["c"]).first()
    user = User.objects.filter(pk=data["u"], is_active=True).first()
    if (
        configuration is None
        or configuration.issuer != data["i"]
        or user is None
        or user.email.lower() != data["e"]
        or not Membership.objects.filter(organization=configuration.organization, user=user).exists()
    ):
        raise InvalidInput.field("token", LINK_STALE)
    try:
        with transaction.atomic():
            identity_row = SsoIdentity.objects.create(
                configuration=configuration, subject=data["s"], user=user
            )
    except IntegrityError as exc:  # used already, or by the same link opened twice at once
        raise InvalidInput.field("token", LINK_USED) from exc
    record_audit(
        Actor(user=user, ip_address=ip_address),
        configuration.organization,
        "sso.link",
        identity_row,
        after={"user": user.email},
    )
    return configuration.organization


def _open_session(request: HttpRequest, user: User) -> None:
    """Signed in, as after a password: a session identity tracks, and `user.sign_in` (method
    sso) in the audit log of each of the user's organizations."""
    identity.complete_sign_in(request, user, method="sso")


# --- password sign-in ------------------------------------------------------------------------


def password_sign_in_refused(user: User) -> str | None:
    """Why `user` may not sign in with a password, or None when they may: a member of an
    organization whose single sign-on is its only way in, who is not an owner there (owners keep
    their password, to get back in when the provider fails)."""
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__is_template=False)
        .exclude(role=Role.OWNER)
        .filter(organization_id__in=SsoConfiguration.objects.filter(sso_only=True).values("organization_id"))
        .order_by("organization__name")
        .first()
    )
    if membership is None:
        return None
    return (
        f"{membership.organization.name} signs in with single sign-on only: choose "
        "\u201cSign in with SSO\u201d and give your work email."
    )
