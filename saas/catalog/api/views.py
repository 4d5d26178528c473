"""The catalog's REST API: one viewset pattern for every entity, under
/api/v1/orgs/<slug>/clusters/<cluster_id>/. Views parse nothing themselves: the request body goes
to a service, which validates it against the entity's spec (the same rules as declarative
files) and publishes a snapshot."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.list_queries import ListQuery
from core.api.parsers import YAMLParser
from core.api.validation import parse_id
from core.errors import InvalidInput
from saas.catalog import declarative, openapi_import, services, specs
from saas.catalog.models import Certificate, Consumer, Credential, GlobalPlugin, Route, Service, Upstream
from saas.catalog.plugins import PLUGINS, PRECEDENCE
from saas.gateways.api.scoping import ClusterScopedViewSet
from tenants.roles import Scope


def _entity_orderings(**fields: str | tuple[str, ...]) -> dict[str, str | tuple[str, ...]]:
    return {**fields, "id": "id", "created_at": "created_at", "updated_at": "updated_at"}


# Search and sort of each list (core.api.list_queries): what names the object, and its columns.
UPSTREAMS = ListQuery(search=("name",), ordering=_entity_orderings(name="name"), default="id")
SERVICES = ListQuery(
    search=("name", "description", "upstream__name"),
    ordering=_entity_orderings(name="name", upstream="upstream__name"),
    default="id",
    search_help="name, description or upstream name",
)
ROUTES = ListQuery(
    search=("name", "service__name", "paths", "hosts"),
    ordering=_entity_orderings(name="name", service="service__name", priority="priority"),
    default="id",
    search_help="name, service name, paths or hosts",
)
CONSUMERS = ListQuery(search=("username",), ordering=_entity_orderings(username="username"), default="id")
CERTIFICATES = ListQuery(
    search=("name", "snis"),
    ordering=_entity_orderings(name="name", not_after="not_after"),
    default="id",
    search_help="name or SNI",
)
CREDENTIALS = ListQuery(
    search=("type", "key_prefix", "jwt_key", "basic_username", "hmac_key_id"),
    ordering=_entity_orderings(type="type"),
    default="id",
    search_help="type, key prefix, JWT key, basic-auth username or HMAC key id",
)
GLOBAL_PLUGINS = ListQuery(
    search=("name",), ordering={"name": "name", "updated_at": "updated_at"}, default="name"
)

ENTITY_ITEM = {
    "type": "object",
    "description": "The entity's spec (as its create and retrieve schemas), with these fields.",
    "properties": {
        "id": {"type": "integer"},
        "revision": {"type": "integer", "description": "The ETag a write may name in If-Match"},
        "updated_by": {"type": "string", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "revision", "created_at", "updated_at"],
    "additionalProperties": True,
}

READ_WRITE_SCOPES = {
    "list": Scope.CATALOG_READ,
    "retrieve": Scope.CATALOG_READ,
    "create": Scope.CATALOG_WRITE,
    "update": Scope.CATALOG_WRITE,
    "partial_update": Scope.CATALOG_WRITE,
    "destroy": Scope.CATALOG_WRITE,
}


class CatalogEntityViewSet(ClusterScopedViewSet):
    """List, read, create, replace (PUT), change (PATCH: merged onto the current spec) and
    delete one kind of catalog entity."""

    scope_map = READ_WRITE_SCOPES
    # Set by each subclass to the entity's service functions (staticmethods).
    spec: Any  # entity -> its spec as a dict
    save: Any  # (author, cluster, data, instance=None) -> entity
    remove: Any  # (author, entity) -> None

    def output(self, entity: Any) -> dict[str, Any]:
        return {
            "id": entity.id,
            **type(self).spec(entity),
            "revision": entity.revision,
            "updated_by": entity.updated_by or None,
            "created_at": entity.created_at,
            "updated_at": entity.updated_at,
        }

    def answer(self, entity: Any, code: int = status.HTTP_200_OK) -> Response:
        """The entity, with its revision as the ETag a later write may name in If-Match."""
        return Response(self.output(entity), status=code, headers={"ETag": f'"{entity.revision}"'})

    def list(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        return self.list_page(self.get_queryset(), lambda page: [self.output(entity) for entity in page])

    def retrieve(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        return self.answer(self.get_object())

    def create(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        entity = type(self).save(self.author, self.cluster, request.data)
        return self.answer(entity, status.HTTP_201_CREATED)

    def update(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        """PUT: the whole entity; a field left out takes its default."""
        with transaction.atomic():
            entity = self.get_object()
            services.claim_revision(entity, expected_revision(request))
            saved = type(self).save(self.author, self.cluster, request.data, entity)
        return self.answer(saved)

    def partial_update(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        """PATCH: only the fields named change; every other keeps its current value."""
        if not isinstance(request.data, dict):
            raise InvalidInput.field("non_field_errors", "Expected a JSON object.")
        with transaction.atomic():
            entity = self.get_object()
            services.claim_revision(entity, expected_revision(request))
            merged = {**type(self).spec(entity), **request.data}
            merged = {key: value for key, value in merged.items() if value is not None or key in request.data}
            saved = type(self).save(self.author, self.cluster, merged, entity)
        return self.answer(saved)

    def destroy(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        with transaction.atomic():
            entity = self.get_object()
            services.claim_revision(entity, expected_revision(request))
            type(self).remove(self.author, entity)
        return Response(status=status.HTTP_204_NO_CONTENT)


def expected_revision(request: Request) -> int | None:
    """The revision an If-Match header names (`"3"`, `W/"3"`); None without one or with `*`."""
    value = request.headers.get("If-Match", "").strip()
    if not value or value == "*":
        return None
    revision = parse_id(value.removeprefix("W/").strip().strip('"'), max_digits=9)
    if revision is None:
        raise InvalidInput.field("If-Match", 'Give the ETag of the revision you edited, such as "3".')
    return revision


def _documented(spec_model: type[specs.Spec], query: ListQuery) -> Any:
    """OpenAPI for an entity viewset: its spec in, its spec (with id and times) out, and a list
    searched, sorted and paginated by `query`."""
    return extend_schema_view(
        list=extend_schema(
            parameters=query.parameters(),
            responses={200: ENTITY_ITEM},
            operation_id=f"{spec_model.__name__.removesuffix('Spec').lower()}s_list",
        ),
        retrieve=extend_schema(responses=spec_model),
        create=extend_schema(request=spec_model, responses={201: spec_model}),
        update=extend_schema(request=spec_model, responses=spec_model),
        partial_update=extend_schema(request=spec_model, responses=spec_model),
        destroy=extend_schema(responses={204: None}),
    )


@_documented(specs.UpstreamSpec, UPSTREAMS)
class UpstreamViewSet(CatalogEntityViewSet):
    list_query = UPSTREAMS
    queryset = Upstream.objects.all()
    spec = staticmethod(services.upstream_spec)
    save = staticmethod(services.save_upstream)
    remove = staticmethod(services.delete_upstream)


@_documented(specs.ServiceSpec, SERVICES)
class ServiceViewSet(CatalogEntityViewSet):
    list_query = SERVICES
    queryset = Service.objects.select_related("upstream")
    spec = staticmethod(services.service_spec)
    save = staticmethod(services.save_service)
    remove = staticmethod(services.delete_service)


@_documented(specs.RouteSpec, ROUTES)
class RouteViewSet(CatalogEntityViewSet):
    list_query = ROUTES
    queryset = Route.objects.select_related("service")
    spec = staticmethod(services.route_spec)
    save = staticmethod(services.save_route)
    remove = staticmethod(services.delete_route)

    def output(self, entity: Any, shadowed: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """With `shadowed_by` (read only): the route's paths no request reaches, each with the
        route the gateways match first (services.shadowed_paths)."""
        if shadowed is None:
            shadowed = services.shadowed_paths(self.cluster, [entity]).get(entity.id, [])
        return {**super().output(entity), "shadowed_by": shadowed}

    def list(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        def outputs(page: Any) -> list[dict[str, Any]]:
            shadowed = services.shadowed_paths(self.cluster, list(page))
            return [self.output(route, shadowed.get(route.id, [])) for route in page]

        return self.list_page(self.get_queryset(), outputs)


@_documented(specs.ConsumerSpec, CONSUMERS)
class ConsumerViewSet(CatalogEntityViewSet):
    list_query = CONSUMERS
    queryset = Consumer.objects.prefetch_related("credentials")
    spec = staticmethod(services.consumer_spec)
    save = staticmethod(services.save_consumer)
    remove = staticmethod(services.delete_consumer)

    def output(self, entity: Any) -> dict[str, Any]:
        credentials = [{"id": c.id, **services.credential_view(c)} for c in entity.credentials.all()]
        return {**super().output(entity), "credentials": credentials}


@_documented(specs.CertificateSpec, CERTIFICATES)
class CertificateViewSet(CatalogEntityViewSet):
    list_query = CERTIFICATES
    queryset = Certificate.objects.all()
    spec = staticmethod(services.certificate_view)
    save = staticmethod(services.save_certificate)
    remove = staticmethod(services.delete_certificate)

    def partial_update(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        # The stored key is encrypted and never shown: a change supplies certificate and key again.
        return self.update(request, org_slug, cluster_id, pk)


class CredentialOutput(serializers.Serializer[Credential]):
    """How a credential is shown after creation: never its key, secret or password."""

    id = serializers.IntegerField()
    type = serializers.ChoiceField(choices=["key-auth", "jwt-auth", "basic-auth", "hmac-auth"])
    key_prefix = serializers.CharField(
        required=False,
        help_text="key-auth: a generated key's first characters; empty for a key you chose",
    )
    key = serializers.CharField(required=False, help_text="jwt-auth: the `key` claim naming the consumer")
    algorithm = serializers.CharField(required=False)
    public_key = serializers.CharField(required=False, allow_null=True)
    username = serializers.CharField(required=False, help_text="basic-auth")
    key_id = serializers.CharField(required=False, help_text="hmac-auth: the keyId requests are signed with")


class CredentialViewSet(ClusterScopedViewSet):
    queryset = Credential.objects.all()
    serializer_class = CredentialOutput
    scope_map = {"list": Scope.CATALOG_READ, "create": Scope.CATALOG_WRITE, "destroy": Scope.CATALOG_WRITE}
    list_query = CREDENTIALS

    def _consumer(self) -> Consumer:
        consumer_id = parse_id(self.kwargs.get("consumer_id", ""))
        consumer = (
            Consumer.objects.filter(cluster=self.cluster, id=consumer_id).first()
            if consumer_id is not None
            else None
        )
        if consumer is None:
            raise NotFound("Consumer not found.")
        return consumer

    def get_queryset(self) -> Any:
        queryset = super().get_queryset()
        return (
            queryset
            if getattr(self, "swagger_fake_view", False)
            else queryset.filter(consumer=self._consumer())
        )

    @extend_schema(
        parameters=CREDENTIALS.parameters(),
        responses=CredentialOutput(many=True),
        operation_id="credentials_list",
    )
    def list(self, request: Request, org_slug: str, cluster_id: str, consumer_id: str) -> Response:
        return self.list_page(
            self.get_queryset(), lambda page: [{"id": c.id, **services.credential_view(c)} for c in page]
        )

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT},
        summary="Add a key-auth, jwt-auth, basic-auth or hmac-auth credential",
        description="Body: {type: key-auth, key?} | {type: jwt-auth, key, algorithm, secret? | public_key} | "
        "{type: basic-auth, username, password} | {type: hmac-auth, key_id, secret?}. "
        "Generated keys and secrets are returned once.",
    )
    def create(self, request: Request, org_slug: str, cluster_id: str, consumer_id: str) -> Response:
        credential, shown = services.add_credential(self.author, self._consumer(), request.data)
        return Response(
            {"id": credential.id, **services.credential_view(credential), **shown},
            status=status.HTTP_201_CREATED,
        )

    def destroy(
        self, request: Request, org_slug: str, cluster_id: str, consumer_id: str, pk: str
    ) -> Response:
        services.delete_credential(self.author, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class GlobalPluginViewSet(ClusterScopedViewSet):
    """Plugins attached to the whole cluster: PUT /plugins/<name>/ with the config as body."""

    queryset = GlobalPlugin.objects.all()
    list_query = GLOBAL_PLUGINS
    lookup_field = "name"
    lookup_value_regex = "[a-z0-9-]+"
    scope_map = {
        "list": Scope.CATALOG_READ,
        "retrieve": Scope.CATALOG_READ,
        "update": Scope.CATALOG_WRITE,
        "destroy": Scope.CATALOG_WRITE,
    }

    @staticmethod
    def answer(plugin: GlobalPlugin) -> Response:
        body = {
            "name": plugin.name,
            "config": plugin.config,
            "revision": plugin.revision,
            "updated_by": plugin.updated_by or None,
            "updated_at": plugin.updated_at,
        }
        return Response(body, headers={"ETag": f'"{plugin.revision}"'})

    @extend_schema(
        parameters=GLOBAL_PLUGINS.parameters(paginated=False),
        responses={200: OpenApiTypes.OBJECT},
        operation_id="global_plugins_list",
        summary="Cluster-wide plugins, name -> config",
        description="An object, not a page: a cluster has at most one of each plugin. Searched and "
        "ordered like every list (the keys come in that order).",
    )
    def list(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        return Response({p.name: p.config for p in self.filter_queryset(self.get_queryset())})

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        operation_id="global_plugins_retrieve",
        summary="One cluster-wide plugin, with its revision",
    )
    def retrieve(self, request: Request, org_slug: str, cluster_id: str, name: str) -> Response:
        return self.answer(self.get_object())

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        responses=OpenApiTypes.OBJECT,
        summary="Attach or change a cluster-wide plugin",
    )
    def update(self, request: Request, org_slug: str, cluster_id: str, name: str) -> Response:
        with transaction.atomic():
            existing = self.get_queryset().filter(name=name).first()
            if existing is not None:
                services.claim_revision(existing, expected_revision(request))
            plugin = services.set_global_plugin(self.author, self.cluster, name, request.data)
        return self.answer(plugin)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, org_slug: str, cluster_id: str, name: str) -> Response:
        with transaction.atomic():
            plugin = self.get_object()
            services.claim_revision(plugin, expected_revision(request))
            services.delete_global_plugin(self.author, plugin)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PluginListView(APIView):
    """Every plugin with the JSON Schema of its config and where it can be attached."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Plugins and their config schemas")
    def get(self, request: Request) -> Response:
        return Response(
            {
                "precedence": list(PRECEDENCE),
                "plugins": [
                    {
                        "name": p.name,
                        "description": p.description,
                        "scopes": list(p.scopes),
                        "schema": p.schema,
                    }
                    for p in PLUGINS.values()
                ],
            }
        )


class DeclarativeConfigViewSet(ClusterScopedViewSet):
    """GET: the cluster's catalog as YAML (secrets left out). POST: apply a document
    (?dry_run=true for the plan only)."""

    parser_classes = [JSONParser, YAMLParser]
    scope_map = {
        "export": Scope.CATALOG_READ,
        "apply": Scope.CATALOG_WRITE,
        "import_openapi": Scope.CATALOG_WRITE,
    }

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["yaml", "json"])],
        responses={200: OpenApiTypes.OBJECT},
        summary="Export the cluster's catalog",
    )
    def export(self, request: Request, org_slug: str, cluster_id: str) -> Any:
        if request.query_params.get("format") == "json":
            return Response(declarative.export_config(self.cluster))
        return HttpResponse(
            declarative.export_yaml(self.cluster), content_type="application/yaml; charset=utf-8"
        )

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[
            OpenApiParameter("dry_run", bool),
            OpenApiParameter(
                "If-Match",
                str,
                OpenApiParameter.HEADER,
                description="The plan's based_on_version: refused with 412 if the cluster has moved on",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT},
        summary="Make the cluster match a declarative document",
    )
    def apply(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
        result = declarative.apply_config(
            self.author, self.cluster, request.data, dry_run=dry_run, based_on=expected_revision(request)
        )
        return Response(result)

    @extend_schema(
        request=OpenApiTypes.OBJECT,
        parameters=[OpenApiParameter("service", str), OpenApiParameter("upstream", str)],
        responses={201: OpenApiTypes.OBJECT},
        summary="Import an OpenAPI 3 document as a service with one route per operation",
    )
    def import_openapi(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        result = openapi_import.import_openapi(
            self.author,
            self.cluster,
            request.data,
            service_name=request.query_params.get("service") or None,
            upstream_name=request.query_params.get("upstream") or None,
        )
        return Response(result, status=status.HTTP_201_CREATED)
