"""Email: one plain-text message from a template, as every app's mail tasks send them."""

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string


def send_templated_email(template: str, subject: str, to: list[str], context: dict[str, object]) -> None:
    """Render `template` with `context` (and the console's `public_url`) and send it to `to`."""
    send_mail(
        subject=subject,
        message=render_to_string(template, {"public_url": settings.PUBLIC_URL, **context}),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=to,
    )
