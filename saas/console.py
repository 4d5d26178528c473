"""The web console: a single-page application (frontend/, React) that talks to the API with the
session cookie. Every /console/ path answers its index.html; the browser's router takes over."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie  # the console sends it back with every write
def console(request: HttpRequest, path: str = "") -> HttpResponse:
    index = settings.CONSOLE_DIST / "index.html"
    if not index.is_file():
        return HttpResponse(
            "The console is not built: run `make console`.", status=503, content_type="text/plain"
        )
    return HttpResponse(index.read_bytes(), content_type="text/html; charset=utf-8")
