"""The emails of identity, sent by Celery: a slow or failing mail server never holds up a
request, and the links' secrets are made here, never carried through the broker."""

from django.conf import settings

from core.celery import mail_task
from core.mail import send_templated_email
from tenants.models import User

from . import links


def _send(template: str, subject: str, to: str, context: dict[str, object]) -> None:
    send_templated_email(f"identity/{template}", subject, [to], context)


@mail_task("identity.send_password_reset_email")
def send_password_reset_email(user_id: int) -> None:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    _send(
        "password_reset_email.txt",
        "Reset your Gateway Cloud password",
        user.email,
        {"link": links.password_reset_link(user), "minutes": settings.PASSWORD_RESET_TIMEOUT // 60},
    )


@mail_task("identity.send_verification_email")
def send_verification_email(user_id: int, address: str) -> None:
    """The link that verifies `address`: the account's own, or the one it is changing to."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    change = address.lower() != user.email.lower()
    _send(
        "email_change_email.txt" if change else "verification_email.txt",
        "Confirm your new email address" if change else "Confirm your email address",
        address,
        {
            "link": links.email_link(user, address),
            "hours": settings.EMAIL_VERIFICATION_TTL_HOURS,
            "account": user.email,
            "address": address,
        },
    )


@mail_task("identity.send_email_changed_notice")
def send_email_changed_notice(old_address: str, new_address: str) -> None:
    """Tell the old address: if the change was not its owner's doing, they learn it here."""
    _send(
        "email_changed_notice.txt",
        "Your Gateway Cloud email address was changed",
        old_address,
        {"old": old_address, "new": new_address},
    )
