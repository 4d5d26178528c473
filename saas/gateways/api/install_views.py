"""The self-host install, served to anyone (nothing here holds a secret; the token is the
user's): GET /install.sh, the agent wheel it downloads, and the gateway's Helm chart."""

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from infra.selfhost import artifacts


@require_GET
def install_script(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        artifacts.install_script(settings.PUBLIC_URL, settings.GATEWAY_AGENT_DIST_DIR),
        content_type="text/x-shellscript; charset=utf-8",
    )


@require_GET
def download(request: HttpRequest, name: str) -> HttpResponse | FileResponse:
    if name == artifacts.chart_name():
        response = HttpResponse(artifacts.gateway_chart(), content_type="application/gzip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    if name != artifacts.wheel_name():
        raise Http404("No such download.")
    return FileResponse(
        artifacts.agent_wheel(settings.GATEWAY_AGENT_DIST_DIR).open("rb"), as_attachment=True, filename=name
    )
