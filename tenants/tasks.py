"""Background jobs of the tenants app."""

from datetime import timedelta
from smtplib import SMTPException

from django.db import transaction

from core import clock
from core.celery import TenantTask, app
from core.mail import send_templated_email

from .models import Invitation
from .services import issue_invitation_link


@app.task(
    base=TenantTask,
    name="tenants.send_invitation_email",
    autoretry_for=(SMTPException, OSError),
    max_retries=5,
    retry_backoff=True,
    retry_jitter=True,
)
def send_invitation_email(invitation_id: int) -> None:
    invitation = (
        Invitation.objects.select_related("organization", "invited_by").filter(id=invitation_id).first()
    )
    if invitation is None or invitation.status != "pending":
        return  # revoked or accepted meanwhile: nothing to send
    with transaction.atomic():
        link = issue_invitation_link(invitation)
    context = {
        "invitation": invitation,
        "organization": invitation.organization,
        "inviter": invitation.invited_by.email if invitation.invited_by else "A member",
        "link": link,
        "expires_at": invitation.expires_at,
    }
    send_templated_email(
        "tenants/invitation_email.txt",
        f"You are invited to {invitation.organization.name}",
        [invitation.email],
        context,
    )


@app.task(name="tenants.purge_stale_invitations")
def purge_stale_invitations() -> int:
    """Invitations that ended (expired, revoked or accepted) over 30 days ago are deleted; the
    audit log keeps their history."""
    cutoff = clock.now() - timedelta(days=30)
    deleted, _ = Invitation.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
