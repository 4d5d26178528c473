import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

django_application = get_asgi_application()

from core.heap import freeze_startup_objects  # noqa: E402
from saas.gateways.api import config_poll, heartbeat, register  # noqa: E402  (needs Django set up)
from saas.metering.api import intake, report  # noqa: E402

freeze_startup_objects()

# What every gateway calls, served without a thread of its own: the config long-poll, reports,
# heartbeats, usage intake, and registration (a fleet starting at once).
AGENT_ENDPOINTS = {
    config_poll.PATH: config_poll.config_poll_app,
    report.PATH: report.report_app,
    heartbeat.PATH: heartbeat.heartbeat_app,
    intake.PATH: intake.usage_intake_app,
    register.PATH: register.register_app,
}


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Django, except for the agent endpoints, found with or without a trailing slash."""
    if scope["type"] == "http":
        path = scope["path"]
        endpoint = AGENT_ENDPOINTS.get(path[:-1] if path.endswith("/") else path)
        if endpoint is not None:
            await endpoint(scope, receive, send)
            return
    await django_application(scope, receive, send)
