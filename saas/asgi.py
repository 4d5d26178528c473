import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

django_application = get_asgi_application()

from core.heap import freeze_startup_objects  # noqa: E402
from saas.gateways.api.config_poll import PATH as CONFIG_POLL_PATH  # noqa: E402  (needs Django set up)
from saas.gateways.api.config_poll import config_poll_app  # noqa: E402
from saas.gateways.api.heartbeat import PATH as HEARTBEAT_PATH  # noqa: E402
from saas.gateways.api.heartbeat import heartbeat_app  # noqa: E402
from saas.metering.api.intake import PATH as USAGE_PATH  # noqa: E402
from saas.metering.api.intake import usage_intake_app  # noqa: E402
from saas.metering.api.report import PATH as REPORT_PATH  # noqa: E402
from saas.metering.api.report import report_app  # noqa: E402

freeze_startup_objects()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Django, except for what every gateway calls all the time (the config long-poll,
    reports, heartbeats, usage intake), which runs without a thread of its own."""
    if scope["type"] == "http" and scope["path"] == CONFIG_POLL_PATH:
        await config_poll_app(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] == REPORT_PATH:
        await report_app(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] == HEARTBEAT_PATH:
        await heartbeat_app(scope, receive, send)
    elif scope["type"] == "http" and scope["path"] == USAGE_PATH:
        await usage_intake_app(scope, receive, send)
    else:
        await django_application(scope, receive, send)
