"""Clusters and their agent tokens."""

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core import clock
from core.api.list_queries import ListQuery
from core.api.validation import InputValidator, StrictCharField, parse_id
from core.errors import InvalidInput
from core.specs import parse_spec
from infra.selfhost import artifacts
from saas.gateways import agents, clusters, publishing
from saas.gateways.models import ClusterToken, ConfigSnapshot, GatewayCluster
from saas.gateways.snapshots import diff_documents, redact, snapshot_document
from saas.gateways.specs import ClusterSpec
from tenants.api.scoping import OrganizationScopedViewSet
from tenants.roles import Scope

from .scoping import ClusterScopedViewSet

CLUSTERS = ListQuery(
    search=("name", "description"),
    ordering={"name": "name", "id": "id", "created_at": "created_at", "updated_at": "updated_at"},
    default="id",
    search_help="name or description",
)
CLUSTER_TOKENS = ListQuery(
    search=("name", "prefix", "created_by"),
    ordering={
        "name": "name",
        "id": "id",
        "created_at": "created_at",
        "last_used_at": "last_used_at",
        "revoked_at": "revoked_at",
    },
    default="-id",
    search_help="name, prefix or creator's email",
)
INSTANCES = ListQuery(
    search=("hostname", "instance_id", "address", "agent_version", "haproxy_version"),
    ordering={
        "id": "id",
        "hostname": "hostname",
        "address": "address",
        "status": "status_rank",
        "agent_version": "agent_version",
        "haproxy_version": "haproxy_version",
        "applied_version": "applied_version",
        "registered_at": "registered_at",
        "last_heartbeat_at": "last_heartbeat_at",
    },
    default="id",
    search_help="hostname, instance id, address or versions",
)
SNAPSHOTS = ListQuery(
    search=("author", "reason"),
    ordering={"version": "version", "created_at": "created_at"},
    default="-version",
    search_help="author or reason",
)
CLUSTER_ITEM = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "latest_version": {"type": "integer", "nullable": True},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "name", "description", "labels", "latest_version", "created_at", "updated_at"],
}


def cluster_output(cluster: GatewayCluster) -> dict[str, Any]:
    latest = cluster.snapshots.order_by("-version").values_list("version", flat=True).first()
    return {
        "id": cluster.id,
        "name": cluster.name,
        "description": cluster.description,
        "labels": cluster.labels,
        "latest_version": latest,
        "created_at": cluster.created_at,
        "updated_at": cluster.updated_at,
    }


class ClusterViewSet(OrganizationScopedViewSet):
    queryset = GatewayCluster.objects.all()
    list_query = CLUSTERS
    scope_map = {
        "list": Scope.CATALOG_READ,
        "retrieve": Scope.CATALOG_READ,
        "create": Scope.CLUSTER_WRITE,
        "partial_update": Scope.CLUSTER_WRITE,
        "destroy": Scope.CLUSTER_WRITE,
    }

    def _author(self) -> clusters.Author:
        return clusters.Author(actor=self.actor, organization=self.organization)

    @extend_schema(
        parameters=CLUSTERS.parameters(),
        responses={200: CLUSTER_ITEM},
        operation_id="clusters_list",
    )
    def list(self, request: Request, org_slug: str) -> Response:
        return self.list_page(self.get_queryset(), lambda page: [cluster_output(c) for c in page])

    @extend_schema(responses=ClusterSpec)
    def retrieve(self, request: Request, org_slug: str, pk: str) -> Response:
        return Response(cluster_output(self.get_object()))

    @extend_schema(request=ClusterSpec, responses={201: ClusterSpec})
    def create(self, request: Request, org_slug: str) -> Response:
        spec = parse_spec(ClusterSpec, request.data)
        cluster = clusters.create_cluster(
            self._author(), name=spec.name, description=spec.description, labels=spec.labels
        )
        return Response(cluster_output(cluster), status=status.HTTP_201_CREATED)

    @extend_schema(request=ClusterSpec, responses=ClusterSpec)
    def partial_update(self, request: Request, org_slug: str, pk: str) -> Response:
        cluster = self.get_object()
        current = {"name": cluster.name, "description": cluster.description, "labels": cluster.labels}
        spec = parse_spec(
            ClusterSpec, {**current, **request.data} if isinstance(request.data, dict) else request.data
        )
        cluster = clusters.update_cluster(
            self._author(), cluster, name=spec.name, description=spec.description, labels=spec.labels
        )
        return Response(cluster_output(cluster))

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, org_slug: str, pk: str) -> Response:
        clusters.delete_cluster(self._author(), self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ClusterTokenInput(InputValidator):
    name = StrictCharField(max_length=100)


class ClusterTokenRotateInput(InputValidator):
    grace_seconds = serializers.IntegerField(
        min_value=0,
        max_value=clusters.ROTATION_GRACE_MAX_S,
        required=False,
        default=clusters.ROTATION_GRACE_DEFAULT_S,
        help_text="How long the old secret keeps working, in seconds (0: not at all; at most 7 days). "
        f"Default {clusters.ROTATION_GRACE_DEFAULT_S}.",
    )


class ClusterTokenOutput(serializers.ModelSerializer[ClusterToken]):
    status = serializers.SerializerMethodField(
        help_text="active; rotating: replaced, accepted until revoked_at; revoked"
    )

    class Meta:
        model = ClusterToken
        fields = ["id", "name", "prefix", "status", "created_by", "created_at", "last_used_at", "revoked_at"]
        extra_kwargs = {
            "last_used_at": {"help_text": "The last agent call with it, to the minute"},
            "revoked_at": {"help_text": "When it stops (or stopped) working; in the future while rotating"},
        }

    def get_status(self, token: ClusterToken) -> str:
        return token.status_at(self.context.get("now") or clock.now())


class ClusterTokenViewSet(ClusterScopedViewSet):
    queryset = ClusterToken.objects.all()
    serializer_class = ClusterTokenOutput
    list_query = CLUSTER_TOKENS
    scope_map = {
        "list": Scope.CLUSTER_WRITE,
        "create": Scope.CLUSTER_WRITE,
        "destroy": Scope.CLUSTER_WRITE,
        "rotate": Scope.CLUSTER_WRITE,
    }
    # An agent token reads the cluster's secrets decrypted (JWT and HMAC secrets, TLS private
    # keys): an API token may not mint one, or it could read what it was never shown.
    session_only_actions = frozenset({"create", "rotate"})

    def _created(self, token: ClusterToken, secret: str) -> Response:
        return Response({**ClusterTokenOutput(token).data, "token": secret}, status=status.HTTP_201_CREATED)

    @extend_schema(parameters=CLUSTER_TOKENS.parameters(), responses=ClusterTokenOutput(many=True))
    def list(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        context = {"now": clock.now()}
        return self.list_page(
            self.get_queryset(), lambda page: ClusterTokenOutput(page, many=True, context=context).data
        )

    @extend_schema(request=ClusterTokenInput, responses={201: ClusterTokenOutput})
    def create(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        validator = ClusterTokenInput(data=request.data)
        validator.is_valid(raise_exception=True)
        return self._created(
            *clusters.create_cluster_token(self.author, self.cluster, name=validator.validated_data["name"])
        )

    @extend_schema(responses={204: None}, summary="Revoke: refused from now on (a rotating one too)")
    def destroy(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        clusters.revoke_cluster_token(self.author, self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=ClusterTokenRotateInput,
        responses={201: ClusterTokenOutput},
        summary="New secret under the same name; the old one works for grace_seconds more",
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        validator = ClusterTokenRotateInput(data=request.data if request.data is not None else {})
        validator.is_valid(raise_exception=True)
        grace = validator.validated_data["grace_seconds"]
        return self._created(
            *clusters.rotate_cluster_token(self.author, self.get_object(), grace_seconds=grace)
        )


class InstanceOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    instance_id = serializers.UUIDField(help_text="The id the agent registered under")
    hostname = serializers.CharField()
    address = serializers.IPAddressField(
        allow_null=True,
        help_text="Where its last heartbeat (or registration) came from, as the control plane saw it",
    )
    agent_version = serializers.CharField()
    haproxy_version = serializers.CharField(help_text="Empty when the agent did not report it")
    labels = serializers.DictField(child=serializers.CharField())
    token = serializers.CharField(
        allow_null=True,
        help_text="The prefix of the cluster token it last called with (heartbeat, else registration)",
    )
    registered_at = serializers.DateTimeField()
    status = serializers.ChoiceField(
        choices=["online", "lost", "offline"],
        help_text="online: a heartbeat in the last 30 s; lost: up to 2 h ago; offline: none since",
    )
    last_heartbeat_at = serializers.DateTimeField(allow_null=True)
    applied_version = serializers.IntegerField(allow_null=True, help_text="The snapshot version it runs")
    latest_version = serializers.IntegerField(
        allow_null=True, help_text="The cluster's latest snapshot version"
    )
    on_latest_version = serializers.BooleanField()
    last_error = serializers.CharField(
        allow_null=True,
        help_text="The agent's last reported error; first, when its cluster token is refused, that",
    )


_STATUS_RANK = {"online": 0, "lost": 1, "offline": 2}


class InstanceViewSet(ClusterScopedViewSet):
    """The cluster's gateways: online, lost (no heartbeat for 30 s) or offline (2 h), with the
    snapshot version each applied against the latest, and its last error."""

    queryset = GatewayCluster.objects.none()
    scope_map = {"list": Scope.CATALOG_READ}

    @extend_schema(
        parameters=[
            *INSTANCES.parameters(),
            OpenApiParameter(
                "status", str, enum=list(_STATUS_RANK), description="Only instances in this state"
            ),
        ],
        responses=InstanceOutput(many=True),
        operation_id="instances_list",
    )
    def list(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        wanted = request.query_params.get("status")
        if wanted and wanted not in _STATUS_RANK:
            raise InvalidInput.field("status", f"One of: {', '.join(_STATUS_RANK)}.")
        rows = [
            {**row, "status_rank": _STATUS_RANK[row["status"]]}
            for row in agents.instance_statuses(
                self.organization.schema_name, self.cluster.id, self.organization.id
            )
            if not wanted or row["status"] == wanted
        ]
        # The paginator pages a list as it does a queryset.
        ordered: Any = INSTANCES.apply_to_rows(rows, request.query_params)
        page: list[dict[str, Any]] | None = self.paginate_queryset(ordered)
        return self.get_paginated_response(
            [{key: value for key, value in row.items() if key != "status_rank"} for row in page or []]
        )


class InstallViewSet(ClusterScopedViewSet):
    """How to install a gateway for this cluster: each method's exact command. The token is a
    placeholder: create one under tokens/ (it is shown once)."""

    queryset = GatewayCluster.objects.none()
    scope_map = {"list": Scope.CATALOG_READ}

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, operation_id="install_instructions")
    def list(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        url = settings.PUBLIC_URL
        return Response(
            {
                "vm": f"curl -fsSL {url}/install.sh | sudo GATEWAY_TOKEN=<cluster token> sh",
                "vm_uninstall": f"curl -fsSL {url}/install.sh | sudo sh -s -- --uninstall",
                "docker": (
                    # A stop waits for HAProxy's last calls and the usage delivery (about 35 s).
                    "docker run -d --name gateway --restart unless-stopped --stop-timeout 40 "
                    "-p 80:8080 -p 443:8443 -p 9101:9101 "
                    f"-e GATEWAY_CONTROL_PLANE={url} -e GATEWAY_TOKEN=<cluster token> "
                    f"-v gateway-data:/var/lib/gateway-agent {settings.SAAS_GATEWAY_IMAGE}"
                ),
                "helm": (
                    f"helm install gateway {url}/downloads/{artifacts.chart_name()} "
                    "--namespace gateway --create-namespace "
                    f"--set controlPlane.url={url} --set token.value=<cluster token>"
                ),
                "run": f"gateway-agent run --control-plane {url} --token <cluster token> --data-dir ./gateway-data",
            }
        )


def _snapshot_summary(snapshot: ConfigSnapshot) -> dict[str, Any]:
    return {
        "version": snapshot.version,
        "sha256": snapshot.sha256,
        "author": snapshot.author,
        "reason": snapshot.reason,
        "created_at": snapshot.created_at,
    }


class SnapshotSummaryOutput(serializers.Serializer[ConfigSnapshot]):
    version = serializers.IntegerField()
    sha256 = serializers.CharField()
    author = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class SnapshotViewSet(ClusterScopedViewSet):
    queryset = ConfigSnapshot.objects.all()
    list_query = SNAPSHOTS
    lookup_field = "version"
    lookup_value_regex = "[0-9]+"
    scope_map = {
        "list": Scope.CATALOG_READ,
        "retrieve": Scope.CATALOG_READ,
        "diff": Scope.CATALOG_READ,
        "rollback": Scope.CATALOG_WRITE,
    }

    def _version(self, value: Any, field: str) -> ConfigSnapshot:
        version = parse_id(str(value))
        if version is None:
            raise InvalidInput.field(field, "Give a snapshot version number.")
        snapshot = ConfigSnapshot.objects.filter(cluster=self.cluster, version=version).first()
        if snapshot is None:
            raise InvalidInput.field(field, f"This cluster has no version {value}.")
        return snapshot

    @extend_schema(
        parameters=SNAPSHOTS.parameters(),
        responses=SnapshotSummaryOutput(many=True),
        operation_id="snapshots_list",
        summary="Version history",
    )
    def list(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        return self.list_page(
            self.get_queryset().defer("sections"), lambda page: [_snapshot_summary(s) for s in page]
        )

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="One version, with its document")
    def retrieve(self, request: Request, org_slug: str, cluster_id: str, version: str) -> Response:
        snapshot = self.get_object()
        return Response({**_snapshot_summary(snapshot), "document": redact(snapshot_document(snapshot))})

    @extend_schema(
        parameters=[OpenApiParameter("from", int, required=True), OpenApiParameter("to", int, required=True)],
        responses={200: OpenApiTypes.OBJECT},
        summary="Structured diff between two versions",
    )
    @action(detail=False, methods=["get"])
    def diff(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        old = self._version(request.query_params.get("from"), "from")
        new = self._version(request.query_params.get("to"), "to")
        changes = diff_documents(redact(snapshot_document(old)), redact(snapshot_document(new)))
        return Response({"from": old.version, "to": new.version, "changes": changes})

    @extend_schema(
        request=None,
        responses={201: OpenApiTypes.OBJECT},
        summary="Restore the catalog as it was at this version",
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, org_slug: str, cluster_id: str, version: str) -> Response:
        snapshot = publishing.roll_back(self.author, self.cluster, self.get_object())
        return Response(_snapshot_summary(snapshot), status=status.HTTP_201_CREATED)
