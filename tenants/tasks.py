"""Background jobs of the tenants app."""

from datetime import timedelta
from smtplib import SMTPException

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from core import clock
from core.celery import TenantTask, app

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
        "public_url": settings.PUBLIC_URL,
    }
    send_mail(
        subject=f"You are invited to {invitation.organization.name}",
        message=render_to_string("tenants/invitation_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[invitation.email],
    )


@app.task(name="tenants.purge_stale_invitations")
def purge_stale_invitations() -> int:
    """Invitations that ended (expired, revoked or accepted) over 30 days ago are deleted; the
    audit log keeps their history."""
    cutoff = clock.now() - timedelta(days=30)
    deleted, _ = Invitation.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
