"""The self-host install, served to anyone (the script holds no secret; the token is the
user's): GET /install.sh and the agent wheel it downloads."""

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from infra.selfhost import artifacts


@require_GET
def install_script(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        artifacts.install_script(settings.PUBLIC_URL), content_type="text/x-shellscript; charset=utf-8"
    )


@require_GET
def agent_download(request: HttpRequest, name: str) -> FileResponse:
    if name != artifacts.wheel_name():
        raise Http404("No such download.")
    return FileResponse(artifacts.agent_wheel().open("rb"), as_attachment=True, filename=name)
