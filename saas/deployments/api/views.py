"""Connecting an AWS account and deploying gateways into its EKS clusters. Only owners and
admins connect accounts, see the ExternalId and deploy; every member but billing reads
deployments and their step logs.

No request waits on AWS or Kubernetes: verifying a role, listing EKS clusters and every
deployment operation answer 202 at once with the resource a task then updates (its status, its
message or step log), to poll with GET."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.validation import InputValidator, StrictCharField
from saas.deployments import services
from saas.deployments.models import AwsConnection, DeploymentStep, EksClusterListing, GatewayDeployment
from saas.gateways.api.scoping import ClusterScopedViewSet
from saas.gateways.services import Author
from tenants.api.scoping import OrganizationScopedViewSet
from tenants.roles import Scope


def role_template(request: HttpRequest) -> HttpResponse:
    """The CloudFormation template of the role customers create (public: it holds no secret)."""
    return HttpResponse(services.role_template(), content_type="application/x-yaml")


def _external_id_hint(external_id: str) -> str:
    return f"{external_id[:4]}…{external_id[-4:]}"


class ConnectionOutput(serializers.ModelSerializer[AwsConnection]):
    external_id = serializers.SerializerMethodField(
        help_text="The ExternalId the role must require: in clear until a role is verified with it (to "
        "create the role), then only a hint (`gwc-…abcd`): the role's trust policy holds it."
    )
    quick_create_url = serializers.SerializerMethodField(
        help_text="CloudFormation's quick-create link for the role, with the ExternalId: until a role "
        "is verified with it, then empty."
    )
    template_url = serializers.SerializerMethodField()
    connected = serializers.SerializerMethodField(
        help_text="A verified role is in use (`role_arn`): deploys may start. A new role being verified, "
        "or one that failed to, leaves it so."
    )

    class Meta:
        model = AwsConnection
        fields = [
            "external_id",
            "role_arn",
            "account_id",
            "verified_at",
            "connected",
            "status",
            "requested_role_arn",
            "requested_at",
            "attempts",
            "message",
            "last_error",
            "template_url",
            "quick_create_url",
        ]
        extra_kwargs = {
            "status": {"help_text": "The latest verification's: verifying, verified or failed."},
            "message": {"help_text": "What the latest verification is doing, or its outcome."},
            "requested_role_arn": {"help_text": "The role ARN of the latest verification."},
        }

    def get_template_url(self, connection: AwsConnection) -> str:
        return services.template_url()

    def get_external_id(self, connection: AwsConnection) -> str:
        external_id = connection.external_id
        return external_id if connection.verified_at is None else _external_id_hint(external_id)

    def get_quick_create_url(self, connection: AwsConnection) -> str:
        return services.quick_create_url(connection) if connection.verified_at is None else ""

    def get_connected(self, connection: AwsConnection) -> bool:
        return connection.verified_at is not None


class ConnectInput(InputValidator):
    role_arn = StrictCharField(max_length=2048)


class EksClustersOutput(serializers.ModelSerializer[EksClusterListing]):
    class Meta:
        model = EksClusterListing
        fields = ["region", "status", "clusters", "message", "attempts", "requested_at", "finished_at"]
        extra_kwargs = {"status": {"help_text": "listing (a task is at it), listed or failed."}}


class EksClustersInput(InputValidator):
    region = StrictCharField(max_length=32)


REGION_PARAMETER = OpenApiParameter("region", str, required=False, description="An AWS region (us-east-1).")


class AwsConnectionViewSet(OrganizationScopedViewSet):
    scope_map = {
        "list": Scope.CLUSTER_WRITE,
        "create": Scope.CLUSTER_WRITE,
        "eks_clusters": Scope.CLUSTER_WRITE,
        "list_eks_clusters": Scope.CLUSTER_WRITE,
    }

    @property
    def author(self) -> Author:
        return Author(actor=self.actor, organization=self.organization)

    @extend_schema(responses={200: ConnectionOutput}, operation_id="aws_connection")
    def list(self, request: Request, org_slug: str) -> Response:
        return Response(ConnectionOutput(services.connection_for()).data)

    @extend_schema(request=ConnectInput, responses={202: ConnectionOutput}, operation_id="aws_connect")
    def create(self, request: Request, org_slug: str) -> Response:
        """Verify a role ARN: answers 202 (status `verifying`) once its form is checked; a task
        assumes the role and checks it, then the connection's status is `verified` or `failed`."""
        data = ConnectInput(data=request.data)
        data.is_valid(raise_exception=True)
        connection = services.connect_account(self.author, data.validated_data["role_arn"])
        connection.refresh_from_db()  # as the task left it, when it ran at once
        return Response(ConnectionOutput(connection).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[REGION_PARAMETER],
        responses={200: EksClustersOutput},
        operation_id="aws_eks_clusters",
    )
    def eks_clusters(self, request: Request, org_slug: str) -> Response:
        """The EKS clusters last listed in the region (404 before the first listing)."""
        region = request.query_params.get("region", "us-east-1")
        return Response(EksClustersOutput(services.eks_listing(region)).data)

    @extend_schema(
        request=EksClustersInput, responses={202: EksClustersOutput}, operation_id="aws_list_eks_clusters"
    )
    def list_eks_clusters(self, request: Request, org_slug: str) -> Response:
        """List the region's EKS clusters again: 202 (status `listing`); poll the GET."""
        data = EksClustersInput(data=request.data)
        data.is_valid(raise_exception=True)
        listing = services.request_eks_listing(self.author, data.validated_data["region"])
        listing.refresh_from_db()
        return Response(EksClustersOutput(listing).data, status=status.HTTP_202_ACCEPTED)


class StepOutput(serializers.ModelSerializer[DeploymentStep]):
    class Meta:
        model = DeploymentStep
        fields = ["position", "name", "status", "started_at", "finished_at", "attempts", "message"]


class DeploymentOutput(serializers.ModelSerializer[GatewayDeployment]):
    steps = StepOutput(many=True, read_only=True)
    latest_image = serializers.SerializerMethodField(
        help_text="This release's gateway image: upgrade/ applies it."
    )

    def get_latest_image(self, deployment: GatewayDeployment) -> str:
        return str(settings.SAAS_GATEWAY_IMAGE)

    class Meta:
        model = GatewayDeployment
        fields = [
            "id",
            "cluster_id",
            "region",
            "eks_cluster",
            "namespace",
            "replicas",
            "max_replicas",
            "cpu",
            "memory",
            "upstream_cidrs",
            "status",
            "operation",
            "message",
            "load_balancer_hostname",
            "image",
            "latest_image",
            "hosted",
            "created_eks_cluster",
            "created_at",
            "updated_at",
            "steps",
        ]


class DeploymentChange(InputValidator):
    """What a deployment's PATCH may change."""

    replicas = serializers.IntegerField(required=False)
    max_replicas = serializers.IntegerField(required=False)
    cpu = StrictCharField(max_length=16, required=False)
    memory = StrictCharField(max_length=16, required=False)
    upstream_cidrs = serializers.ListField(child=StrictCharField(max_length=64), required=False)


class DeploymentInput(DeploymentChange):
    """A new deployment: where it goes, and all a change may set."""

    hosted = serializers.BooleanField(required=False)
    region = StrictCharField(max_length=32, required=False)
    eks_cluster = StrictCharField(max_length=100, required=False)
    create_eks_cluster = serializers.BooleanField(required=False)
    namespace = StrictCharField(max_length=63, required=False)


class TeardownInput(InputValidator):
    delete_eks_cluster = serializers.BooleanField(required=False)


class DeploymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ClusterScopedViewSet):
    queryset = GatewayDeployment.objects.prefetch_related("steps").order_by("-id")
    serializer_class = DeploymentOutput
    scope_map = {
        "list": Scope.CATALOG_READ,
        "retrieve": Scope.CATALOG_READ,
        "create": Scope.CLUSTER_WRITE,
        "partial_update": Scope.CLUSTER_WRITE,
        "teardown": Scope.CLUSTER_WRITE,
        "retry": Scope.CLUSTER_WRITE,
        "upgrade": Scope.CLUSTER_WRITE,
    }

    def _accepted(self, deployment: GatewayDeployment) -> Response:
        deployment = self.get_queryset().get(pk=deployment.pk)
        return Response(DeploymentOutput(deployment).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=DeploymentInput, responses={202: DeploymentOutput})
    def create(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        data = DeploymentInput(data=request.data)
        data.is_valid(raise_exception=True)
        fields: dict[str, Any] = dict(data.validated_data)
        return self._accepted(services.start_deployment(self.author, self.cluster, fields))

    @extend_schema(request=DeploymentChange, responses={202: DeploymentOutput})
    def partial_update(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        data = DeploymentChange(data=request.data)
        data.is_valid(raise_exception=True)
        return self._accepted(
            services.change_deployment(self.author, self.get_object(), dict(data.validated_data))
        )

    @extend_schema(request=TeardownInput, responses={202: DeploymentOutput})
    def teardown(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        data = TeardownInput(data=request.data)
        data.is_valid(raise_exception=True)
        delete = bool(data.validated_data.get("delete_eks_cluster", False))
        return self._accepted(
            services.start_teardown(self.author, self.get_object(), delete_eks_cluster=delete)
        )

    @extend_schema(request=None, responses={202: DeploymentOutput})
    def upgrade(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        return self._accepted(services.upgrade_deployment(self.author, self.get_object()))

    @extend_schema(request=None, responses={202: DeploymentOutput})
    def retry(self, request: Request, org_slug: str, cluster_id: str, pk: str) -> Response:
        return self._accepted(services.retry(self.author, self.get_object()))
