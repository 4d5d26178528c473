"""Thin views: parse with an input validator, authorize, call sso.services, format the output."""

from typing import Any

from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from core.api.client import client_ip
from core.api.validation import InputValidator
from tenants.api.scoping import OrganizationScopedViewSet
from tenants.roles import Scope

from .. import services
from ..models import SsoConfiguration
from . import serializers as s


def _validated(validator_class: type[InputValidator], data: Any) -> dict[str, Any]:
    validator = validator_class(data=data)
    validator.is_valid(raise_exception=True)
    return dict(validator.validated_data)


def _output(configuration: SsoConfiguration | None) -> dict[str, Any]:
    if configuration is None:
        return {
            "configured": False,
            "redirect_uri": services.callback_url(),
            "issuer": "",
            "client_id": "",
            "client_secret_set": False,
            "allowed_domains": [],
            "default_role": "viewer",
            "role_claim": "",
            "role_mapping": [],
            "sso_only": False,
            "updated_at": None,
        }
    return {
        "configured": True,
        "redirect_uri": services.callback_url(),
        "issuer": configuration.issuer,
        "client_id": configuration.client_id,
        "client_secret_set": bool(configuration.client_secret_ciphertext),
        "allowed_domains": services.domains_of(configuration),
        "default_role": configuration.default_role,
        "role_claim": configuration.role_claim,
        "role_mapping": configuration.role_mapping,
        "sso_only": configuration.sso_only,
        "updated_at": configuration.updated_at,
    }


# --- the organization's configuration (owners) -----------------------------------------------


class SsoConfigurationViewSet(OrganizationScopedViewSet):
    """The organization's single sign-on: owners only, and never with an API token (a token that
    could point sign-ins at another provider would hand out the organization)."""

    scope_map = {"retrieve": Scope.OWNER_WRITE, "update": Scope.OWNER_WRITE, "destroy": Scope.OWNER_WRITE}
    session_only_actions = frozenset({"retrieve", "update", "destroy"})

    @extend_schema(responses=s.SsoConfigurationOutput, summary="The organization's single sign-on")
    def retrieve(self, request: Request, org_slug: str) -> Response:
        return Response(s.SsoConfigurationOutput(_output(services.configuration_of(self.organization))).data)

    @extend_schema(
        request=s.SsoConfigurationInput,
        responses=s.SsoConfigurationOutput,
        summary="Set up or change single sign-on",
        description="The whole configuration at once. The provider's discovery document is read "
        "first: 400 naming `issuer` when it cannot be, or names another issuer. A domain another "
        "organization signs in with is refused (400 naming `allowed_domains`).",
    )
    def update(self, request: Request, org_slug: str) -> Response:
        data = _validated(s.SsoConfigurationInput, request.data)
        configuration = services.configure(
            self.actor,
            self.organization,
            issuer=data["issuer"],
            client_id=data["client_id"],
            client_secret=data.get("client_secret") or None,
            allowed_domains=data["allowed_domains"],
            default_role=data["default_role"],
            role_claim=data["role_claim"],
            role_mapping=[services.RoleRule(value=r["value"], role=r["role"]) for r in data["role_mapping"]],
            sso_only=data["sso_only"],
        )
        return Response(
            s.SsoConfigurationOutput(_output(services.configuration_of(configuration.organization))).data
        )

    @extend_schema(responses={204: None}, summary="Turn single sign-on off")
    def destroy(self, request: Request, org_slug: str) -> Response:
        services.remove(self.actor, self.organization)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- signing in (public) ---------------------------------------------------------------------
# Like login, these take JSON only and no session authentication: a cross-site form cannot post
# to them. The callback is bound to this browser by the state its session holds.


class SsoThrottle(SimpleRateThrottle):
    """Single sign-on steps from one client address."""

    scope = "sso"
    rate = "30/min"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class _Public(GenericAPIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [SsoThrottle]


class DiscoverView(_Public):
    @extend_schema(
        request=s.EmailInput,
        responses={200: s.DiscoveryOutput},
        summary="Which organization signs in with SSO for this email",
        description="Found by the email's domain; 404 when no organization's single sign-on allows it.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.EmailInput, request.data)
        organization = services.configuration_for_email(data["email"]).organization
        return Response({"organization_name": organization.name, "organization_slug": organization.slug})


class StartView(_Public):
    @extend_schema(
        request=s.EmailInput,
        responses={200: s.StartOutput},
        summary="Start signing in with SSO",
        description="The address of the provider's sign-in (authorization request with PKCE, state "
        "and nonce, kept in this browser's session). 404 when no organization's single sign-on "
        "allows the email's domain.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.EmailInput, request.data)
        return Response({"redirect_url": services.start_sign_in(request._request, data["email"])})


class CallbackView(_Public):
    @extend_schema(
        request=s.CallbackInput,
        responses={200: s.SignedInOutput, 202: s.LinkSentOutput},
        summary="Finish signing in with SSO",
        description="What the provider sent the browser back with (to the console's sign-in page). "
        "Verified (state of this browser, issuer, code, ID token's signature, iss, aud, exp and "
        "nonce), then signed in, joining the organization on a first sign-in. An account that "
        "existed before, met through the provider for the first time, is not signed in: 202, and "
        "its address is emailed a link that connects it (POST .../sso/link/). 400 saying why "
        "otherwise.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.CallbackInput, request.data)
        signed_in = services.complete_sign_in(
            request._request, state=data["state"], code=data["code"], error=data["error"], issuer=data["iss"]
        )
        if isinstance(signed_in, services.LinkSent):
            name = signed_in.organization.name
            return Response(
                {
                    "detail": f"Your account {signed_in.email} is not yet connected to {name}'s single "
                    f"sign-on. We emailed it a link: open it to connect them, then sign in with SSO again.",
                    "link_sent_to": signed_in.email,
                },
                status=status.HTTP_202_ACCEPTED,
            )
        organization = signed_in.organization
        return Response(
            {
                "email": signed_in.user.email,
                "organization": {
                    "name": organization.name,
                    "slug": organization.slug,
                    "role": signed_in.role,
                },
                "joined": signed_in.joined,
                "csrf_token": get_token(request._request),
            }
        )


class LinkView(_Public):
    @extend_schema(
        request=s.LinkInput,
        responses={200: s.LinkedOutput},
        summary="Connect an account to its organization's SSO",
        description="The token of the link emailed when an existing account first signed in through "
        "its organization's provider. Connects them once (the next SSO sign-in goes straight in); "
        "400 on the `token` field when it is not valid, expired, used, or no longer applies.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.LinkInput, request.data)
        organization = services.confirm_link(data["token"], client_ip(request._request))
        return Response(
            {
                "detail": f"Your account is connected to {organization.name}'s single sign-on: sign in with SSO.",
                "organization_name": organization.name,
            }
        )
