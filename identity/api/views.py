"""Thin views: parse with an input validator, authorize, call identity.services, format."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.client import client_ip
from core.api.validation import InputValidator, parse_id
from core.errors import NotFound
from identity import services
from tenants.authentication import token_auth_of
from tenants.models import User

from . import serializers as s
from .throttles import AccountThrottle, LinkThrottle, ResetRequestAddressThrottle, ResetRequestEmailThrottle


def _validated(validator_class: type[InputValidator], data: Any) -> dict[str, Any]:
    validator = validator_class(data=data)
    validator.is_valid(raise_exception=True)
    return dict(validator.validated_data)


def _ended(count: int) -> str:
    if count == 0:
        return "No other session was signed in."
    return f"{count} other session{'s' if count != 1 else ''} signed out."


# --- signed out: the emailed links -----------------------------------------------------------
# Like login, these take JSON only and no session: a cross-site form cannot post to them.


class _Public(GenericAPIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []


class PasswordResetRequestView(_Public):
    throttle_classes = [ResetRequestAddressThrottle, ResetRequestEmailThrottle]

    @extend_schema(
        request=s.PasswordResetRequestInput,
        responses={202: s.DetailOutput},
        summary="Ask for a password reset link",
        description="The same answer whether or not an account has the address; if one has, a "
        "single-use link to the console's reset page is emailed to it.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.PasswordResetRequestInput, request.data)
        services.request_password_reset(data["email"], ip_address=client_ip(request))
        minutes = settings.PASSWORD_RESET_TIMEOUT // 60
        detail = (
            f"If an account has the address {data['email']}, a link to reset its password is on its "
            f"way. The link works once, within {minutes} minutes."
        )
        return Response({"detail": detail}, status=status.HTTP_202_ACCEPTED)


class PasswordResetCheckView(_Public):
    throttle_classes = [LinkThrottle]

    @extend_schema(
        request=s.PasswordResetLinkInput,
        responses={200: s.ResetLinkOutput},
        summary="Check a password reset link",
        description="400 naming `token` when the link expired or was used.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.PasswordResetLinkInput, request.data)
        user = services.user_of_reset_link(data["uid"], data["token"])
        return Response({"email": user.email})


class PasswordResetView(_Public):
    throttle_classes = [LinkThrottle]

    @extend_schema(
        request=s.PasswordResetInput,
        responses={200: s.SessionsEndedOutput},
        summary="Set a new password through a reset link",
        description="Signs the account out everywhere and unlocks it. The link then stops working.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.PasswordResetInput, request.data)
        ended = services.reset_password(
            request._request, uid=data["uid"], token=data["token"], password=data["password"]
        )
        detail = "Your password is changed: log in with it."
        return Response({"detail": detail, "sessions_ended": ended})


class EmailVerifyView(_Public):
    throttle_classes = [LinkThrottle]

    @extend_schema(
        request=s.EmailTokenInput,
        responses={200: s.EmailVerifiedOutput},
        summary="Follow an email verification link",
        description="Verifies the address; for a change of address, the account's address "
        "becomes the new one.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.EmailTokenInput, request.data)
        user = services.verify_email(data["token"], ip_address=client_ip(request))
        return Response({"detail": f"{user.email} is verified.", "email": user.email})


# --- signed in: one's own account ------------------------------------------------------------


class _Account(GenericAPIView):
    """What a person does to their own account: signed in, never through an API token."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if token_auth_of(request):
            raise exceptions.PermissionDenied("Manage your account signed in, not with an API token.")

    def me(self) -> User:
        user = self.request.user
        assert isinstance(user, User)
        return user


class AccountView(_Account):
    @extend_schema(responses=s.AccountOutput, summary="My account: address, verification")
    def get(self, request: Request) -> Response:
        account = services.account_of(self.me())
        return Response(s.AccountOutput(account).data)


class PasswordChangeView(_Account):
    throttle_classes = [AccountThrottle]

    @extend_schema(
        request=s.PasswordChangeInput,
        responses={200: s.SessionsEndedOutput},
        summary="Change my password",
        description="The current password is required. This session goes on; every other ends.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.PasswordChangeInput, request.data)
        ended = services.change_password(
            request._request,
            self.me(),
            current_password=data["current_password"],
            new_password=data["new_password"],
        )
        return Response({"detail": f"Password changed. {_ended(ended)}", "sessions_ended": ended})


class EmailChangeView(_Account):
    throttle_classes = [AccountThrottle]

    @extend_schema(
        request=s.EmailChangeInput,
        responses={202: s.EmailChangeOutput},
        summary="Change my email address",
        description="The current password is required. A link goes to the new address; the "
        "account's address changes when it is followed.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.EmailChangeInput, request.data)
        address = services.request_email_change(
            self.me(), password=data["password"], email=data["email"], ip_address=client_ip(request)
        )
        detail = f"A link to confirm the change is on its way to {address}."
        return Response({"detail": detail, "pending_email": address}, status=status.HTTP_202_ACCEPTED)


class EmailVerificationView(_Account):
    throttle_classes = [AccountThrottle]

    @extend_schema(request=None, responses={202: s.DetailOutput}, summary="Send my verification link again")
    def post(self, request: Request) -> Response:
        user = self.me()
        services.send_email_verification(user)
        return Response(
            {"detail": f"A new link is on its way to {user.email}."}, status=status.HTTP_202_ACCEPTED
        )


class SessionListView(_Account):
    pagination_class = None  # a person has a few sessions: all of them, unpaged

    @extend_schema(responses=s.SessionOutput(many=True), summary="My active sessions")
    def get(self, request: Request) -> Response:
        found = services.sessions_of(request._request, self.me())
        return Response(s.SessionOutput(found, many=True).data)


class SessionDetailView(_Account):
    @extend_schema(responses={204: None}, summary="End one of my sessions")
    def delete(self, request: Request, session_id: str) -> Response:
        found = parse_id(session_id)
        if found is None:
            raise NotFound("No such session.")
        services.end_session(request._request, self.me(), found)
        return Response(status=status.HTTP_204_NO_CONTENT)


class EndOtherSessionsView(_Account):
    @extend_schema(request=None, responses={200: s.SessionsEndedOutput}, summary="End all my other sessions")
    def post(self, request: Request) -> Response:
        ended = services.end_other_sessions(request._request, self.me())
        return Response({"detail": _ended(ended), "sessions_ended": ended})
