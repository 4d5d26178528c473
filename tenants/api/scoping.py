"""The one base every organization endpoint uses: /api/v1/orgs/<org_slug>/...

It resolves the organization from the path (never the body), checks the caller's membership,
works out the caller's scopes (role, limited by an API token's ceiling), enforces the scope the
action needs, and switches the database connection to the organization's schema. A caller who is
not a member gets 404, so the existence of other organizations is not revealed."""

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from django.db.models import QuerySet
from rest_framework import exceptions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.client import client_ip
from core.api.list_queries import ListQuery
from tenants.audit import Actor
from tenants.authentication import token_auth_of
from tenants.models import Membership, Organization, User
from tenants.roles import scopes_for
from tenants.schemas import activate_organization_schema, activate_public_schema


class OrganizationScopedViewSet(viewsets.GenericViewSet):
    # action name -> the scope it requires. An action missing here is refused.
    scope_map: ClassVar[dict[str, str]] = {}
    # Actions a person must do themselves, logged in, not through an API token.
    session_only_actions: ClassVar[frozenset[str]] = frozenset()
    # `?search=` and `?ordering=` of the list action (core.api.list_queries); None: neither.
    list_query: ClassVar[ListQuery | None] = None

    organization: Organization
    membership: Membership
    scopes: frozenset[str]

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        # The organization's schema is this request's only: the thread serves other requests next.
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            activate_public_schema()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, IsAuthenticated, throttles
        slug = kwargs.get("org_slug", "")
        token_auth = token_auth_of(request)
        user = request.user
        assert isinstance(user, User)  # IsAuthenticated ran in super().initial
        membership = (
            Membership.objects.select_related("organization", "user")
            .filter(user=user, organization__slug=slug, organization__is_template=False)
            .first()
        )
        if membership is None or (
            token_auth and token_auth.token.organization_id != membership.organization_id
        ):
            raise exceptions.NotFound("Organization not found.")
        self.membership = membership
        self.organization = membership.organization
        self.scopes = scopes_for(membership.role, token_auth.token.role_ceiling if token_auth else None)
        action = self.action
        if action == "metadata":  # OPTIONS, for any member: answered by `options`, below
            activate_organization_schema(self.organization)
            return
        if action is None:
            # A method this endpoint does not have. Nothing below this base may run for it
            # (subclasses look things up in the organization's schema, active only for actions):
            # 405 here, with `Allow` naming the methods it has (DRF adds it to every answer).
            raise exceptions.MethodNotAllowed(request.method or "")
        required = self.scope_map.get(action)
        if required is None or required not in self.scopes:
            raise exceptions.PermissionDenied("Your role does not allow this.")
        if token_auth and action in self.session_only_actions:
            raise exceptions.PermissionDenied("This cannot be done with an API token; log in to do it.")
        activate_organization_schema(self.organization)

    def options(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        """The methods, in `Allow`, and no body: the OpenAPI document describes the rest. (DRF's
        metadata would build serializers and look objects up for every method.)"""
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_queryset(self) -> QuerySet[Any]:
        """The viewset's `queryset`, limited to this organization. Models in the organization's
        own schema are isolated by the schema; public-schema models by their organization."""
        queryset = super().get_queryset()
        if getattr(self, "swagger_fake_view", False):  # OpenAPI generation: no request
            return queryset.none()
        field_names = {field.name for field in queryset.model._meta.get_fields()}
        if "organization" in field_names:
            queryset = queryset.filter(organization=self.organization)
        return queryset

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        queryset = super().filter_queryset(queryset)
        if self.list_query is not None and self.action == "list":
            queryset = self.list_query.apply(queryset, self.request.query_params)
        return queryset

    def list_page(self, queryset: QuerySet[Any], output: Callable[[Sequence[Any]], Any]) -> Response:
        """The list answer: `queryset` searched, sorted and paginated, each page through `output`."""
        page = self.paginate_queryset(self.filter_queryset(queryset))
        return self.get_paginated_response(output(page or []))

    @property
    def actor(self) -> Actor:
        token_auth = token_auth_of(self.request)
        return Actor(
            user=self.membership.user,
            api_token=token_auth.token if token_auth else None,
            ip_address=client_ip(self.request),
        )
