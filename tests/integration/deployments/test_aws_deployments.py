"""One-click deploys into a customer's AWS account, through real boto3 calls against moto's
server (STS, CloudFormation, EKS, IAM) and the real kubernetes client against a fake Kubernetes
API (tests/fakes/kubernetes_api.py) that records the server-side applies.

Celery runs eagerly here (tests/conftest.py): a request's task has run when its 202 comes back,
so the GET that follows shows the outcome. `held` keeps tasks queued instead, as a busy worker
would, to see what the API answers meanwhile."""

from __future__ import annotations

import base64
import threading
from typing import Any

import boto3
import httpx
import pytest
from django.db import connections
from django_tenants.utils import schema_context
from moto.server import ThreadedMotoServer

import infra.aws
from gateway_agent.protocol import Heartbeat, RegisterRequest
from saas.deployments import services, tasks
from saas.deployments.models import AwsConnection
from saas.gateways.agents import authenticate_agent, record_heartbeat, register_instance
from saas.gateways.models import ClusterToken, GatewayCluster
from tenants.models import AuditEntry
from tenants.roles import Role
from tests.fakes.kubernetes_api import FakeKubernetes
from tests.fakes.proxy import ForwardingProxy

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def aws_fake(settings, monkeypatch):
    server = ThreadedMotoServer(port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    httpx.post(f"http://{host}:{port}/moto-api/reset")  # moto's state lives in this process
    proxy = ForwardingProxy(f"http://{host}:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.SAAS_AWS_ENDPOINT_URL = proxy.url
    settings.SAAS_AWS_ACCOUNT_ID = "111111111111"
    yield proxy
    proxy.close()
    server.stop()


class Cluster(FakeKubernetes):
    """A cluster whose gateway pods come online: when the agent token's Secret is applied, an
    agent registers and heartbeats with it, as a pod would."""

    def dispatch(self, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        answer = super().dispatch(method, path, *args, **kwargs)
        if method == "PATCH" and path.endswith("/secrets/gateway-token") and answer.status < 300:
            namespace = path.split("/namespaces/")[1].split("/")[0]
            secret = self.get("Secret", "gateway-token", namespace) or {}
            token = base64.b64decode(secret["data"]["token"]).decode()
            threading.Thread(target=_pod_comes_online, args=(token,)).start()
        return answer


def _pod_comes_online(token: str) -> None:
    try:
        ctx = authenticate_agent(token)
        assert ctx is not None
        instance = register_instance(ctx, RegisterRequest(hostname="gateway-7d9f", agent_version="0.1.0"))
        record_heartbeat(ctx, Heartbeat(instance_id=str(instance.instance_id)))
    finally:
        connections.close_all()


@pytest.fixture
def kube(settings):
    cluster = Cluster()
    settings.SAAS_EKS_ENDPOINT_OVERRIDE = cluster.url
    settings.SAAS_DEPLOY_WAIT_S = 10
    yield cluster
    cluster.close()


def _aws(service: str, proxy: ForwardingProxy) -> Any:
    return boto3.client(service, region_name="us-east-1", endpoint_url=proxy.url)


def _role_for(org_external_id: str, proxy: ForwardingProxy) -> str:
    """What the customer does: launch our template with the quick-create link's ExternalId."""
    cfn = _aws("cloudformation", proxy)
    cfn.create_stack(
        StackName="gateway-cloud",
        TemplateBody=services.role_template(),
        Parameters=[{"ParameterKey": "ExternalId", "ParameterValue": org_external_id}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    outputs = cfn.describe_stacks(StackName="gateway-cloud")["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "RoleArn")


def _connect(world, proxy) -> str:
    org = world.a.org
    owner = world.a.client(Role.OWNER)
    connection = owner.get(f"/api/v1/orgs/{org.slug}/aws/connection/").json()
    role_arn = _role_for(connection["external_id"], proxy)
    answer = owner.post(f"/api/v1/orgs/{org.slug}/aws/connection/", {"role_arn": role_arn}, format="json")
    assert answer.status_code == 202, answer.content
    assert owner.get(f"/api/v1/orgs/{org.slug}/aws/connection/").json()["connected"]
    return connection["external_id"]


class Held(list[tuple[Any, tuple[Any, ...], dict[str, Any]]]):
    """Tasks queued and not yet run, as with a busy worker."""

    def run(self) -> None:
        while self:
            task, args, kwargs = self.pop(0)
            result = task.apply(args=args, kwargs=kwargs)
            assert result.successful(), result.traceback


@pytest.fixture
def held(monkeypatch) -> Held:
    queued = Held()
    for task in (tasks.verify_connection_task, tasks.list_eks_clusters_task, tasks.run_operation_task):

        def hold(
            args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None, _task=task, **_: Any
        ) -> None:
            queued.append((_task, tuple(args), dict(kwargs or {})))

        monkeypatch.setattr(task, "apply_async", hold)
    return queued


def _eks_cluster(proxy, name: str) -> None:
    """An EKS cluster already in the customer's account (moto)."""
    _aws("eks", proxy).create_cluster(
        name=name, roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": []}
    )


def _gateway_cluster(org) -> tuple[GatewayCluster, str]:
    """A gateway cluster of `org`, and the URL of its deployments."""
    with schema_context(org.schema_name):
        cluster = GatewayCluster.objects.create(name="edge")
    return cluster, f"/api/v1/orgs/{org.slug}/clusters/{cluster.id}/deployments/"


def test_an_account_is_connected_with_the_organizations_external_id(world, aws_fake):
    org, other = world.a.org, world.b.org
    admin = world.a.client(Role.ADMIN)
    connection = admin.get(f"/api/v1/orgs/{org.slug}/aws/connection/").json()
    external_id = connection["external_id"]
    assert len(external_id) >= 32 and connection["connected"] is False
    assert f"param_ExternalId={external_id}" in connection["quick_create_url"]
    assert "templateURL=http%3A%2F%2F" in connection["quick_create_url"]
    # Another organization has its own, and developers do not see it.
    other_id = (
        world.b.client(Role.OWNER).get(f"/api/v1/orgs/{other.slug}/aws/connection/").json()["external_id"]
    )
    assert other_id != external_id
    assert world.a.client(Role.DEVELOPER).get(f"/api/v1/orgs/{org.slug}/aws/connection/").status_code == 403
    # The template, launched, makes a role trusting our account only with that ExternalId.
    role_arn = _role_for(external_id, aws_fake)
    role = _aws("iam", aws_fake).get_role(RoleName=role_arn.split("/")[-1])["Role"]
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::111111111111:root"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": external_id}}
    bad = admin.post(
        f"/api/v1/orgs/{org.slug}/aws/connection/", {"role_arn": "arn:aws:iam::1:user/x"}, format="json"
    )
    assert bad.status_code == 400 and "role_arn" in bad.json()["errors"] and bad.json()["detail"]
    assert aws_fake.actions("AssumeRole") == []  # its form is checked first, in the request
    answer = admin.post(f"/api/v1/orgs/{org.slug}/aws/connection/", {"role_arn": role_arn}, format="json")
    assert answer.status_code == 202, answer.content
    connected = admin.get(f"/api/v1/orgs/{org.slug}/aws/connection/").json()
    assert connected["status"] == "verified" and connected["connected"], connected
    assert connected["account_id"] == "123456789012" and connected["role_arn"] == role_arn
    assert connected["message"].startswith("Assumed the role in account 123456789012")
    # Connected: the ExternalId is in the role's trust policy now; the API shows only a hint, and
    # stores it encrypted.
    assert connected["external_id"] == f"gwc-…{external_id[-4:]}" and connected["quick_create_url"] == ""
    with schema_context(org.schema_name):
        stored = AwsConnection.objects.get()
    assert external_id not in stored.external_id_ciphertext and stored.external_id == external_id
    assume_roles = aws_fake.actions("AssumeRole")
    assert assume_roles and all(call["ExternalId"] == external_id for call in assume_roles)
    # Both halves audited: the request, and the verification's outcome, as the one who asked.
    entries = AuditEntry.objects.filter(organization=org, action__startswith="aws.").order_by("id")
    assert [(e.action, e.actor_email) for e in entries] == [
        ("aws.verification_requested", world.a.user(Role.ADMIN).email),
        ("aws.connected", world.a.user(Role.ADMIN).email),
    ]
    assert entries[1].changes["after"] == {"role_arn": role_arn, "account_id": "123456789012"}
    # Organization B's connection is untouched.
    other_connection = world.b.client(Role.OWNER).get(f"/api/v1/orgs/{other.slug}/aws/connection/").json()
    assert other_connection["status"] == "not_connected" and not other_connection["connected"]


def test_verifying_a_role_answers_at_once_and_the_outcome_is_polled(world, aws_fake, held):
    org = world.a.org
    owner = world.a.client(Role.OWNER)
    url = f"/api/v1/orgs/{org.slug}/aws/connection/"
    role_arn = _role_for(owner.get(url).json()["external_id"], aws_fake)
    answer = owner.post(url, {"role_arn": role_arn}, format="json")
    assert answer.status_code == 202, answer.content
    pending = answer.json()
    assert pending["status"] == "verifying" and pending["requested_role_arn"] == role_arn
    assert not pending["connected"] and pending["role_arn"] == "" and pending["message"]
    assert aws_fake.actions("AssumeRole") == []  # nothing asked of AWS in the request
    assert owner.get(url).json()["status"] == "verifying"
    # Nothing can be deployed, or listed, before the role is verified.
    _, base = _gateway_cluster(org)
    early = owner.post(base, {"region": "us-east-1", "eks_cluster": "prod-eks"}, format="json")
    assert early.status_code == 409 and "Connect an AWS account" in early.json()["detail"]
    eks = f"/api/v1/orgs/{org.slug}/aws/eks-clusters/"
    assert owner.post(eks, {"region": "us-east-1"}, format="json").status_code == 409
    [(task, args, _)] = held
    assert task is tasks.verify_connection_task and all(isinstance(a, int | str) for a in args)
    held.run()
    done = owner.get(url).json()
    assert done["status"] == "verified" and done["connected"] and done["attempts"] == 1

    # The EKS clusters are listed by a task too; the GET shows the latest listing.
    _eks_cluster(aws_fake, "prod-eks")
    assert owner.get(f"{eks}?region=us-east-1").status_code == 404
    assert "region" in owner.post(eks, {"region": "mars"}, format="json").json()["errors"]
    assert owner.get(f"{eks}?region=mars").status_code == 400
    assert world.a.client(Role.DEVELOPER).post(eks, {"region": "us-east-1"}, format="json").status_code == 403
    listing = owner.post(eks, {"region": "us-east-1"}, format="json")
    assert listing.status_code == 202 and listing.json()["status"] == "listing", listing.content
    assert owner.get(f"{eks}?region=us-east-1").json()["status"] == "listing"
    held.run()
    listed = owner.get(f"{eks}?region=us-east-1").json()
    assert listed["status"] == "listed" and listed["clusters"] == ["prod-eks"], listed
    assert AuditEntry.objects.filter(organization=org, action="aws.eks_clusters_requested").count() == 1
    # Organization B sees none of it.
    assert (
        world.b.client(Role.OWNER).get(f"/api/v1/orgs/{world.b.org.slug}/aws/eks-clusters/").status_code
        == 404
    )


def test_a_refused_role_fails_with_its_reason_and_the_role_in_use_stays(world, aws_fake, monkeypatch):
    org = world.a.org
    owner = world.a.client(Role.OWNER)
    url = f"/api/v1/orgs/{org.slug}/aws/connection/"
    _connect(world, aws_fake)
    working = owner.get(url).json()

    def refuse(session: Any) -> str:
        raise infra.aws.AwsError("The role lacks a permission it needs: AccessDenied (eks:ListClusters)")

    monkeypatch.setattr(infra.aws, "preflight", refuse)
    other_role = "arn:aws:iam::123456789012:role/gateway-cloud-deployer-other"
    assert owner.post(url, {"role_arn": other_role}, format="json").status_code == 202
    failed = owner.get(url).json()
    assert failed["status"] == "failed" and failed["attempts"] == 1  # a refusal is not tried again
    assert "AccessDenied" in failed["message"] and failed["last_error"] == failed["message"]
    assert failed["requested_role_arn"] == other_role
    # The role verified before is still the one in use.
    assert failed["connected"] and failed["role_arn"] == working["role_arn"]
    audit = AuditEntry.objects.filter(organization=org, action="aws.verification_failed").get()
    assert audit.changes["after"]["role_arn"] == other_role


def test_aws_unreachable_is_tried_again_a_bounded_number_of_times(world, aws_fake, monkeypatch):
    org = world.a.org
    owner = world.a.client(Role.OWNER)
    url = f"/api/v1/orgs/{org.slug}/aws/connection/"
    role_arn = _role_for(owner.get(url).json()["external_id"], aws_fake)
    assumed = []
    real_assume = infra.aws.assume

    def flaky(*args: Any, **kwargs: Any) -> Any:
        assumed.append(args)
        if len(assumed) == 1:
            aws_fake.down.set()  # the first attempt finds AWS unreachable
        try:
            return real_assume(*args, **kwargs)
        finally:
            aws_fake.down.clear()

    monkeypatch.setattr(infra.aws, "assume", flaky)
    assert owner.post(url, {"role_arn": role_arn}, format="json").status_code == 202
    connection = owner.get(url).json()
    assert connection["status"] == "verified" and connection["attempts"] == 2, connection

    # Down for good: every attempt fails, then the verification does, saying why.
    monkeypatch.setattr(infra.aws, "assume", real_assume)
    aws_fake.down.set()
    assert owner.post(url, {"role_arn": role_arn}, format="json").status_code == 202
    connection = owner.get(url).json()
    assert connection["status"] == "failed" and connection["attempts"] == tasks.AWS_ATTEMPTS, connection
    assert "Cannot assume" in connection["message"]
    with schema_context(org.schema_name):
        assert AwsConnection.objects.get().status == "failed"


def test_deploy_upgrade_retry_and_teardown_converge(world, aws_fake, kube, settings):
    org = world.a.org
    external_id = _connect(world, aws_fake)
    _eks_cluster(aws_fake, "prod-eks")
    cluster, base = _gateway_cluster(org)
    admin = world.a.client(Role.ADMIN)
    eks = f"/api/v1/orgs/{org.slug}/aws/eks-clusters/"
    assert admin.post(eks, {"region": "us-east-1"}, format="json").status_code == 202
    listed = admin.get(f"{eks}?region=us-east-1").json()
    assert listed["status"] == "listed" and listed["clusters"] == ["prod-eks"], listed
    body = {
        "region": "us-east-1",
        "eks_cluster": "prod-eks",
        "replicas": 2,
        "upstream_cidrs": ["10.20.0.0/16"],
    }
    assert world.a.client(Role.DEVELOPER).post(base, body, format="json").status_code == 403
    assert admin.post(base, {**body, "upstream_cidrs": ["nope"]}, format="json").status_code == 400

    started = admin.post(base, body, format="json")
    assert started.status_code == 202, started.content
    deployment = world.a.client(Role.VIEWER).get(f"{base}{started.json()['id']}/").json()
    assert deployment["status"] == "succeeded", deployment
    assert [s["name"] for s in deployment["steps"]][:4] == [
        "assume_role",
        "describe_eks_cluster",
        "authenticate",
        "apply_namespace",
    ]
    assert all(s["status"] == "succeeded" and s["finished_at"] for s in deployment["steps"])
    assert deployment["load_balancer_hostname"].endswith(".elb.us-east-1.amazonaws.com")
    assert deployment["steps"][-1]["message"] == "1 instance(s) online"
    kinds = {a.kind for a in kube.applies}
    assert kinds == {
        "Namespace",
        "NetworkPolicy",
        "ServiceAccount",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    assert all(a.field_manager == "gateway-saas" for a in kube.applies)
    assert all((t or "").startswith("Bearer k8s-aws-v1.") for t in kube.tokens)
    assert all(call["ExternalId"] == external_id for call in aws_fake.actions("AssumeRole"))

    # Upgrade: nothing to do on this release's image; a new release's image rolls out.
    url = f"{base}{deployment['id']}/"
    assert deployment["image"] == deployment["latest_image"] == settings.SAAS_GATEWAY_IMAGE
    assert admin.post(f"{url}upgrade/").status_code == 409
    settings.SAAS_GATEWAY_IMAGE = "registry.example.com/gateway-agent:0.2.0"
    assert world.a.client(Role.DEVELOPER).post(f"{url}upgrade/").status_code == 403
    assert admin.get(url).json()["latest_image"] == "registry.example.com/gateway-agent:0.2.0"
    upgraded = admin.post(f"{url}upgrade/")
    assert upgraded.status_code == 202, upgraded.content
    assert admin.get(url).json()["image"] == "registry.example.com/gateway-agent:0.2.0"
    [container] = kube.get("Deployment", "gateway", "gateway-cloud")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/gateway-agent:0.2.0"
    upgrade_audit = AuditEntry.objects.get(organization=org, action="deployment.upgraded")
    assert upgrade_audit.changes["after"] == {"image": "registry.example.com/gateway-agent:0.2.0"}

    # Scale to 3: applied again, converging; the agent token rotates, the old one is revoked, and
    # the pods roll onto the new one (a container reads its token only when it starts).
    def token_checksum() -> str:
        template = kube.get("Deployment", "gateway", "gateway-cloud")["spec"]["template"]
        return template["metadata"]["annotations"]["checksum/token"]

    before_rotation = token_checksum()
    assert admin.patch(url, {"replicas": 3}, format="json").status_code == 202
    assert token_checksum() != before_rotation
    assert kube.get("Deployment", "gateway", "gateway-cloud")["spec"]["replicas"] == 3
    with schema_context(org.schema_name):
        tokens = list(ClusterToken.objects.filter(cluster=cluster).order_by("id"))
    # (one token per run: the deploy, the upgrade, this scale)
    assert len(tokens) == 3 and all(t.revoked_at for t in tokens[:2]) and tokens[2].revoked_at is None

    # A failure half way leaves a clear message; a retry resumes there and converges.
    kube.fail_next("PATCH", "Service", times=1, status=500)
    assert admin.patch(url, {"cpu": "500m"}, format="json").status_code == 202
    failed = admin.get(url).json()
    assert failed["status"] == "failed" and failed["message"].startswith("apply_service:")
    step = next(s for s in failed["steps"] if s["name"] == "apply_service")
    assert step["status"] == "failed" and "HTTP 500" in step["message"]
    assert admin.post(f"{url}retry/").status_code == 202
    retried = admin.get(url).json()
    assert retried["status"] == "succeeded"
    assert next(s for s in retried["steps"] if s["name"] == "apply_deployment")["attempts"] == 1
    assert (
        kube.get("Deployment", "gateway", "gateway-cloud")["spec"]["template"]["spec"]["containers"][0][
            "resources"
        ]["requests"]["cpu"]
        == "500m"
    )

    # Teardown removes everything the deploy created, and revokes the token; twice is harmless.
    assert admin.post(f"{url}teardown/").status_code == 202
    assert admin.get(url).json()["status"] == "torn_down"
    assert kube.get("Namespace", "gateway-cloud") is None
    for kind in ("Deployment", "Service", "Secret", "NetworkPolicy"):
        assert kube.objects(kind) == []
    with schema_context(org.schema_name):
        assert not ClusterToken.objects.filter(cluster=cluster, revoked_at__isnull=True).exists()
    assert admin.post(f"{url}teardown/").status_code == 409
    # Organization B sees none of it.
    other = world.b.client(Role.OWNER).get(
        f"/api/v1/orgs/{world.b.org.slug}/clusters/{cluster.id}/deployments/"
    )
    assert other.status_code == 404


def test_a_rollout_that_never_completes_fails_with_a_clear_message(world, aws_fake, kube):
    org = world.a.org
    _connect(world, aws_fake)
    _eks_cluster(aws_fake, "prod-eks")
    _, base = _gateway_cluster(org)
    kube.fail_rollout = True
    started = world.a.client(Role.OWNER).post(
        base, {"region": "us-east-1", "eks_cluster": "prod-eks"}, format="json"
    )
    deployment = world.a.client(Role.OWNER).get(f"{base}{started.json()['id']}/").json()
    assert deployment["status"] == "failed"
    assert "progress deadline" in deployment["message"]


def test_a_new_eks_cluster_is_created_for_the_gateways_and_deleted_when_asked(world, aws_fake, kube):
    org = world.a.org
    _connect(world, aws_fake)
    _, base = _gateway_cluster(org)
    owner = world.a.client(Role.OWNER)
    body = {"region": "us-east-1", "eks_cluster": "gateways-eks", "create_eks_cluster": True}
    started = owner.post(base, body, format="json")
    assert started.status_code == 202, started.content
    deployment = owner.get(f"{base}{started.json()['id']}/").json()
    assert deployment["status"] == "succeeded", deployment
    assert [s["name"] for s in deployment["steps"]][:3] == [
        "assume_role",
        "create_eks_cluster",
        "create_node_group",
    ]
    eks = _aws("eks", aws_fake)
    created = eks.describe_cluster(name="gateways-eks")["cluster"]
    assert created["roleArn"].endswith("/gateway-cloud-eks-gateway-cloud")
    group = eks.describe_nodegroup(clusterName="gateways-eks", nodegroupName="gateways")["nodegroup"]
    assert group["nodeRole"].endswith("/gateway-cloud-nodes-gateway-cloud")
    url = f"{base}{deployment['id']}/"
    torn = owner.post(f"{url}teardown/", {"delete_eks_cluster": True}, format="json")
    assert torn.status_code == 202
    assert owner.get(url).json()["steps"][-1]["name"] == "delete_eks_cluster"
    assert owner.get(url).json()["status"] == "torn_down"
    assert eks.list_clusters()["clusters"] == []


def test_a_cluster_the_customer_made_is_never_deleted_with_the_gateway(world, aws_fake, kube):
    org = world.a.org
    _connect(world, aws_fake)
    _eks_cluster(aws_fake, "theirs")
    _, base = _gateway_cluster(org)
    owner = world.a.client(Role.OWNER)
    started = owner.post(base, {"region": "us-east-1", "eks_cluster": "theirs"}, format="json").json()
    refused = owner.post(f"{base}{started['id']}/teardown/", {"delete_eks_cluster": True}, format="json")
    assert refused.status_code == 400 and "delete_eks_cluster" in refused.json()["errors"]
    assert _aws("eks", aws_fake).list_clusters()["clusters"] == ["theirs"]


def test_hosted_gateways_run_in_our_cluster_one_namespace_per_tenant_and_isolated(
    world, aws_fake, kube, settings
):
    settings.SAAS_HOSTED_EKS_CLUSTER = "saas-gateways"
    settings.SAAS_HOSTED_POD_CIDRS = "100.64.0.0/10"
    _eks_cluster(aws_fake, "saas-gateways")
    namespaces = []
    for side in (world.a, world.b):
        _, base = _gateway_cluster(side.org)
        owner = side.client(Role.OWNER)
        assert owner.post(base, {"hosted": True, "region": "eu-west-1"}, format="json").status_code == 400
        started = owner.post(base, {"hosted": True}, format="json")
        assert started.status_code == 202, started.content
        deployment = owner.get(f"{base}{started.json()['id']}/").json()
        assert deployment["status"] == "succeeded" and deployment["hosted"], deployment
        assert deployment["steps"][0]["message"].endswith("(hosted)")
        namespaces.append(deployment["namespace"])
    assert len(set(namespaces)) == 2 and all(ns.startswith("gw-org-") for ns in namespaces)
    assert aws_fake.actions("AssumeRole") == []  # our own account: no customer role involved
    for namespace in namespaces:
        policy = kube.get("NetworkPolicy", "gateway-traffic", namespace)
        [rule] = policy["spec"]["ingress"]
        assert rule["from"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["100.64.0.0/10"]}}]
