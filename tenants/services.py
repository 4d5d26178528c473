"""Business rules for organizations, people, roles, invitations and API tokens.

Views parse and authorize, then call these functions; every write records an audit entry in
the same transaction."""

import re
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.utils.text import slugify

from core import clock
from core.celery import enqueue_on_commit
from core.errors import Forbidden, InvalidInput, NotFound

from .audit import Actor, record_audit
from .credentials import hash_secret, new_secret
from .models import ApiToken, Domain, Invitation, Membership, Organization, User
from .provisioning import TEMPLATE_SLUG, create_organization_schema
from .roles import ROLE_SCOPES, Role, Scope, can_grant

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$")
SLUG_MESSAGE = "Use 1 to 50 lowercase letters, digits and hyphens, not starting or ending with a hyphen."


# --- organizations ---------------------------------------------------------------------------


def organizations_of(user: User) -> "list[tuple[Organization, str]]":
    memberships = Membership.objects.filter(user=user, organization__is_template=False).select_related(
        "organization"
    )
    return [(m.organization, m.role) for m in memberships.order_by("organization__name", "organization__id")]


def _check_slug(slug: str, *, exclude_id: int | None = None) -> None:
    if not SLUG_PATTERN.match(slug):
        raise InvalidInput.field("slug", SLUG_MESSAGE)
    taken = Organization.objects.filter(slug=slug)
    if exclude_id is not None:
        taken = taken.exclude(id=exclude_id)
    if taken.exists():
        raise InvalidInput.field("slug", f"The slug {slug!r} is already taken.")


def _available_slug(name: str) -> str:
    base = slugify(name)[:40].strip("-") or "org"
    candidate = base
    while Organization.objects.filter(slug=candidate).exists() or candidate == TEMPLATE_SLUG:
        candidate = f"{base}-{new_secret()[:6].lower().replace('_', 'x').replace('-', 'x')}"
    return candidate


def _provision(actor: Actor, owner: User, *, name: str, slug: str | None) -> Organization:
    if slug is not None:
        _check_slug(slug)
    try:
        with transaction.atomic():
            organization = create_organization_schema(name=name, slug=slug or _available_slug(name))
            Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
            record_audit(
                actor,
                organization,
                "organization.create",
                organization,
                after={"name": organization.name, "slug": organization.slug},
            )
    except IntegrityError as exc:  # two signups raced for the same slug
        raise InvalidInput.field("slug", "That slug was just taken; choose another.") from exc
    return organization


def sign_up(
    *, email: str, password: str, name: str, organization_name: str, ip_address: str | None
) -> tuple[User, Organization]:
    """Create a user and their first organization, of which they are the owner."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise InvalidInput.field("email", "An account with this email already exists.")
    candidate = User(email=email, name=name)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as exc:
        raise InvalidInput({"password": list(exc.messages)}, detail=exc.messages[0]) from exc
    with transaction.atomic():
        user = User.objects.create_user(email=email, password=password, name=name)
        organization = _provision(
            Actor(user=user, ip_address=ip_address), user, name=organization_name, slug=None
        )
    return user, organization


def _refuse_token(actor: Actor, message: str) -> None:
    """What a person must do logged in, as themselves: never through an API token."""
    if actor.api_token is not None:
        raise Forbidden(message)


def _refuse_owner_grant_by_token(actor: Actor, role: str) -> None:
    if role == Role.OWNER:
        _refuse_token(
            actor, "The owner role cannot be granted or taken away with an API token; log in to do it."
        )


def create_organization(actor: Actor, *, name: str, slug: str | None) -> Organization:
    assert actor.user is not None
    _refuse_token(actor, "API tokens belong to one organization and cannot create others.")
    return _provision(actor, actor.user, name=name, slug=slug)


@transaction.atomic
def update_organization(
    actor: Actor, organization: Organization, *, name: str | None, slug: str | None
) -> Organization:
    before = {"name": organization.name, "slug": organization.slug}
    if slug is not None and slug != organization.slug:
        _check_slug(slug, exclude_id=organization.id)
        organization.slug = slug
    if name is not None:
        organization.name = name
    after = {"name": organization.name, "slug": organization.slug}
    if after == before:
        return organization
    try:
        with transaction.atomic():
            organization.save(update_fields=["name", "slug"])
    except IntegrityError as exc:
        raise InvalidInput.field("slug", "That slug was just taken; choose another.") from exc
    record_audit(actor, organization, "organization.update", organization, before=before, after=after)
    return organization


# --- members ---------------------------------------------------------------------------------


def _lock_owner_count(organization: Organization) -> int:
    # Locking every owner row serializes concurrent demotions, so two owners cannot demote
    # each other at once and leave the organization with none.
    owners = Membership.objects.select_for_update().filter(organization=organization, role=Role.OWNER)
    return len(list(owners))


@transaction.atomic
def change_member_role(
    actor: Actor,
    organization: Organization,
    membership: Membership,
    role: str,
    granter_scopes: frozenset[str],
) -> Membership:
    if role == membership.role:
        return membership
    _refuse_owner_grant_by_token(actor, role)
    _refuse_owner_grant_by_token(actor, membership.role)
    if not can_grant(granter_scopes, role) or (
        membership.role == Role.OWNER and Scope.OWNER_WRITE not in granter_scopes
    ):
        raise Forbidden("Only owners can grant or take away the owner role.")
    if membership.role == Role.OWNER and _lock_owner_count(organization) <= 1:
        raise InvalidInput.field("role", "The last owner cannot be demoted; make someone else owner first.")
    before = {"role": membership.role}
    membership.role = role
    membership.save(update_fields=["role"])
    record_audit(actor, organization, "member.role_change", membership, before=before, after={"role": role})
    return membership


def _remove(actor: Actor, organization: Organization, membership: Membership, action: str) -> None:
    if membership.role == Role.OWNER and _lock_owner_count(organization) <= 1:
        raise InvalidInput.field(
            "role", "The last owner cannot leave or be removed; make someone else owner first."
        )
    record_audit(
        actor,
        organization,
        action,
        membership,
        before={"user": membership.user.email, "role": membership.role},
    )
    # Tokens act on behalf of a membership; without it they must stop working at once.
    ApiToken.objects.filter(organization=organization, user=membership.user, revoked_at__isnull=True).update(
        revoked_at=clock.now()
    )
    membership.delete()


@transaction.atomic
def remove_member(
    actor: Actor, organization: Organization, membership: Membership, remover_scopes: frozenset[str]
) -> None:
    _refuse_owner_grant_by_token(actor, membership.role)
    if membership.role == Role.OWNER and Scope.OWNER_WRITE not in remover_scopes:
        raise Forbidden("Only owners can remove an owner.")
    _remove(actor, organization, membership, "member.remove")
    # Removed by someone else: signed out everywhere, so that a console still open does not go
    # on as if nothing happened. Imported here: identity builds on this module.
    if membership.user != actor.user:
        from identity import services as identity

        identity.end_all_sessions(membership.user, actor=actor, reason="removed from an organization")


@transaction.atomic
def leave_organization(actor: Actor, organization: Organization) -> None:
    membership = Membership.objects.filter(organization=organization, user=actor.user).first()
    if membership is None:
        raise NotFound("You are not a member of this organization.")
    _remove(actor, organization, membership, "member.leave")


# --- invitations -----------------------------------------------------------------------------


@transaction.atomic
def invite_member(
    actor: Actor, organization: Organization, *, email: str, role: str, inviter_scopes: frozenset[str]
) -> Invitation:
    """Create an invitation; the email with its single-use link is sent by a Celery task once
    the transaction commits (the link's secret is made there and never stored in clear)."""
    email = email.strip().lower()
    _refuse_owner_grant_by_token(actor, role)
    if not can_grant(inviter_scopes, role):
        raise Forbidden("Only owners can invite owners.")
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise InvalidInput.field("email", f"{email} is already a member of this organization.")
    # A new invitation for the same address replaces the pending one.
    pending = Invitation.objects.select_for_update().filter(
        organization=organization, accepted_at__isnull=True, revoked_at__isnull=True
    )
    pending.annotate(lower_email=Lower("email")).filter(lower_email=email).update(revoked_at=clock.now())
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=hash_secret(new_secret()),  # replaced by the task's hash when it sends the link
        invited_by=actor.user,
        expires_at=clock.now() + timedelta(hours=settings.INVITATION_TTL_HOURS),
    )
    record_audit(actor, organization, "invitation.create", invitation, after={"email": email, "role": role})
    _enqueue_invitation_email(organization, invitation)
    return invitation


def _enqueue_invitation_email(organization: Organization, invitation: Invitation) -> None:
    """After the commit; a broker outage leaves the invitation saved, to be sent again with the
    resend action."""
    from .tasks import send_invitation_email

    enqueue_on_commit(
        f"the email for invitation {invitation.id}",
        lambda: send_invitation_email.delay_for(organization, invitation.id),
    )


@transaction.atomic
def resend_invitation(actor: Actor, organization: Organization, invitation: Invitation) -> Invitation:
    """Send a fresh link (the old one stops working) and extend the expiry."""
    if invitation.status not in ("pending", "expired"):
        raise InvalidInput.field("status", f"This invitation is already {invitation.status}.")
    invitation.expires_at = clock.now() + timedelta(hours=settings.INVITATION_TTL_HOURS)
    invitation.save(update_fields=["expires_at"])
    record_audit(actor, organization, "invitation.resend", invitation, after={"email": invitation.email})
    _enqueue_invitation_email(organization, invitation)
    return invitation


def issue_invitation_link(invitation: Invitation) -> str:
    """Give the invitation a new secret, store its hash, and return the link to email."""
    secret = new_secret()
    Invitation.objects.filter(id=invitation.id).update(token_hash=hash_secret(secret))
    return f"{settings.PUBLIC_URL}/invitations/{secret}"


@transaction.atomic
def revoke_invitation(actor: Actor, organization: Organization, invitation: Invitation) -> None:
    if invitation.status != "pending":
        raise InvalidInput.field("status", f"This invitation is already {invitation.status}.")
    invitation.revoked_at = clock.now()
    invitation.save(update_fields=["revoked_at"])
    record_audit(actor, organization, "invitation.revoke", invitation, before={"email": invitation.email})


def find_invitation(secret: str) -> Invitation:
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_hash=hash_secret(secret))
        .first()
    )
    if invitation is None:
        raise NotFound("This invitation link is not valid.")
    return invitation


@transaction.atomic
def accept_invitation(
    secret: str, *, user: User | None, password: str | None, name: str, ip_address: str | None
) -> tuple[User, Membership]:
    """Join the organization. Without a logged-in user, sign up on the way with a password."""
    invitation = find_invitation(secret)
    invitation = Invitation.objects.select_for_update().get(id=invitation.id)
    if invitation.status != "pending":
        raise InvalidInput.field("token", f"This invitation is {invitation.status}.")
    organization = invitation.organization
    if user is None:
        if User.objects.filter(email__iexact=invitation.email).exists():
            raise Forbidden(f"An account for {invitation.email} exists: log in, then accept the invitation.")
        if not password:
            raise InvalidInput.field("password", "Choose a password to create your account.")
        candidate = User(email=invitation.email, name=name)
        try:
            validate_password(password, user=candidate)
        except DjangoValidationError as exc:
            raise InvalidInput({"password": list(exc.messages)}, detail=exc.messages[0]) from exc
        user = User.objects.create_user(email=invitation.email, password=password, name=name)
    elif user.email.lower() != invitation.email.lower():
        raise Forbidden(f"This invitation was sent to {invitation.email}; you are logged in as {user.email}.")
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise InvalidInput.field("token", "You are already a member of this organization.")
    membership = Membership.objects.create(organization=organization, user=user, role=invitation.role)
    invitation.accepted_at = clock.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    record_audit(
        Actor(user=user, ip_address=ip_address),
        organization,
        "invitation.accept",
        membership,
        after={"user": user.email, "role": membership.role},
    )
    return user, membership


# --- API tokens ------------------------------------------------------------------------------


def default_token_ceiling(role: str) -> str:
    """The role ceiling of a token made without one: the least that is still of use, viewer
    (reading), or billing for a billing member (a viewer may read what billing may not). A token
    that writes or administers names its ceiling."""
    return Role.BILLING if role == Role.BILLING else Role.VIEWER


@transaction.atomic
def create_api_token(
    actor: Actor,
    organization: Organization,
    membership: Membership,
    *,
    name: str,
    role_ceiling: str | None,
    expires_at: datetime | None,
) -> tuple[ApiToken, str]:
    """Returns the token and its secret: the only time the secret is seen. The token may do at
    most what its `role_ceiling` may, never more than its creator's role; without one, the least
    (default_token_ceiling)."""
    # A leaked token must not be able to mint more tokens.
    _refuse_token(actor, "API tokens cannot create API tokens; log in to do it.")
    ceiling = role_ceiling or default_token_ceiling(membership.role)
    if not ROLE_SCOPES[ceiling] <= ROLE_SCOPES[membership.role]:
        raise InvalidInput.field("role_ceiling", f"A {membership.role} cannot create a {ceiling} token.")
    if expires_at is not None and expires_at <= clock.now():
        raise InvalidInput.field("expires_at", "The expiry must be in the future.")
    secret = new_secret(settings.API_TOKEN_PREFIX)
    token = ApiToken.objects.create(
        organization=organization,
        user=membership.user,
        name=name,
        role_ceiling=ceiling,
        prefix=secret[: len(settings.API_TOKEN_PREFIX) + 6],
        token_hash=hash_secret(secret),
        expires_at=expires_at,
    )
    record_audit(
        actor,
        organization,
        "api_token.create",
        token,
        after={
            "name": name,
            "role_ceiling": ceiling,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, secret


@transaction.atomic
def revoke_api_token(actor: Actor, organization: Organization, token: ApiToken) -> None:
    if token.revoked_at is not None:
        return
    token.revoked_at = clock.now()
    token.save(update_fields=["revoked_at"])
    record_audit(actor, organization, "api_token.revoke", token, before={"name": token.name})


LAST_USED_RESOLUTION = timedelta(minutes=1)


def authenticate_api_token(secret: str) -> tuple[ApiToken, Membership] | None:
    """The token and the membership it acts for, or None when unknown, revoked, expired, or
    its user is no longer a member."""
    if not secret.startswith(settings.API_TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user", "organization").filter(token_hash=hash_secret(secret)).first()
    )
    if token is None or not token.is_usable() or not token.user.is_active:
        return None
    membership = Membership.objects.filter(organization=token.organization, user=token.user).first()
    if membership is None:
        return None
    now = clock.now()
    # Recording every use would make each API call a write; a minute's resolution is enough.
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(id=token.id).update(last_used_at=now)
        token.last_used_at = now
    return token, membership


# --- host names ----------------------------------------------------------------------------------

HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def claim_portal_host(organization: Organization, host: str | None, previous: str | None) -> None:
    """Point `host` at the organization (its developer portal answers there); `previous` is let
    go. One organization per host name: 400 when another holds it. Called inside the caller's
    transaction."""
    if previous:
        Domain.objects.filter(tenant=organization, domain=previous.lower()).delete()
    if not host:
        return
    host = host.lower().rstrip(".")
    if not HOST_NAME.match(host):
        raise InvalidInput.field("custom_host", "A host name such as developers.example.com.")
    if Domain.objects.filter(domain=host).exclude(tenant=organization).exists():
        raise InvalidInput.field("custom_host", "Another organization uses this host name.")
    Domain.objects.get_or_create(domain=host, defaults={"tenant": organization, "is_primary": False})


def organization_of_host(host: str) -> Organization | None:
    """The organization a host name points at (claim_portal_host), if any."""
    domain = Domain.objects.select_related("tenant").filter(domain=host.lower().rstrip(".")).first()
    return domain.tenant if domain is not None else None


def organization_by_slug(slug: str) -> Organization | None:
    return Organization.objects.filter(slug=slug, is_template=False).first()
