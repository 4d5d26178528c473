"""The portal's emails, sent by Celery. Tasks take ids and the organization's schema; the links'
secrets are made here, but an invitation's (kept only as a digest) comes with its task."""

from django_tenants.utils import schema_context

from core.celery import mail_task
from core.mail import send_templated_email
from tenants.services import organization_by_slug


def _send(template: str, subject: str, to: str, context: dict[str, object]) -> None:
    send_templated_email(f"portal/email/{template}", subject, [to], context)


@mail_task("portal.send_portal_email")
def send_portal_email(schema_name: str, slug: str, developer_id: int, kind: str) -> None:
    """kind: "verify" (the sign-up's confirmation link) or "reset" (a password reset link)."""
    from . import developers
    from .models import PortalDeveloper
    from .products import portal_settings

    organization = organization_by_slug(slug)
    if organization is None or organization.schema_name != schema_name:
        return
    with schema_context(schema_name):
        developer = PortalDeveloper.objects.filter(pk=developer_id).first()
        if developer is None:
            return
        title = portal_settings().title
        base = developers.portal_url(organization)
        if kind == "verify":
            link = f"{base}verify/{developers.verification_token(organization, developer)}"
            _send(
                "verify.txt",
                f"Confirm your email for {title}",
                developer.email,
                {"link": link, "title": title},
            )
        else:
            link = developers.reset_link(organization, developer)
            _send(
                "reset.txt", f"Reset your {title} password", developer.email, {"link": link, "title": title}
            )


@mail_task("portal.send_portal_invitation")
def send_portal_invitation(slug: str, email: str, link: str) -> None:
    organization = organization_by_slug(slug)
    if organization is None:
        return
    with schema_context(organization.schema_name):
        from .products import portal_settings

        title = portal_settings().title
    _send(
        "invitation.txt",
        f"You are invited to {title}",
        email,
        {"link": link, "title": title, "organization": organization.name},
    )
