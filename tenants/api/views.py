"""Thin views: parse with an input validator, authorize, call a service, format the output."""

from typing import Any, NoReturn

from django.middleware.csrf import get_token
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, mixins, status
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from core import clock
from core.api.client import client_ip
from core.api.list_queries import ListQuery
from identity import services as identity
from identity.api.serializers import MfaRequiredOutput
from tenants import services
from tenants.audit import Actor
from tenants.authentication import token_auth_of
from tenants.models import ApiToken, AuditEntry, Invitation, Membership, Organization, User
from tenants.roles import Scope

from . import serializers as s
from .scoping import OrganizationScopedViewSet
from .throttles import AuthAccountThrottle, AuthAttemptThrottle, SignupThrottle


def _validated(validator_class: type[s.InputValidator], data: Any) -> dict[str, Any]:
    validator = validator_class(data=data)
    validator.is_valid(raise_exception=True)
    return dict(validator.validated_data)


def _session_user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


# --- accounts --------------------------------------------------------------------------------
# Signup and login take JSON only (no form parser), so a cross-site HTML form cannot post to
# them: that is what protects them from login CSRF without a token round trip.


class SignupView(GenericAPIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [SignupThrottle]

    @extend_schema(request=s.SignupInput, responses={201: s.MeOutput}, summary="Sign up")
    def post(self, request: Request) -> Response:
        data = _validated(s.SignupInput, request.data)
        organization_name = data.get("organization_name") or f"{data['email'].split('@')[0]}'s organization"
        user, organization = services.sign_up(
            email=data["email"],
            password=data["password"],
            name=data["name"],
            organization_name=organization_name,
            ip_address=client_ip(request),
        )
        identity.complete_sign_in(request._request, user, method="signup")
        identity.send_email_verification(user)
        body = s.MeOutput(user, context={"organizations": [(organization, "owner")]}).data
        return Response({**body, "csrf_token": get_token(request._request)}, status=status.HTTP_201_CREATED)


class LoginView(GenericAPIView):
    permission_classes = [AllowAny]
    authentication_classes: list[type] = []
    throttle_classes = [AuthAttemptThrottle, AuthAccountThrottle]

    @extend_schema(
        request=s.LoginInput,
        responses={
            200: PolymorphicProxySerializer(
                component_name="LoginOutput",
                serializers=[s.MeOutput, MfaRequiredOutput],
                resource_type_field_name=None,
            )
        },
        summary="Log in (session)",
        description="Repeated failures lock the account and the address for a while: 429 saying "
        "until when (docs/identity.md). With two-factor sign-in on, a right password answers "
        "`mfa_required` and `auth/mfa/verify/` completes the sign-in with a code.",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.LoginInput, request.data)
        user = identity.sign_in(request._request, email=data["email"], password=data["password"])
        if user is None:  # the password was right; the second factor is due
            return Response({"mfa_required": True, "detail": identity.MFA_CODE_NEEDED})
        body = s.MeOutput(user, context={"organizations": services.organizations_of(user)}).data
        return Response({**body, "csrf_token": get_token(request._request)})

    def throttled(self, request: Request, wait: float) -> NoReturn:
        # A lock outlasts the throttle's minute: say so, and until when, rather than "throttled".
        email = request.data.get("email") if isinstance(request.data, dict) else None
        if isinstance(email, str):
            identity.raise_if_locked(request._request, email)
        super().throttled(request, wait)


class LogoutView(GenericAPIView):
    @extend_schema(request=None, responses={204: None}, summary="Log out")
    def post(self, request: Request) -> Response:
        identity.sign_out(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(GenericAPIView):
    @extend_schema(responses=s.MeOutput, summary="The caller and their organizations")
    def get(self, request: Request) -> Response:
        user = _session_user(request)
        organizations = services.organizations_of(user)
        token_auth = token_auth_of(request)
        if token_auth:
            organizations = [(o, r) for o, r in organizations if o.id == token_auth.token.organization_id]
        return Response(s.MeOutput(user, context={"organizations": organizations}).data)


class CsrfView(GenericAPIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={200: None}, summary="Set the CSRF cookie for browser sessions")
    def get(self, request: Request) -> Response:
        return Response({"csrf_token": get_token(request._request)})


# --- organizations ---------------------------------------------------------------------------


class OrganizationListView(GenericAPIView):
    serializer_class = s.OrganizationOutput

    @extend_schema(responses=s.OrganizationOutput(many=True), summary="My organizations")
    def get(self, request: Request) -> Response:
        pairs = services.organizations_of(_session_user(request))
        token_auth = token_auth_of(request)
        if token_auth:
            pairs = [(o, r) for o, r in pairs if o.id == token_auth.token.organization_id]
        organizations = Organization.objects.filter(id__in=[org.id for org, _ in pairs]).order_by(
            "name", "id"
        )
        page = self.paginate_queryset(organizations)
        roles = {org.id: role for org, role in pairs}
        data = s.OrganizationOutput(page, many=True, context={"roles": roles}).data
        return self.get_paginated_response(data)

    @extend_schema(request=s.OrganizationCreateInput, responses={201: s.OrganizationOutput})
    def post(self, request: Request) -> Response:
        if token_auth_of(request):
            raise exceptions.PermissionDenied(
                "API tokens belong to one organization and cannot create others."
            )
        data = _validated(s.OrganizationCreateInput, request.data)
        user = _session_user(request)
        organization = services.create_organization(
            Actor(user=user, ip_address=client_ip(request)), name=data["name"], slug=data.get("slug")
        )
        output = s.OrganizationOutput(organization, context={"roles": {organization.id: "owner"}})
        return Response(output.data, status=status.HTTP_201_CREATED)


class OrganizationViewSet(OrganizationScopedViewSet):
    scope_map = {"retrieve": Scope.ORG_READ, "partial_update": Scope.ORG_WRITE}

    def _output(self, organization: Organization) -> dict[str, Any]:
        return dict(
            s.OrganizationOutput(
                organization, context={"roles": {organization.id: self.membership.role}}
            ).data
        )

    @extend_schema(responses=s.OrganizationOutput)
    def retrieve(self, request: Request, org_slug: str) -> Response:
        return Response(self._output(self.organization))

    @extend_schema(request=s.OrganizationUpdateInput, responses=s.OrganizationOutput, summary="Rename")
    def partial_update(self, request: Request, org_slug: str) -> Response:
        data = _validated(s.OrganizationUpdateInput, request.data)
        organization = services.update_organization(
            self.actor, self.organization, name=data.get("name"), slug=data.get("slug")
        )
        return Response(self._output(organization))


# --- members ---------------------------------------------------------------------------------

MEMBERS = ListQuery(
    search=("user__email", "user__name"),
    ordering={
        "id": "id",
        "email": "user__email",
        "name": "user__name",
        "role": "role",
        "created_at": "created_at",
    },
    default="id",
    search_help="email or name",
)


class MemberViewSet(OrganizationScopedViewSet):
    serializer_class = s.MembershipOutput
    scope_map = {
        "list": Scope.MEMBER_READ,
        "partial_update": Scope.MEMBER_WRITE,
        "destroy": Scope.MEMBER_WRITE,
        "leave": Scope.ORG_READ,
    }
    session_only_actions = frozenset({"leave"})

    queryset = Membership.objects.select_related("user").order_by("id")
    list_query = MEMBERS

    @extend_schema(parameters=MEMBERS.parameters(), responses=s.MembershipOutput(many=True))
    def list(self, request: Request, org_slug: str) -> Response:
        return self.list_page(self.get_queryset(), lambda page: s.MembershipOutput(page, many=True).data)

    @extend_schema(
        request=s.MemberUpdateInput, responses=s.MembershipOutput, summary="Change a member's role"
    )
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        data = _validated(s.MemberUpdateInput, request.data)
        membership = self.get_object()
        membership = services.change_member_role(
            self.actor, self.organization, membership, data["role"], self.scopes
        )
        return Response(s.MembershipOutput(membership).data)

    @extend_schema(responses={204: None}, summary="Remove a member")
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        services.remove_member(self.actor, self.organization, self.get_object(), self.scopes)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None}, summary="Leave the organization")
    @action(detail=False, methods=["post"])
    def leave(self, request: Request, org_slug: str) -> Response:
        services.leave_organization(self.actor, self.organization)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- invitations -----------------------------------------------------------------------------

INVITATIONS = ListQuery(
    search=("email",),
    ordering={
        "id": "id",
        "email": "email",
        "role": "role",
        "created_at": "created_at",
        "expires_at": "expires_at",
    },
    default="-id",
)


class InvitationViewSet(OrganizationScopedViewSet):
    serializer_class = s.InvitationOutput
    scope_map = {
        "list": Scope.MEMBER_WRITE,
        "create": Scope.MEMBER_WRITE,
        "destroy": Scope.MEMBER_WRITE,
        "resend": Scope.MEMBER_WRITE,
    }

    queryset = Invitation.objects.select_related("invited_by")
    list_query = INVITATIONS

    @extend_schema(
        parameters=[
            *INVITATIONS.parameters(),
            OpenApiParameter(
                "status", str, enum=["pending"], description="Only invitations not yet answered"
            ),
        ],
        responses=s.InvitationOutput(many=True),
    )
    def list(self, request: Request, org_slug: str) -> Response:
        queryset = self.get_queryset()
        if request.query_params.get("status") == "pending":
            queryset = queryset.filter(
                accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=clock.now()
            )
        return self.list_page(queryset, lambda page: s.InvitationOutput(page, many=True).data)

    @extend_schema(request=s.InvitationCreateInput, responses={201: s.InvitationOutput}, summary="Invite")
    def create(self, request: Request, org_slug: str) -> Response:
        data = _validated(s.InvitationCreateInput, request.data)
        invitation = services.invite_member(
            self.actor, self.organization, email=data["email"], role=data["role"], inviter_scopes=self.scopes
        )
        return Response(s.InvitationOutput(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None}, summary="Revoke an invitation")
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        services.revoke_invitation(self.actor, self.organization, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=s.InvitationOutput, summary="Send a fresh link")
    @action(detail=True, methods=["post"])
    def resend(self, request: Request, org_slug: str, pk: str) -> Response:
        invitation = services.resend_invitation(self.actor, self.organization, self.get_object())
        return Response(s.InvitationOutput(invitation).data)


class InvitationLookupView(GenericAPIView):
    permission_classes = [AllowAny]
    throttle_classes = [AuthAttemptThrottle]

    @extend_schema(
        request=s.InvitationTokenInput, responses=s.InvitationPreviewOutput, summary="Read an invitation"
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.InvitationTokenInput, request.data)
        return Response(s.InvitationPreviewOutput(services.find_invitation(data["token"])).data)


class InvitationAcceptView(GenericAPIView):
    permission_classes = [AllowAny]
    throttle_classes = [AuthAttemptThrottle]

    @extend_schema(
        request=s.InvitationAcceptInput,
        responses={200: s.MeOutput},
        summary="Accept an invitation (signing up on the way when not logged in)",
    )
    def post(self, request: Request) -> Response:
        data = _validated(s.InvitationAcceptInput, request.data)
        if token_auth_of(request):
            raise exceptions.PermissionDenied("Accept invitations as yourself, not with an API token.")
        current = request.user if isinstance(request.user, User) else None
        user, _membership = services.accept_invitation(
            data["token"],
            user=current,
            password=data.get("password"),
            name=data["name"],
            ip_address=client_ip(request),
        )
        # The link came to the invitation's address, which is the account's: that verifies it.
        identity.mark_email_verified(user, how="invitation", ip_address=client_ip(request))
        if current is None:
            identity.complete_sign_in(request._request, user, method="invitation")
        body = s.MeOutput(user, context={"organizations": services.organizations_of(user)}).data
        return Response({**body, "csrf_token": get_token(request._request)})


# --- API tokens ------------------------------------------------------------------------------

API_TOKENS = ListQuery(
    search=("name", "prefix", "user__email"),
    ordering={
        "id": "id",
        "name": "name",
        "user": "user__email",
        "role_ceiling": "role_ceiling",
        "created_at": "created_at",
        "expires_at": "expires_at",
        "last_used_at": "last_used_at",
    },
    default="-id",
    search_help="name, prefix or owner's email",
)


class ApiTokenViewSet(OrganizationScopedViewSet):
    serializer_class = s.ApiTokenOutput
    scope_map = {"list": Scope.TOKEN_WRITE, "create": Scope.TOKEN_WRITE, "destroy": Scope.TOKEN_WRITE}
    # A leaked token must not be able to mint more tokens.
    session_only_actions = frozenset({"list", "create", "destroy"})

    queryset = ApiToken.objects.select_related("user")
    list_query = API_TOKENS

    def get_queryset(self) -> Any:
        tokens = super().get_queryset()
        if getattr(self, "swagger_fake_view", False) or Scope.TOKEN_ADMIN in self.scopes:
            return tokens
        return tokens.filter(user=self.membership.user)

    @extend_schema(parameters=API_TOKENS.parameters(), responses=s.ApiTokenOutput(many=True))
    def list(self, request: Request, org_slug: str) -> Response:
        return self.list_page(self.get_queryset(), lambda page: s.ApiTokenOutput(page, many=True).data)

    @extend_schema(
        request=s.ApiTokenCreateInput,
        responses={201: s.ApiTokenCreatedOutput},
        summary="Create",
        description="role_ceiling: the most the token may do, at most your own role; by default "
        "viewer (billing for a billing member). expires_at: optional, in the future.",
    )
    def create(self, request: Request, org_slug: str) -> Response:
        data = _validated(s.ApiTokenCreateInput, request.data)
        token, secret = services.create_api_token(
            self.actor,
            self.organization,
            self.membership,
            name=data["name"],
            role_ceiling=data.get("role_ceiling"),
            expires_at=data.get("expires_at"),
        )
        return Response(
            s.ApiTokenCreatedOutput(token, context={"secret": secret}).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(responses={204: None}, summary="Revoke")
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        services.revoke_api_token(self.actor, self.organization, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- audit log -------------------------------------------------------------------------------


AUDIT_LOG = ListQuery(
    search=("action", "actor_email", "target_repr"),
    ordering={"created_at": ("created_at", "id"), "action": "action", "actor": "actor_email"},
    default="-created_at",
    search_help="action, actor's email or target",
)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            *AUDIT_LOG.parameters(),
            OpenApiParameter(
                "action", str, description="This action (organization.update), or a family of them (route.*)"
            ),
            OpenApiParameter("actor", str, description="The email of who did it"),
            OpenApiParameter("target_type", str),
            OpenApiParameter("target_id", str),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="From this instant, inclusive"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="Before this instant"),
        ]
    )
)
class AuditLogViewSet(OrganizationScopedViewSet, mixins.ListModelMixin):
    """The organization's audit log, newest first: filters by action, actor, target and time
    range, search, sort and pagination. Unknown parameters are refused."""

    serializer_class = s.AuditEntryOutput
    scope_map = {"list": Scope.AUDIT_READ}
    list_query = AUDIT_LOG

    queryset = AuditEntry.objects.select_related("api_token")

    def filter_queryset(self, queryset: Any) -> Any:
        query = _validated(s.AuditQuery, self.request.query_params.dict())
        entries = queryset
        filters = {
            "actor": "actor_email__iexact",
            "target_type": "target_type",
            "target_id": "target_id",
            "since": "created_at__gte",
            "until": "created_at__lt",
        }
        for field, lookup in filters.items():
            if field in query:
                entries = entries.filter(**{lookup: query[field]})
        action = query.get("action")
        if action and action.endswith(".*"):
            entries = entries.filter(action__startswith=action[:-1])
        elif action:
            entries = entries.filter(action=action)
        return super().filter_queryset(entries)
