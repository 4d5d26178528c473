"""The email of single sign-on, sent by Celery: the link's token is made here, never carried
through the broker."""

from django.conf import settings

from core.celery import mail_task
from core.mail import send_templated_email
from tenants.models import User

from .models import SsoConfiguration


@mail_task("sso.send_link_email")
def send_link_email(user_id: int, configuration_id: int, subject: str) -> None:
    """Ask an existing account's owner to connect it to the organization's provider."""
    from .services import link_url  # services enqueue this task

    user = User.objects.filter(pk=user_id, is_active=True).first()
    configuration = (
        SsoConfiguration.objects.select_related("organization").filter(pk=configuration_id).first()
    )
    if user is None or configuration is None:
        return
    context = {
        "organization": configuration.organization.name,
        "issuer": configuration.issuer,
        "address": user.email,
        "link": link_url(configuration, subject, user),
        "minutes": settings.SSO_LINK_MINUTES,
    }
    send_templated_email(
        "sso/link_email.txt",
        f"Connect your account to {configuration.organization.name}'s single sign-on",
        [user.email],
        context,
    )
