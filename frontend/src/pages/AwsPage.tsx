import { Alert, Anchor, Badge, Button, Card, Code, Group, Loader, NumberInput, Select, Stack, Switch, TagsInput, Text, TextInput, Timeline, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { useParams } from "react-router-dom";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { keys, useAfterWrite } from "../api/queries";
import { ConfirmDialog } from "../components/ConfirmDialog";

/** `connected`: a verified role is in use. `status` and `message`: the latest verification's, which
 * a task runs after the POST answers 202 (verifying, then verified or failed). */
type Connection = { external_id: string; role_arn: string; account_id: string; connected: boolean; status: "not_connected" | "verifying" | "verified" | "failed"; requested_role_arn: string; attempts: number; message: string; quick_create_url: string; template_url: string; last_error: string };
/** The EKS clusters a task last listed in a region (the POST answers 202, status "listing"). */
type EksListing = { region: string; status: "listing" | "listed" | "failed"; clusters: string[]; message: string; attempts: number };
type Step = { position: number; name: string; status: string; started_at: string | null; finished_at: string | null; message: string };
type Deployment = { id: number; region: string; eks_cluster: string; namespace: string; replicas: number; status: string; operation: string; message: string; load_balancer_hostname: string; image: string; latest_image: string; created_eks_cluster: boolean; steps: Step[] };

const STEP_COLOR: Record<string, string> = { succeeded: "teal", failed: "red", running: "blue", pending: "gray" };
const REGION = /^[a-z]{2}(-[a-z]+)+-\d$/;
// How often what a task is doing is polled.
const POLL_MS = 1500;

/** Deploy to AWS: connect an account (quick-create link, the role ARN verified), then deploy a
 * cluster's gateways into an EKS cluster, with the step log updating live; upgrade, retry, tear down. */
export function AwsPage() {
  const { slug = "" } = useParams();
  const path = { org_slug: slug };
  const connection = useQuery({
    queryKey: keys.aws(slug),
    queryFn: async () => (await unwrap(api.GET("/api/v1/orgs/{org_slug}/aws/connection/" as never, { params: { path } } as never))) as Connection,
    // A role being verified: its outcome is polled.
    refetchInterval: (query) => ((query.state.data as Connection | undefined)?.status === "verifying" ? POLL_MS : false),
  });
  if (connection.isLoading) return <Loader aria-label="Loading the AWS connection" />;
  if (connection.isError || !connection.data) return <Alert color="red">{errorMessage(connection.error)}</Alert>;
  return (
    <Stack>
      <Title order={2}>Deploy to AWS</Title>
      <ConnectionCard slug={slug} connection={connection.data} />
      {connection.data.connected && <Deployments slug={slug} />}
    </Stack>
  );
}

function ConnectionCard({ slug, connection }: { slug: string; connection: Connection }) {
  const afterWrite = useAfterWrite(slug);
  const [roleArn, setRoleArn] = useState(connection.role_arn);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const verifying = connection.status === "verifying";
  const verify = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    // 202 at once: the role is assumed and checked in the background, its progress polled.
    const { error } = await api.POST("/api/v1/orgs/{org_slug}/aws/connection/" as never, { params: { path: { org_slug: slug } }, body: { role_arn: roleArn } } as never);
    setBusy(false);
    setErrors(error ? fieldErrors(error) : {});
    await afterWrite(keys.aws(slug));
  };
  return (
    <Card withBorder>
      <Stack>
        <Group justify="space-between">
          <Title order={4}>AWS account</Title>
          {connection.connected ? <Badge color="teal">connected to {connection.account_id}</Badge> : <Badge color="gray">not connected</Badge>}
        </Group>
        <VerificationStatus connection={connection} />
        <Text size="sm">
          1. Create the role in your account with our CloudFormation template: it trusts us only with your ExternalId <Code>{connection.external_id}</Code>.
        </Text>
        <Group>
          <Anchor href={connection.quick_create_url} target="_blank">
            Open the quick-create link
          </Anchor>
          <Anchor href={connection.template_url} target="_blank" size="sm">
            (the template)
          </Anchor>
        </Group>
        <Text size="sm">2. Paste the role ARN the stack outputs; we assume it and check its permissions.</Text>
        <Group align="end" component="form" onSubmit={verify}>
          <TextInput label="Role ARN" placeholder="arn:aws:iam::123456789012:role/gateway-cloud-deployer-..." w={480} value={roleArn} error={errors.role_arn} onChange={(e) => setRoleArn(e.currentTarget.value)} />
          <Button type="submit" loading={busy || verifying}>
            Verify and connect
          </Button>
        </Group>
      </Stack>
    </Card>
  );
}

/** What the latest verification is doing, or how it ended. */
function VerificationStatus({ connection }: { connection: Connection }) {
  if (connection.status === "verifying")
    return (
      <Group gap="xs" role="status">
        <Loader size="xs" aria-label="Verifying the role" />
        <Text size="sm">
          Verifying <Code>{connection.requested_role_arn}</Code>
          {connection.attempts > 1 ? ` (attempt ${connection.attempts})` : ""}: {connection.message}
        </Text>
      </Group>
    );
  if (connection.status === "failed")
    return (
      <Alert color="red" title={`The role ${connection.requested_role_arn} could not be verified`}>
        {connection.message}
        {connection.connected && ` The role in use is still ${connection.role_arn}.`}
      </Alert>
    );
  if (connection.status === "verified")
    return (
      <Text size="sm" c="dimmed">
        {connection.message}
      </Text>
    );
  return null;
}

function Deployments({ slug }: { slug: string }) {
  const clusters = useQuery({
    queryKey: keys.clusters(slug),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/", { params: { path: { org_slug: slug } } })),
  });
  const options = (((clusters.data as { results?: { id: number; name: string }[] } | undefined)?.results ?? []) as { id: number; name: string }[]).map((c) => ({ value: String(c.id), label: c.name }));
  const [clusterId, setClusterId] = useState<string | null>(null);
  return (
    <Stack>
      <Select label="Gateway cluster" placeholder="Pick a cluster" data={options} value={clusterId} onChange={setClusterId} w={320} />
      {clusterId && <ClusterDeployments slug={slug} clusterId={clusterId} />}
    </Stack>
  );
}

function ClusterDeployments({ slug, clusterId }: { slug: string; clusterId: string }) {
  const afterWrite = useAfterWrite(slug);
  const path = { org_slug: slug, cluster_id: clusterId };
  const deployments = useQuery({
    queryKey: keys.deployments(path),
    queryFn: async () => ((await unwrap(api.GET(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/deployments/` as never, { params: { path } } as never))) as { results: Deployment[] }).results,
    // The step log updates live while something runs.
    refetchInterval: (query) => ((query.state.data as Deployment[] | undefined) ?? []).some((d) => ["pending", "running"].includes(d.status)) ? 2000 : false,
  });
  const [tearing, setTearing] = useState<Deployment | null>(null);
  const [deleteEks, setDeleteEks] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const act = async (deployment: Deployment, action: "retry" | "teardown" | "upgrade", body: object = {}) => {
    const { error: failed } = await api.POST(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/deployments/{id}/${action}/` as never, { params: { path: { ...path, id: deployment.id } }, body } as never);
    setError(failed ? errorMessage(failed) : null);
    await afterWrite(keys.deployments(path));
  };
  const scale = async (deployment: Deployment, replicas: number) => {
    const { error: failed } = await api.PATCH(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/deployments/{id}/` as never, { params: { path: { ...path, id: deployment.id } }, body: { replicas } } as never);
    setError(failed ? errorMessage(failed) : null);
    await afterWrite(keys.deployments(path));
  };
  const live = (deployments.data ?? []).filter((d) => d.status !== "torn_down");
  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      {deployments.isLoading && <Loader aria-label="Loading deployments" />}
      {live.map((deployment) => (
        <Card key={deployment.id} withBorder>
          <Stack>
            <Group justify="space-between">
              <Text fw={600}>
                {deployment.eks_cluster} / {deployment.namespace} ({deployment.region})
              </Text>
              <Badge color={STEP_COLOR[deployment.status] ?? (deployment.status === "succeeded" ? "teal" : "gray")}>{deployment.operation}: {deployment.status}</Badge>
            </Group>
            {deployment.load_balancer_hostname && (
              <Text size="sm">
                Load balancer: <Code>{deployment.load_balancer_hostname}</Code>
              </Text>
            )}
            <Text size="sm">
              Gateway image: <Code>{deployment.image || "not applied yet"}</Code>
            </Text>
            {deployment.message && <Alert color="red">{deployment.message}</Alert>}
            <Timeline active={deployment.steps.filter((s) => s.status === "succeeded").length - 1} bulletSize={14}>
              {deployment.steps.map((step) => (
                <Timeline.Item key={step.position} color={STEP_COLOR[step.status]} title={`${step.name.replaceAll("_", " ")}: ${step.status}`}>
                  <Text size="xs" c="dimmed">
                    {step.message}
                  </Text>
                </Timeline.Item>
              ))}
            </Timeline>
            <Group>
              <NumberInput aria-label="Replicas" min={1} max={50} defaultValue={deployment.replicas} w={100} onBlur={(e) => { const n = Number(e.currentTarget.value); if (n && n !== deployment.replicas) void scale(deployment, n); }} />
              {deployment.status === "failed" && <Button variant="light" onClick={() => act(deployment, "retry")}>Retry</Button>}
              {deployment.image && deployment.image !== deployment.latest_image && deployment.status !== "running" && deployment.status !== "pending" && (
                <Button variant="light" onClick={() => act(deployment, "upgrade")}>
                  Upgrade to {deployment.latest_image}
                </Button>
              )}
              <Button color="red" variant="subtle" onClick={() => { setDeleteEks(false); setTearing(deployment); }}>
                Tear down
              </Button>
            </Group>
          </Stack>
        </Card>
      ))}
      {deployments.isSuccess && live.length === 0 && <NewDeployment slug={slug} clusterId={clusterId} />}
      <ConfirmDialog
        opened={tearing !== null}
        title="Tear down"
        confirmLabel="Tear down"
        onConfirm={async () => {
          if (tearing) await act(tearing, "teardown", { delete_eks_cluster: deleteEks });
          setTearing(null);
        }}
        onCancel={() => setTearing(null)}
      >
        <Text>Remove every object this deploy made in {tearing?.eks_cluster}, and revoke its gateway token?</Text>
        {tearing?.created_eks_cluster && <Switch label="Also delete the EKS cluster we created" checked={deleteEks} onChange={(e) => setDeleteEks(e.currentTarget.checked)} />}
      </ConfirmDialog>
    </Stack>
  );
}

function NewDeployment({ slug, clusterId }: { slug: string; clusterId: string }) {
  const afterWrite = useAfterWrite(slug);
  const [region, setRegion] = useState("us-east-1");
  const [create, setCreate] = useState(false);
  const [eksCluster, setEksCluster] = useState<string | null>(null);
  const [replicas, setReplicas] = useState<number>(2);
  const [cidrs, setCidrs] = useState<string[]>([]);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const eks = useEksClusters(slug, !create && REGION.test(region) ? region : null);
  const deploy = async (event: React.FormEvent) => {
    event.preventDefault();
    const { error: failed } = await api.POST(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/deployments/` as never, {
      params: { path: { org_slug: slug, cluster_id: clusterId } },
      body: { region, eks_cluster: eksCluster, create_eks_cluster: create, replicas, upstream_cidrs: cidrs },
    } as never);
    setErrors(failed ? fieldErrors(failed) : {});
    setError(failed ? errorMessage(failed) : null);
    await afterWrite(keys.deployments({ org_slug: slug, cluster_id: clusterId }));
  };
  return (
    <Card withBorder component="form" onSubmit={deploy}>
      <Stack>
        <Title order={4}>Deploy this cluster's gateways</Title>
        {error && <Alert color="red">{error}</Alert>}
        <TextInput label="Region" value={region} error={errors.region} onChange={(e) => setRegion(e.currentTarget.value)} w={200} />
        <Switch label="Create a new EKS cluster for the gateways" checked={create} onChange={(e) => { setCreate(e.currentTarget.checked); setEksCluster(null); }} />
        {create ? (
          <TextInput label="New EKS cluster's name" value={eksCluster ?? ""} error={errors.eks_cluster} onChange={(e) => setEksCluster(e.currentTarget.value)} w={320} />
        ) : (
          <Group align="end">
            <Select label="EKS cluster" data={eks.listing?.clusters ?? []} value={eksCluster} error={errors.eks_cluster ?? eks.error} onChange={setEksCluster} w={320} />
            <Button variant="subtle" onClick={eks.refresh} disabled={eks.listing?.status === "listing"}>
              List again
            </Button>
          </Group>
        )}
        {!create && eks.listing?.status === "listing" && (
          <Group gap="xs" role="status">
            <Loader size="xs" aria-label="Listing EKS clusters" />
            <Text size="sm">{eks.listing.message}</Text>
          </Group>
        )}
        <NumberInput label="Replicas" min={1} max={50} value={replicas} error={errors.replicas} onChange={(v) => setReplicas(Number(v) || 1)} w={120} />
        <TagsInput label="Upstream CIDRs" description="Where the gateways may send traffic (their egress policy)" value={cidrs} error={errors.upstream_cidrs} onChange={setCidrs} />
        <Group>
          <Button type="submit">Deploy</Button>
        </Group>
      </Stack>
    </Card>
  );
}

/** The EKS clusters of `region` (none: not wanted), as a task lists them: the latest listing is
 * read, one is asked for when there is none yet (or on `refresh`), and polled while it runs. */
function useEksClusters(slug: string, region: string | null) {
  const afterWrite = useAfterWrite(slug);
  const [requestError, setRequestError] = useState<{ region: string; message: string } | undefined>();
  const asked = useRef(new Set<string>());
  const path = { org_slug: slug };
  const queryKey = ["eks", slug, region];
  const listing = useQuery({
    queryKey,
    enabled: region !== null,
    queryFn: async () => {
      const { data, error, response } = await api.GET("/api/v1/orgs/{org_slug}/aws/eks-clusters/" as never, { params: { path, query: { region } } } as never);
      if (response.status === 404) return null; // never listed in this region
      if (error !== undefined) throw error;
      return data as EksListing;
    },
    refetchInterval: (query) => ((query.state.data as EksListing | null | undefined)?.status === "listing" ? POLL_MS : false),
  });
  const refresh = async () => {
    if (region === null) return;
    asked.current.add(region);
    const { error } = await api.POST("/api/v1/orgs/{org_slug}/aws/eks-clusters/" as never, { params: { path }, body: { region } } as never);
    setRequestError(error ? { region, message: errorMessage(error) } : undefined);
    await afterWrite(queryKey);
  };
  useEffect(() => {
    if (region !== null && listing.isSuccess && listing.data === null && !asked.current.has(region)) void refresh();
    // Asked for once per region: `refresh` itself changes at each render.
  }, [region, listing.isSuccess, listing.data]);
  const data = listing.data ?? undefined;
  const error = (requestError?.region === region ? requestError.message : undefined) ?? (listing.isError ? errorMessage(listing.error) : data?.status === "failed" ? data.message : undefined);
  return { listing: data, error, refresh };
}
