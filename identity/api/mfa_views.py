"""Two-factor sign-in: one's own enrolment, recovery codes and turning it off (signed in, never
with an API token); the sign-in's second step (after a password answered `mfa_required`); an
organization's requirement (owners). Thin: parse, authorize, call identity.mfa or services."""

from typing import Any, NoReturn

from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from identity import mfa, services
from tenants import services as tenant_services
from tenants.api.scoping import OrganizationScopedViewSet
from tenants.api.serializers import MeOutput
from tenants.roles import Scope

from . import serializers as s
from .throttles import AccountThrottle, SecondStepThrottle
from .views import _Account, _validated

RECOVERY_CODES_SAID = (
    "Save these recovery codes somewhere safe: each signs you in once if you lose your "
    "authenticator app. They are not shown again."
)


class MfaStatusView(_Account):
    @extend_schema(responses=s.MfaStatusOutput, summary="My two-factor sign-in")
    def get(self, request: Request) -> Response:
        status = mfa.status_of(self.me())
        return Response(
            s.MfaStatusOutput(
                {
                    "enabled": status.enabled,
                    "enabled_at": status.enabled_at,
                    "recovery_codes_left": status.recovery_codes_left,
                    "required_by": status.required_by,
                    "setup_required": status.setup_required,
                }
            ).data
        )


class MfaSetupView(_Account):
    throttle_classes = [AccountThrottle]

    @extend_schema(
        request=None,
        responses={200: s.MfaEnrolmentOutput},
        summary="Start setting up two-factor sign-in",
        description="A new secret for an authenticator app, as a QR code and as text. Nothing "
        "changes until `auth/mfa/confirm/` gets a first code from the app.",
    )
    def post(self, request: Request) -> Response:
        enrolment = mfa.start_enrolment(self.me())
        return Response(s.MfaEnrolmentOutput(enrolment).data)


class MfaConfirmView(_Account):
    throttle_classes = [AccountThrottle]

    @extend_schema(
        request=s.MfaCodeInput,
        responses={200: s.RecoveryCodesOutput},
        summary="Turn two-factor sign-in on with a first code",
        description="The answer holds the recovery codes, shown this once.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.MfaCodeInput, request.data)
        codes = mfa.confirm_enrolment(request._request, self.me(), code=data["code"])
        detail = f"Two-factor sign-in is on. {RECOVERY_CODES_SAID}"
        return Response({"detail": detail, "recovery_codes": codes})


class MfaDisableView(_Account):
    throttle_classes = [AccountThrottle]

    @extend_schema(
        request=s.MfaDisableInput,
        responses={200: s.DetailOutput},
        summary="Turn two-factor sign-in off",
        description="The password and a code (from the app, or a recovery code) are required. "
        "A member of an organization that requires it must set it up again before anything else.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.MfaDisableInput, request.data)
        mfa.disable(request._request, self.me(), password=data["password"], code=data["code"])
        return Response({"detail": "Two-factor sign-in is off."})


class RecoveryCodesView(_Account):
    throttle_classes = [AccountThrottle]

    @extend_schema(
        request=s.MfaCodeInput,
        responses={200: s.RecoveryCodesOutput},
        summary="New recovery codes",
        description="A code is required. The old recovery codes stop working.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.MfaCodeInput, request.data)
        codes = mfa.regenerate_recovery_codes(request._request, self.me(), code=data["code"])
        return Response(
            {
                "detail": f"New recovery codes: the old ones no longer work. {RECOVERY_CODES_SAID}",
                "recovery_codes": codes,
            }
        )


class MfaVerifyView(GenericAPIView):
    """Like login: JSON only and no session authentication, so a cross-site form cannot post
    to it; the session it reads is the one the password step began."""

    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [SecondStepThrottle]

    @extend_schema(
        request=s.MfaCodeInput,
        responses={200: MeOutput},
        summary="Log in: the second step",
        description="After `auth/login/` answered `mfa_required`: a code from the authenticator "
        "app or a recovery code (each works once) opens the session. Wrong codes count toward "
        "the lockout like wrong passwords (429 saying until when). 400 without a password "
        "given in the last 5 minutes.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.MfaCodeInput, request.data)
        user = services.verify_sign_in(request._request, code=data["code"])
        organizations = tenant_services.organizations_of(user)
        body = MeOutput(user, context={"organizations": organizations}).data
        return Response({**body, "csrf_token": get_token(request._request)})

    def throttled(self, request: Request, wait: float) -> NoReturn:
        # A lock outlasts the throttle's minute: say so, and until when, rather than "throttled".
        services.raise_if_second_step_locked(request._request)
        super().throttled(request, wait)


class OrganizationMfaPolicyViewSet(OrganizationScopedViewSet):
    """Whether the organization requires two-factor sign-in: any member reads it, owners set it,
    never with an API token."""

    scope_map = {"retrieve": Scope.ORG_READ, "update": Scope.OWNER_WRITE}
    session_only_actions = frozenset({"update"})

    def _output(self) -> dict[str, Any]:
        policy = mfa.policy_of(self.organization)
        return dict(s.MfaPolicyOutput(policy).data)

    @extend_schema(responses=s.MfaPolicyOutput, summary="Whether two-factor sign-in is required")
    def retrieve(self, request: Request, org_slug: str) -> Response:
        return Response(self._output())

    @extend_schema(
        request=s.MfaPolicyInput,
        responses=s.MfaPolicyOutput,
        summary="Require two-factor sign-in of every member (owners)",
        description="Owners must have it on themselves to require it (400 naming `require_mfa`). "
        "Members without it set it up at their next sign-in, before anything else.",
    )
    def update(self, request: Request, org_slug: str) -> Response:
        data = _validated(s.MfaPolicyInput, request.data)
        mfa.set_requirement(self.actor, self.organization, require_mfa=data["require_mfa"])
        return Response(self._output())
