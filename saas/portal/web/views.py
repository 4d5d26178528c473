"""The developer portal's pages, rendered on the server: fast on a phone, usable without script
(the API documentation's try-it panel apart). Each view parses the form, calls a service of
saas.portal and renders; errors of a form show beside its fields."""

from __future__ import annotations

import copy
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator
from django.views.decorators.http import require_http_methods
from markdown_it import MarkdownIt

from core.api.validation import parse_id
from core.errors import Forbidden, InvalidInput

from .. import applications, developers
from ..models import (
    ApiProduct,
    Application,
    AuthType,
    DeveloperStatus,
    ProductPlan,
    ProductVersion,
    SignupMode,
)
from .access import PortalRequest, clear_session_cookie, portal_page, redirect_to, set_session_cookie

# CommonMark without raw HTML: a product's description cannot put script or markup in the page.
_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False})
EXCERPT_WORDS = 30


def excerpt(markdown: str, words: int = EXCERPT_WORDS) -> str:
    """A Markdown text's words as a reader sees them, without its markup (emphasis, links,
    headings, lists), images and code blocks left out; cut after `words` words. Plain text: the
    template escapes it."""
    parts: list[str] = []
    for token in _MARKDOWN.parse(markdown):
        if token.type != "inline":  # code blocks' text is in blocks of their own
            continue
        for child in token.children or []:
            if child.type in ("text", "code_inline"):
                parts.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
        parts.append(" ")  # between a heading, a paragraph, a list's items
    return Truncator(" ".join("".join(parts).split())).words(words)


def _page(
    request: HttpRequest, portal: PortalRequest, template: str, status: int = 200, **context: Any
) -> HttpResponse:
    return render(
        request,
        f"portal/{template}",
        {
            "portal": portal,
            "settings": portal.settings,
            "base": portal.base,
            "developer": portal.signed_in.developer if portal.signed_in else None,
            "csrf": portal.csrf,
            **context,
        },
        status=status,
    )


def _errors(exc: InvalidInput | Forbidden, shown: tuple[str, ...] = ()) -> dict[str, str]:
    """Messages by field for the page's fields (`shown`); any other's goes at the form's top."""
    if isinstance(exc, InvalidInput) and exc.errors:
        errors = {field: " ".join(messages) for field, messages in exc.errors.items()}
        others = [message for field, message in errors.items() if field not in shown]
        if others:
            errors["form"] = " ".join(others)
        return errors
    return {"form": exc.detail}


def _published() -> Any:
    return ApiProduct.objects.filter(published=True).prefetch_related("versions", "plans")


def _product(slug: str) -> ApiProduct:
    product = _published().filter(slug=slug).first()
    if product is None:
        raise Http404
    return product


def plan_limit(plan: ProductPlan) -> str:
    if not plan.limit_count or not plan.time_window:
        return "No limit"
    unit = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(
        plan.time_window, f"{plan.time_window} s"
    )
    return f"{plan.limit_count:,} calls per {unit}"


# --- browsing ----------------------------------------------------------------------------------


@require_http_methods(["GET"])
@portal_page()
def home(request: HttpRequest, portal: PortalRequest) -> HttpResponse:
    products = [(product, excerpt(product.description)) for product in _published()]
    return _page(request, portal, "home.html", products=products)


@require_http_methods(["GET"])
@portal_page()
def product(request: HttpRequest, portal: PortalRequest, slug: str) -> HttpResponse:
    found = _product(slug)
    plans = [(plan, plan_limit(plan)) for plan in found.plans.all()]
    return _page(
        request,
        portal,
        "product.html",
        product=found,
        description=_MARKDOWN.render(found.description),
        versions=list(found.versions.all()),
        plans=plans,
    )


def _version(product: ApiProduct, name: str) -> ProductVersion:
    version = product.versions.filter(name=name).first()
    if version is None or version.openapi is None:
        raise Http404
    return version


@require_http_methods(["GET"])
@portal_page()
def docs(request: HttpRequest, portal: PortalRequest, slug: str, version: str) -> HttpResponse:
    found = _product(slug)
    return _page(request, portal, "docs.html", product=found, version=_version(found, version))


def documentation(version: ProductVersion) -> dict[str, Any]:
    """The stored OpenAPI document as developers call it: the gateway's address as its server,
    and the product's authentication as its only security scheme (the upstream's own schemes are
    not what the gateway asks for)."""
    document = copy.deepcopy(version.openapi or {})
    if version.gateway_url:
        servers = document.get("servers") or [{"url": "/"}]
        first = servers[0].get("url", "/") if isinstance(servers[0], dict) else "/"
        path = first if first.startswith("/") else "/" + first.split("://", 1)[-1].partition("/")[2]
        document["servers"] = [{"url": version.gateway_url + (path if path != "/" else "")}]
    components = document.setdefault("components", {})
    if version.product.auth_type == AuthType.JWT_AUTH:
        scheme = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    else:
        scheme = {"type": "apiKey", "in": "header", "name": "apikey"}
    components["securitySchemes"] = {"gateway": scheme}
    document["security"] = [{"gateway": []}]
    for item in (document.get("paths") or {}).values():
        if isinstance(item, dict):
            for operation in item.values():
                if isinstance(operation, dict):
                    operation.pop("security", None)
    return document


@require_http_methods(["GET"])
@portal_page()
def openapi_document(request: HttpRequest, portal: PortalRequest, slug: str, version: str) -> HttpResponse:
    return JsonResponse(documentation(_version(_product(slug), version)))


# --- sign-up, sign-in, recovery ----------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@portal_page()
def sign_up(request: HttpRequest, portal: PortalRequest) -> HttpResponse:
    invitation = request.POST.get("invitation") or request.GET.get("invitation", "")
    form = {"email": request.POST.get("email", ""), "name": request.POST.get("name", "")}
    if request.method == "POST":
        try:
            developers.sign_up(
                portal.organization,
                email=form["email"],
                name=form["name"],
                password=request.POST.get("password", ""),
                invitation=invitation or None,
                ip_address=portal.ip_address,
            )
        except InvalidInput as exc:
            return _page(
                request,
                portal,
                "signup.html",
                400,
                form=form,
                errors=_errors(exc, ("email", "password", "invitation")),
                invitation=invitation,
            )
        return _page(request, portal, "check_email.html", email=form["email"])
    invitation_only = portal.settings.signup_mode == SignupMode.INVITATION
    return _page(
        request, portal, "signup.html", form=form, invitation=invitation, invitation_only=invitation_only
    )


@require_http_methods(["GET"])
@portal_page()
def verify(request: HttpRequest, portal: PortalRequest, token: str) -> HttpResponse:
    try:
        developer = developers.verify_email(portal.organization, token, ip_address=portal.ip_address)
    except InvalidInput as exc:
        return _page(
            request, portal, "message.html", 400, title="Link not valid", message=exc.errors["token"][0]
        )
    pending = developer.status == DeveloperStatus.PENDING
    return _page(
        request,
        portal,
        "message.html",
        title="Email confirmed",
        message=(
            "Thank you. The team will review your sign-up; you can sign in meanwhile."
            if pending
            else "Thank you: you can sign in now."
        ),
        link=("signin", "Sign in"),
    )


@require_http_methods(["GET", "POST"])
@portal_page()
def sign_in(request: HttpRequest, portal: PortalRequest) -> HttpResponse:
    next_page = request.POST.get("next") or request.GET.get("next", "")
    if not _own_page(next_page, portal):
        next_page = f"{portal.base}apps"
    email = request.POST.get("email", "")
    if request.method == "POST":
        try:
            signed_in = developers.sign_in(
                portal.organization,
                email=email,
                password=request.POST.get("password", ""),
                ip_address=portal.ip_address,
                user_agent=request.headers.get("User-Agent", ""),
            )
        except (InvalidInput, Forbidden) as exc:
            status = 400 if isinstance(exc, InvalidInput) else 403
            return _page(
                request,
                portal,
                "signin.html",
                status,
                email=email,
                next=next_page,
                errors=_errors(exc, ("password",)),
            )
        response = HttpResponse(status=303)
        response["Location"] = next_page
        assert signed_in.cookie is not None
        set_session_cookie(response, portal, signed_in.cookie, request)
        return response
    return _page(request, portal, "signin.html", email=email, next=next_page)


def _own_page(path: str, portal: PortalRequest) -> bool:
    """Whether `path` is a page of this portal, safe to go to after sign-in (no other host, no
    backslash or control character a browser would read as one)."""
    return (
        path.startswith(portal.base)
        and url_has_allowed_host_and_scheme(path, allowed_hosts=None)
        and not any(c == "\\" or ord(c) < 32 or ord(c) == 127 for c in path)
        and "//" not in path
    )


@require_http_methods(["POST"])
@portal_page()
def sign_out(request: HttpRequest, portal: PortalRequest) -> HttpResponse:
    if portal.signed_in:
        developers.sign_out(portal.signed_in.session)
    response = redirect_to(portal, "")
    clear_session_cookie(response, portal)
    return response


@require_http_methods(["GET", "POST"])
@portal_page()
def forgot(request: HttpRequest, portal: PortalRequest) -> HttpResponse:
    if request.method == "POST":
        developers.request_password_reset(portal.organization, request.POST.get("email", ""))
        return _page(
            request,
            portal,
            "message.html",
            title="Check your email",
            message="If an account has this address, a link to choose a new password is on its way.",
        )
    return _page(request, portal, "forgot.html")


@require_http_methods(["GET", "POST"])
@portal_page()
def reset(request: HttpRequest, portal: PortalRequest, uid: str, token: str) -> HttpResponse:
    if developers.developer_of_reset(uid, token) is None:
        return _page(
            request,
            portal,
            "message.html",
            400,
            title="Link not valid",
            message="This link has expired or was used already: ask for a new one.",
            link=("forgot", "Reset your password"),
        )
    if request.method == "POST":
        try:
            developers.reset_password(
                portal.organization,
                uid=uid,
                token=token,
                password=request.POST.get("password", ""),
                ip_address=portal.ip_address,
            )
        except InvalidInput as exc:
            return _page(request, portal, "reset.html", 400, errors=_errors(exc, ("password",)))
        return _page(
            request,
            portal,
            "message.html",
            title="Password changed",
            message="Sign in with your new password.",
            link=("signin", "Sign in"),
        )
    return _page(request, portal, "reset.html")


# --- applications ------------------------------------------------------------------------------


def _applications(portal: PortalRequest) -> Any:
    assert portal.signed_in is not None
    return Application.objects.filter(developer=portal.signed_in.developer).select_related("developer")


@require_http_methods(["GET", "POST"])
@portal_page(signed_in=True)
def apps(request: HttpRequest, portal: PortalRequest) -> HttpResponse:
    assert portal.signed_in is not None
    form = {"name": request.POST.get("name", ""), "description": request.POST.get("description", "")}
    if request.method == "POST":
        try:
            application, key = applications.create_application(
                portal.author, portal.signed_in.developer, name=form["name"], description=form["description"]
            )
        except (InvalidInput, Forbidden) as exc:
            return _page(
                request,
                portal,
                "apps.html",
                400,
                apps=list(_applications(portal)),
                form=form,
                errors=_errors(exc, ("name",)),
            )
        return _app_page(request, portal, application, new_key=key, status=201)
    return _page(request, portal, "apps.html", apps=list(_applications(portal)), form=form)


def _app_page(
    request: HttpRequest,
    portal: PortalRequest,
    application: Application,
    *,
    new_key: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    notice: str = "",
) -> HttpResponse:
    subscriptions = list(application.subscriptions.select_related("version__product", "plan"))
    subscribed = {s.version_id for s in subscriptions}
    offers = [
        (
            product,
            [
                v
                for v in product.versions.all()
                if v.status == ProductVersion.ACTIVE and v.id not in subscribed
            ],
            [(plan, plan_limit(plan)) for plan in product.plans.all()],
        )
        for product in _published()
    ]
    return _page(
        request,
        portal,
        "app.html",
        status,
        app=application,
        new_key=new_key,
        subscriptions=[(s, plan_limit(s.plan)) for s in subscriptions],
        offers=[offer for offer in offers if offer[1] and offer[2]],
        errors=errors or {},
        notice=notice,
        algorithms=applications.JWT_ALGORITHMS,
    )


def _app(portal: PortalRequest, app_id: str) -> Application:
    pk = parse_id(app_id)
    application = _applications(portal).filter(pk=pk).first() if pk is not None else None
    if application is None:
        raise Http404
    return application


@require_http_methods(["GET", "POST"])
@portal_page(signed_in=True)
def app(request: HttpRequest, portal: PortalRequest, app_id: str) -> HttpResponse:
    application = _app(portal, app_id)
    if request.method == "GET":
        return _app_page(request, portal, application)
    what = request.POST.get("action", "")
    try:
        if what == "rotate":
            key = applications.rotate_key(portal.author, application)
            return _app_page(
                request,
                portal,
                application,
                new_key=key,
                notice="A new key is in use; the old one no longer works.",
            )
        if what == "subscribe":
            version = (
                ProductVersion.objects.filter(pk=_int(request.POST.get("version")), product__published=True)
                .select_related("product")
                .first()
            )
            plan = ProductPlan.objects.filter(pk=_int(request.POST.get("plan"))).first()
            if version is None or plan is None:
                raise InvalidInput.field("subscribe", "Choose a product version and a plan.")
            applications.subscribe(portal.author, application, version, plan)
            return _app_page(request, portal, application, notice=f"Subscribed to {version}.")
        if what == "unsubscribe":
            subscription = application.subscriptions.filter(pk=_int(request.POST.get("subscription"))).first()
            if subscription is None:
                raise Http404
            applications.unsubscribe(portal.author, subscription)
            return _app_page(request, portal, application, notice="Unsubscribed.")
        if what == "jwt":
            applications.register_jwt_key(
                portal.author,
                application,
                algorithm=request.POST.get("algorithm", ""),
                public_key=request.POST.get("public_key", ""),
            )
            return _app_page(request, portal, application, notice="Public key registered.")
        if what == "delete":
            applications.delete_application(portal.author, application)
            return redirect_to(portal, "apps")
    except (InvalidInput, Forbidden) as exc:
        return _app_page(
            request,
            portal,
            application,
            errors=_errors(exc, ("public_key", "subscribe", "version")),
            status=400,
        )
    return _app_page(request, portal, application, errors={"form": "Unknown action."}, status=400)


def _int(text: str | None) -> int:
    return parse_id(text or "") or 0


@require_http_methods(["GET"])
@portal_page(signed_in=True)
def usage(request: HttpRequest, portal: PortalRequest) -> HttpResponse:
    assert portal.signed_in is not None
    rows = applications.usage_of(portal.signed_in.developer)
    limits = [
        (
            application,
            [
                (s, plan_limit(s.plan))
                for s in application.subscriptions.select_related("version__product", "plan")
            ],
        )
        for application in _applications(portal)
    ]
    return _page(request, portal, "usage.html", rows=rows, limits=limits, total=sum(r.calls for r in rows))
