"""The team's side of the developer portal, under /api/v1/orgs/<slug>/portal/: settings, products
(with versions and plans), developers and their applications, invitations. Thin: validate, call
a service of saas.portal, format."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.validation import parse_id
from core.errors import InvalidInput
from saas.gateways.services import Author, GatewayCluster
from tenants.api.scoping import OrganizationScopedViewSet
from tenants.roles import Scope

from .. import applications, developers, products
from ..models import ApiProduct, Application, PortalDeveloper, ProductPlan, ProductVersion
from . import serializers as s

READ, WRITE = Scope.CATALOG_READ, Scope.CATALOG_WRITE


def _validated(validator: type[s.InputValidator], data: Any, partial: bool = False) -> dict[str, Any]:
    serializer = validator(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PortalViewSet(OrganizationScopedViewSet):
    pagination_class = None  # a portal's products and developers are few: whole lists

    @property
    def author(self) -> Author:
        return Author(actor=self.actor, organization=self.organization)

    def _found(self, queryset: Any, pk: str, what: str) -> Any:
        found = queryset.filter(pk=parse_id(pk)).first() if parse_id(pk) is not None else None
        if found is None:
            raise NotFound(f"{what} not found.")
        return found


class PortalSettingsViewSet(PortalViewSet):
    scope_map = {"retrieve": READ, "partial_update": Scope.ORG_WRITE}

    def _answer(self) -> Response:
        settings = products.portal_settings()
        return Response({**products.settings_view(settings), "url": developers.portal_url(self.organization)})

    @extend_schema(responses=s.PortalSettingsOutput, summary="The portal's settings")
    def retrieve(self, request: Request, org_slug: str) -> Response:
        return self._answer()

    @extend_schema(
        request=s.PortalSettingsInput, responses=s.PortalSettingsOutput, summary="Change the portal"
    )
    def partial_update(self, request: Request, org_slug: str) -> Response:
        products.save_portal_settings(
            self.author, _validated(s.PortalSettingsInput, request.data, partial=True)
        )
        return self._answer()


class ProductViewSet(PortalViewSet):
    queryset = ApiProduct.objects.all()  # for the OpenAPI schema's id type; views look up themselves
    scope_map = {"list": READ, "retrieve": READ, "create": WRITE, "partial_update": WRITE, "destroy": WRITE}

    def _product(self, pk: str) -> ApiProduct:
        return self._found(ApiProduct.objects.prefetch_related("versions", "plans"), pk, "Product")

    @extend_schema(responses=s.ProductOutput(many=True), summary="API products")
    def list(self, request: Request, org_slug: str) -> Response:
        return Response([products.product_view(p) for p in products.products()])

    @extend_schema(responses=s.ProductOutput, summary="An API product")
    def retrieve(self, request: Request, org_slug: str, pk: str) -> Response:
        return Response(products.product_view(self._product(pk)))

    @extend_schema(request=s.ProductInput, responses={201: s.ProductOutput}, summary="Add a product")
    def create(self, request: Request, org_slug: str) -> Response:
        data = _validated(s.ProductInput, request.data)
        data.setdefault("slug", _slug(data["name"]))
        product = products.save_product(self.author, data)
        return Response(products.product_view(self._product(str(product.pk))), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ProductPatch, responses=s.ProductOutput, summary="Change a product")
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        product = products.save_product(
            self.author, _validated(s.ProductPatch, request.data), self._product(pk)
        )
        return Response(products.product_view(self._product(str(product.pk))))

    @extend_schema(responses={204: None}, summary="Delete a product (its subscriptions end)")
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        products.delete_product(self.author, self._product(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _slug(name: str) -> str:
    from django.utils.text import slugify

    slug = slugify(name)[:60]
    if not slug:
        raise InvalidInput.field("slug", "Give the product an address (letters, digits and -).")
    return slug


class ProductChildViewSet(PortalViewSet):
    product: ApiProduct

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if self.action != "metadata":
            self.product = self._found(ApiProduct.objects.all(), kwargs.get("product_id", ""), "Product")


class VersionViewSet(ProductChildViewSet):
    queryset = ProductVersion.objects.all()  # for the OpenAPI schema's id type; views look up themselves
    scope_map = {"create": WRITE, "update": WRITE, "destroy": WRITE, "openapi": READ}

    def _save(self, request: Request, instance: ProductVersion | None) -> ProductVersion:
        data = _validated(s.VersionInput, request.data)
        cluster = GatewayCluster.objects.filter(pk=data["cluster_id"]).first()
        if cluster is None:
            raise InvalidInput.field("cluster_id", "No such cluster.")
        if "route_ids" not in data and "service" not in data:
            raise InvalidInput.field("route_ids", "Name the routes the version covers, or a service.")
        return products.save_version(
            self.author,
            self.product,
            name=data["name"],
            status=data["status"],
            cluster=cluster,
            route_ids=data.get("route_ids"),
            openapi=data.get("openapi"),
            service=data.get("service"),
            gateway_url=data.get("gateway_url", ""),
            instance=instance,
        )

    @extend_schema(request=s.VersionInput, responses={201: s.VersionOutput}, summary="Add a version")
    def create(self, request: Request, org_slug: str, product_id: str) -> Response:
        version = self._save(request, None)
        return Response(products.version_view(version), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.VersionInput, responses=s.VersionOutput, summary="Replace a version")
    def update(self, request: Request, org_slug: str, product_id: str, pk: str) -> Response:
        version = self._save(request, self._found(self.product.versions.all(), pk, "Version"))
        return Response(products.version_view(version))

    @extend_schema(responses={204: None}, summary="Delete a version (its subscriptions end)")
    def destroy(self, request: Request, org_slug: str, product_id: str, pk: str) -> Response:
        products.delete_version(self.author, self._found(self.product.versions.all(), pk, "Version"))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="The version's OpenAPI document")
    @action(detail=True, methods=["get"])
    def openapi(self, request: Request, org_slug: str, product_id: str, pk: str) -> Response:
        version = self._found(self.product.versions.all(), pk, "Version")
        if version.openapi is None:
            raise NotFound("This version has no OpenAPI document.")
        return Response(version.openapi)


class PlanViewSet(ProductChildViewSet):
    queryset = ProductPlan.objects.all()  # for the OpenAPI schema's id type; views look up themselves
    scope_map = {"create": WRITE, "update": WRITE, "destroy": WRITE}

    @extend_schema(request=s.PlanInput, responses={201: s.PlanOutput}, summary="Add a plan")
    def create(self, request: Request, org_slug: str, product_id: str) -> Response:
        plan = products.save_plan(self.author, self.product, _validated(s.PlanInput, request.data))
        return Response(products.plan_view(plan), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.PlanInput, responses=s.PlanOutput, summary="Change a plan")
    def update(self, request: Request, org_slug: str, product_id: str, pk: str) -> Response:
        found: ProductPlan = self._found(self.product.plans.all(), pk, "Plan")
        data = {
            "description": "",
            "limit_count": None,
            "time_window": None,
            **_validated(s.PlanInput, request.data),
        }
        plan = products.save_plan(self.author, self.product, data, found)
        return Response(products.plan_view(plan))

    @extend_schema(responses={204: None}, summary="Delete a plan nobody holds")
    def destroy(self, request: Request, org_slug: str, product_id: str, pk: str) -> Response:
        products.delete_plan(self.author, self._found(self.product.plans.all(), pk, "Plan"))
        return Response(status=status.HTTP_204_NO_CONTENT)


def developer_view(developer: PortalDeveloper) -> dict[str, Any]:
    return {
        "id": developer.id,
        "email": developer.email,
        "name": developer.name,
        "status": developer.status,
        "email_verified": developer.email_verified_at is not None,
        "created_at": developer.created_at,
        "last_login": developer.last_login,
        "applications": [applications.application_view(a) for a in developer.applications.all()],
    }


class DeveloperViewSet(PortalViewSet):
    queryset = PortalDeveloper.objects.all()  # for the OpenAPI schema's id type; views look up themselves
    scope_map = {
        "list": READ,
        "approve": WRITE,
        "reject": WRITE,
        "suspend": WRITE,
        "reinstate": WRITE,
    }

    def _developers(self) -> Any:
        return PortalDeveloper.objects.prefetch_related(
            Prefetch("applications", queryset=Application.objects.select_related("developer"))
        )

    @extend_schema(
        responses=s.DeveloperOutput(many=True), summary="The portal's developers and their applications"
    )
    def list(self, request: Request, org_slug: str) -> Response:
        queryset = self._developers().order_by("-created_at")
        wanted = request.query_params.get("status")
        if wanted:
            queryset = queryset.filter(status=wanted)
        return Response([developer_view(d) for d in queryset])

    def _decide(self, pk: str, decision: str) -> Response:
        developer = developers.decide_developer(
            self.author, self._found(self._developers(), pk, "Developer"), decision
        )
        return Response(developer_view(self._found(self._developers(), str(developer.pk), "Developer")))

    @extend_schema(request=None, responses=s.DeveloperOutput, summary="Approve a developer")
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, org_slug: str, pk: str) -> Response:
        return self._decide(pk, "approve")

    @extend_schema(request=None, responses=s.DeveloperOutput, summary="Reject a developer")
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, org_slug: str, pk: str) -> Response:
        return self._decide(pk, "reject")

    @extend_schema(
        request=None, responses=s.DeveloperOutput, summary="Suspend a developer and their applications"
    )
    @action(detail=True, methods=["post"])
    def suspend(self, request: Request, org_slug: str, pk: str) -> Response:
        return self._decide(pk, "suspend")

    @extend_schema(request=None, responses=s.DeveloperOutput, summary="Reinstate a developer")
    @action(detail=True, methods=["post"])
    def reinstate(self, request: Request, org_slug: str, pk: str) -> Response:
        return self._decide(pk, "reinstate")


class ApplicationViewSet(PortalViewSet):
    queryset = Application.objects.all()  # for the OpenAPI schema's id type; views look up themselves
    scope_map = {"partial_update": WRITE}

    @extend_schema(
        request=s.StatusInput, responses=s.ApplicationOutput, summary="Suspend or reinstate an application"
    )
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        found = self._found(Application.objects.select_related("developer"), pk, "Application")
        application = applications.set_application_status(
            self.author, found, _validated(s.StatusInput, request.data)["status"]
        )
        return Response(applications.application_view(application))


class DeveloperInvitationViewSet(PortalViewSet):
    scope_map = {"create": WRITE}

    @extend_schema(
        request=s.InvitationInput, responses={201: s.InvitationOutput}, summary="Invite a developer"
    )
    def create(self, request: Request, org_slug: str) -> Response:
        email = _validated(s.InvitationInput, request.data)["email"]
        link = developers.invite_developer(self.author, email)
        return Response({"email": email, "link": link}, status=status.HTTP_201_CREATED)
