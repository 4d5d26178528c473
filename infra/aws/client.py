"""The one way the control plane talks to AWS: boto3, as our SaaS account, assuming each
organization's role with its ExternalId. Assumed credentials live in memory for one task only.

No Django here: the caller passes what settings say (our account's id, where the AWS APIs are),
and a `Session` carries its region and endpoint to every call made with it."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NetworkError

ROLE_ARN = re.compile(r"^arn:aws:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
TEMPLATE = Path(__file__).with_name("gateway-role.yaml")
DEFAULT_NAMESPACE = "gateway-cloud"
SESSION_NAME = "gateway-cloud-deployer"
# What AWS answers when the same call may work later: throttling, AWS's own failures.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "ServerException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


class AwsError(RuntimeError):
    """AWS refused or failed: the message says what, for the step log and the API."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self._transient = transient

    @property
    def transient(self) -> bool:
        """The network or AWS itself failed (or throttled us): trying again later may work. Not
        a refusal: a missing permission, a wrong ExternalId, a cluster that is not there."""
        return self._transient or is_transient(self.__cause__)


def is_transient(exc: BaseException | None) -> bool:
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return exc.response.get("Error", {}).get("Code") in TRANSIENT_CODES or int(status) >= 500
    return isinstance(exc, NetworkError | HTTPClientError)  # no connection, a timeout, a hang-up


@dataclass(frozen=True)
class Session:
    """Credentials (ours, or a customer role's), the region, and where the AWS APIs are (None:
    AWS itself; tests point it at moto)."""

    boto: boto3.Session
    region: str = "us-east-1"
    endpoint_url: str | None = None

    def client(self, service: str) -> BaseClient:
        return self.boto.client(service, region_name=self.region, endpoint_url=self.endpoint_url or None)


def role_template(trusted_account: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """The role's CloudFormation template, trusting `trusted_account` (our SaaS account)."""
    return TEMPLATE.read_text().format(trusted_account=trusted_account, namespace=namespace)


def quick_create_url(template_url: str, external_id: str, region: str = "us-east-1") -> str:
    """The CloudFormation console's quick-create link, the ExternalId passed as a parameter."""
    return (
        f"https://console.aws.amazon.com/cloudformation/home?region={region}#/stacks/quickcreate"
        f"?templateURL={quote(template_url, safe='')}&stackName=gateway-cloud"
        f"&param_ExternalId={quote(external_id)}"
    )


def assume(role_arn: str, external_id: str, region: str, endpoint_url: str | None = None) -> Session:
    """A session as the customer's role, assumed as our own; the ExternalId goes with every
    assume-role."""
    try:
        answer = (
            own_session(region, endpoint_url)
            .client("sts")
            .assume_role(
                RoleArn=role_arn, RoleSessionName=SESSION_NAME, ExternalId=external_id, DurationSeconds=900
            )
        )
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"Cannot assume {role_arn} with this organization's ExternalId: {exc}") from exc
    credentials = answer["Credentials"]
    boto = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
    return Session(boto, region, endpoint_url)


def own_session(region: str, endpoint_url: str | None = None) -> Session:
    """Our SaaS account's own credentials (the standard AWS environment): hosted gateways, and
    who assumes customers' roles."""
    return Session(boto3.Session(region_name=region), region, endpoint_url)


def preflight(session: Session) -> str:
    """What the role can do, checked: who it is, and that it may list EKS clusters. Returns its
    account id."""
    try:
        identity = session.client("sts").get_caller_identity()
        session.client("eks").list_clusters(maxResults=1)
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"The role lacks a permission it needs: {exc}") from exc
    return str(identity["Account"])


def list_eks_clusters(session: Session) -> list[str]:
    try:
        pages = session.client("eks").get_paginator("list_clusters").paginate()
        return sorted(name for page in pages for name in page["clusters"])
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"Cannot list EKS clusters in {session.region}: {exc}") from exc


@dataclass(frozen=True)
class EksCluster:
    name: str
    endpoint: str
    ca_data: str
    status: str


def describe_eks_cluster(session: Session, name: str) -> EksCluster:
    try:
        cluster = session.client("eks").describe_cluster(name=name)["cluster"]
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"Cannot describe EKS cluster {name} in {session.region}: {exc}") from exc
    if cluster.get("status") != "ACTIVE":
        raise AwsError(f"EKS cluster {name} is {cluster.get('status')}, not ACTIVE yet.")
    ca: dict[str, Any] = cluster.get("certificateAuthority") or {}
    return EksCluster(name, str(cluster.get("endpoint", "")), str(ca.get("data", "")), str(cluster["status"]))


def eks_bearer_token(session: Session, cluster_name: str) -> str:
    """What `aws eks get-token` makes: a presigned STS GetCallerIdentity URL carrying the
    cluster's name in the signed `x-k8s-aws-id` header, base64url-encoded."""
    sts = session.client("sts")

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster_name

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


# --- clusters we create for the customer (the template's AllowClusterCreation) ----------------

NODE_GROUP = "gateways"


def companion_role(deployer_role_arn: str, kind: str) -> str:
    """The EKS cluster ("eks") or node ("nodes") role the template made beside the deployer."""
    if "/gateway-cloud-deployer-" not in deployer_role_arn:
        raise AwsError("The role was not made by our template: cannot find its EKS cluster and node roles.")
    return deployer_role_arn.replace("/gateway-cloud-deployer-", f"/gateway-cloud-{kind}-")


def _not_found(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException")


def create_eks_cluster(session: Session, name: str, deployer_role_arn: str) -> str:
    """Create the cluster (and its node group) unless it exists; returns the cluster's status."""
    eks = session.client("eks")
    try:
        return str(eks.describe_cluster(name=name)["cluster"]["status"])
    except ClientError as exc:
        if not _not_found(exc):
            raise AwsError(f"Cannot look up EKS cluster {name}: {exc}") from exc
    try:
        subnets = session.client("ec2").describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}]
        )["Subnets"]
        if len(subnets) < 2:
            raise AwsError(f"{session.region} has fewer than two default subnets for the cluster.")
        cluster = eks.create_cluster(
            name=name,
            roleArn=companion_role(deployer_role_arn, "eks"),
            resourcesVpcConfig={"subnetIds": [s["SubnetId"] for s in subnets[:3]]},
            accessConfig={"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True},
            tags={"managed-by": "gateway-cloud"},
        )["cluster"]
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"Cannot create EKS cluster {name}: {exc}") from exc
    return str(cluster["status"])


def create_node_group(session: Session, name: str, deployer_role_arn: str, size: int) -> str:
    eks = session.client("eks")
    try:
        return str(eks.describe_nodegroup(clusterName=name, nodegroupName=NODE_GROUP)["nodegroup"]["status"])
    except ClientError as exc:
        if not _not_found(exc):
            raise AwsError(f"Cannot look up the node group of {name}: {exc}") from exc
    try:
        subnets = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]["subnetIds"]
        group = eks.create_nodegroup(
            clusterName=name,
            nodegroupName=NODE_GROUP,
            nodeRole=companion_role(deployer_role_arn, "nodes"),
            subnets=subnets,
            scalingConfig={"minSize": size, "maxSize": max(size * 2, 2), "desiredSize": size},
            instanceTypes=["t3.medium"],
            tags={"managed-by": "gateway-cloud"},
        )["nodegroup"]
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(f"Cannot create the node group of {name}: {exc}") from exc
    return str(group["status"])


def delete_eks_cluster(session: Session, name: str) -> str:
    """Delete the node group, then the cluster; what is already gone is fine."""
    eks = session.client("eks")
    removed = []
    for call, kwargs, what in (
        (eks.delete_nodegroup, {"clusterName": name, "nodegroupName": NODE_GROUP}, "node group"),
        (eks.delete_cluster, {"name": name}, "cluster"),
    ):
        try:
            call(**kwargs)
            removed.append(what)
        except ClientError as exc:
            if not _not_found(exc):
                raise AwsError(f"Cannot delete the {what} of {name}: {exc}") from exc
    return ", ".join(removed) or "nothing left"
