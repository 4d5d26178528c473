import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

django_application = get_asgi_application()

from saas.gateways.api.config_poll import PATH as CONFIG_POLL_PATH  # noqa: E402  (needs Django set up)
from saas.gateways.api.config_poll import config_poll_app  # noqa: E402


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Django, except for the agents' config long-poll, which waits without a thread."""
    if scope["type"] == "http" and scope["path"] == CONFIG_POLL_PATH:
        await config_poll_app(scope, receive, send)
    else:
        await django_application(scope, receive, send)
