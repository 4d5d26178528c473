import { Alert, Badge, Button, Code, CopyButton, Group, Loader, Modal, Select, Stack, Tabs, Text, TextInput, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { lazy, Suspense, useState } from "react";
import { useParams } from "react-router-dom";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { keys, useAfterWrite } from "../api/queries";
import type { components } from "../api/schema";
import { ago, until, when } from "../components/format";
import { type PageOf, ServerTable } from "../components/ServerTable";
import { CLUSTER_WRITERS, useMe } from "../session";
import { CatalogPanel } from "./CatalogPanel";
import { HistoryPanel } from "./HistoryPanel";
import { ClusterOverview } from "./OverviewPage";
import { ConfirmDialog } from "../components/ConfirmDialog";

type Instance = components["schemas"]["InstanceOutput"];
type ClusterToken = components["schemas"]["ClusterTokenOutput"];
type ClusterPath = { org_slug: string; cluster_id: string };

// The charts load when the Traffic tab first opens.
const TrafficPanel = lazy(() => import("./TrafficPanel").then((m) => ({ default: m.TrafficPanel })));

// The install page's methods, by the API's keys; a method the API adds later shows by its key.
const METHODS: Record<string, string> = {
  vm: "Linux VM (Debian, Ubuntu, RHEL family): the install script",
  vm_uninstall: "Linux VM: uninstall",
  docker: "Docker",
  helm: "Kubernetes (Helm)",
  run: "Run the agent yourself",
};

const STATUS_COLOR = { online: "green", lost: "yellow", offline: "gray" } as const;

export function ClusterPage() {
  const { slug = "", clusterId = "" } = useParams();
  const me = useMe();
  const role = me.data?.organizations.find((o) => o.slug === slug)?.role ?? "";
  const canWrite = ["owner", "admin", "developer"].includes(role);
  const path = { org_slug: slug, cluster_id: clusterId };
  const cluster = useQuery({
    queryKey: keys.cluster(slug, clusterId),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/{id}/", { params: { path: { org_slug: slug, id: Number(clusterId) } } })),
  });
  const name = (cluster.data as { name?: string } | undefined)?.name ?? "";
  return (
    <Stack>
      <Title order={2}>{name || "Cluster"}</Title>
      {cluster.isError && <Alert color="red">{errorMessage(cluster.error)}</Alert>}
      <Tabs defaultValue="overview" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="overview">Overview</Tabs.Tab>
          <Tabs.Tab value="gateways">Gateways</Tabs.Tab>
          <Tabs.Tab value="catalog">Catalog</Tabs.Tab>
          <Tabs.Tab value="history">History</Tabs.Tab>
          <Tabs.Tab value="traffic">Traffic</Tabs.Tab>
          <Tabs.Tab value="install">Install</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="overview" pt="md">
          <ClusterOverview path={path} />
        </Tabs.Panel>
        <Tabs.Panel value="catalog" pt="md">
          <CatalogPanel path={path} canWrite={canWrite} />
        </Tabs.Panel>
        <Tabs.Panel value="history" pt="md">
          <HistoryPanel path={path} canWrite={canWrite} />
        </Tabs.Panel>
        <Tabs.Panel value="traffic" pt="md">
          <Suspense fallback={<Loader aria-label="Loading traffic" />}>
            <TrafficPanel path={path} />
          </Suspense>
        </Tabs.Panel>
        <Tabs.Panel value="gateways" pt="md">
          <Stack gap="xl">
            <Instances path={path} />
            {CLUSTER_WRITERS.includes(role) && <ClusterTokens path={path} />}
          </Stack>
        </Tabs.Panel>
        <Tabs.Panel value="install" pt="md">
          <Install path={path} />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

const STATUSES = [
  { value: "online", label: "Online" },
  { value: "lost", label: "Lost" },
  { value: "offline", label: "Offline" },
];

/** The cluster's gateways, live: refreshed every 5 s. */
function Instances({ path }: { path: ClusterPath }) {
  const [status, setStatus] = useState<string | null>(null);
  return (
    <Stack gap="xs">
      <Title order={3} size="h4">
        Instances
      </Title>
      <ServerTable<Instance>
        label="Instances"
        queryKey={keys.instances(path)}
        fetchPage={(query) =>
          unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/instances/", { params: { path, query: query as never } })) as Promise<PageOf<Instance>>
        }
        rowKey={(row) => row.instance_id}
        rowName={(row) => row.hostname}
        defaultOrdering="id"
        searchPlaceholder="Hostname, id, address, version"
        filters={{ status }}
        filterControls={<Select label="Status" placeholder="Any" data={STATUSES} value={status} onChange={setStatus} clearable w={{ base: "100%", xs: 160 }} />}
        refetchInterval={5000}
        minWidth={1000}
        empty="No gateway has connected yet: install one from the Install tab."
        columns={[
          {
            key: "id",
            header: "ID",
            sort: "id",
            render: (row) => (
              <Code title={row.instance_id} style={{ whiteSpace: "nowrap" }}>
                {row.instance_id.slice(0, 8)}
              </Code>
            ),
          },
          { key: "hostname", header: "Hostname", sort: "hostname", render: (row) => row.hostname },
          { key: "address", header: "Address", sort: "address", render: (row) => row.address ?? "–" },
          { key: "status", header: "Status", sort: "status", render: (row) => <Badge color={STATUS_COLOR[row.status]}>{row.status}</Badge> },
          {
            key: "version",
            header: "Config version",
            sort: "applied_version",
            render: (row) =>
              row.applied_version !== null && row.applied_version === row.latest_version ? (
                <Group gap={6} wrap="nowrap">
                  <Text size="sm">v{row.applied_version}</Text>
                  <Badge color="green" variant="light">
                    up to date
                  </Badge>
                </Group>
              ) : (
                <Text size="sm" c="orange" style={{ whiteSpace: "nowrap" }}>
                  {row.applied_version === null ? "none" : `v${row.applied_version}`} of {row.latest_version === null ? "none" : `v${row.latest_version}`}
                </Text>
              ),
          },
          { key: "agent", header: "Agent", sort: "agent_version", render: (row) => row.agent_version },
          { key: "haproxy", header: "HAProxy", sort: "haproxy_version", render: (row) => row.haproxy_version || "–" },
          {
            key: "heartbeat",
            header: "Last heartbeat",
            sort: "last_heartbeat_at",
            render: (row) => (
              <Text size="sm" title={when(row.last_heartbeat_at)} style={{ whiteSpace: "nowrap" }}>
                {ago(row.last_heartbeat_at)}
              </Text>
            ),
          },
          {
            key: "error",
            header: "Last error",
            render: (row) =>
              row.last_error ? (
                <Text size="sm" c="red" style={{ wordBreak: "break-word" }}>
                  {row.last_error}
                </Text>
              ) : (
                <Text size="sm" c="dimmed">
                  none
                </Text>
              ),
          },
        ]}
      />
    </Stack>
  );
}

const TOKEN_COLOR: Record<string, string> = { active: "green", rotating: "yellow", revoked: "gray" };
// How long a rotated token keeps working: the API takes 0 to 7 days, in seconds.
const GRACE_PERIODS = [
  { value: "0", label: "None: the old token stops now" },
  { value: "3600", label: "1 hour" },
  { value: "86400", label: "24 hours" },
  { value: "604800", label: "7 days" },
];

/** The secret of a token just made, shown once, with a copy button. */
function ShownOnce({ title, secret, onClose }: { title: string; secret: string; onClose: () => void }) {
  return (
    <Alert color="blue" title={title} withCloseButton onClose={onClose} closeButtonLabel="Hide the secret">
      <Group wrap="nowrap" align="start">
        <Code style={{ flex: 1, minWidth: 0, wordBreak: "break-all" }}>{secret}</Code>
        <CopyButton value={secret}>
          {({ copied, copy }) => (
            <Button size="xs" onClick={copy} aria-label="Copy the secret">
              {copied ? "Copied" : "Copy"}
            </Button>
          )}
        </CopyButton>
      </Group>
    </Alert>
  );
}

/** The cluster's agent tokens: listed with their last use, made, rotated with a grace period,
 * revoked. Only owners and admins, logged in, manage them (the API refuses API tokens). */
function ClusterTokens({ path }: { path: ClusterPath }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const [name, setName] = useState("gateway");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [shown, setShown] = useState<{ title: string; secret: string } | null>(null);
  const [rotating, setRotating] = useState<ClusterToken | null>(null);
  const [grace, setGrace] = useState<string | null>("3600");
  const [revoking, setRevoking] = useState<ClusterToken | null>(null);
  const [dialogError, setDialogError] = useState<string | null>(null);
  const tokenPath = (token: ClusterToken) => ({ ...path, id: token.id });
  const create = async (event: React.FormEvent) => {
    event.preventDefault();
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/tokens/", { params: { path }, body: { name } as never });
    setErrors(failed ? fieldErrors(failed) : {});
    setError(failed ? errorMessage(failed) : null);
    if (failed) return;
    setShown({ title: `Your cluster token ${name} (shown once)`, secret: (data as unknown as { token: string }).token });
    await afterWrite(keys.clusterTokens(path));
  };
  const rotate = async () => {
    if (!rotating) return;
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/tokens/{id}/rotate/", {
      params: { path: tokenPath(rotating) },
      body: { grace_seconds: Number(grace ?? "0") } as never,
    });
    if (failed) return setDialogError(errorMessage(failed));
    setShown({ title: `The new secret of ${rotating.name} (shown once)`, secret: (data as unknown as { token: string }).token });
    setRotating(null);
    await afterWrite(keys.clusterTokens(path));
  };
  const revoke = async (tokens: ClusterToken[]) => {
    for (const token of tokens) {
      const { error: failed } = await api.DELETE("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/tokens/{id}/", { params: { path: tokenPath(token) } });
      if (failed) throw failed;
    }
    await afterWrite(keys.clusterTokens(path));
  };
  const revokeOne = async () => {
    if (!revoking) return;
    try {
      await revoke([revoking]);
      setRevoking(null);
    } catch (failed) {
      setDialogError(errorMessage(failed));
    }
  };
  const closeDialogs = () => {
    setRotating(null);
    setRevoking(null);
    setDialogError(null);
  };
  return (
    <Stack gap="xs">
      <Title order={3} size="h4">
        Cluster tokens
      </Title>
      <Text size="sm" c="dimmed">
        Gateways connect with a cluster token. Rotating one makes a new secret under the same name; the old one keeps working for the grace period you choose.
      </Text>
      <Group align="end" component="form" onSubmit={create} wrap="wrap">
        <TextInput label="Token name" required value={name} error={errors.name} onChange={(e) => setName(e.currentTarget.value)} />
        <Button type="submit">Create cluster token</Button>
      </Group>
      {error && <Alert color="red">{error}</Alert>}
      {shown && <ShownOnce title={shown.title} secret={shown.secret} onClose={() => setShown(null)} />}
      <ServerTable<ClusterToken>
        label="Cluster tokens"
        queryKey={keys.clusterTokens(path)}
        fetchPage={(query) =>
          unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/tokens/", { params: { path, query: query as never } })) as Promise<PageOf<ClusterToken>>
        }
        rowKey={(token) => token.id}
        rowName={(token) => `${token.name} (${token.prefix}…)`}
        defaultOrdering="-id"
        searchPlaceholder="Name, prefix or creator"
        pageSize={10}
        minWidth={860}
        empty="No cluster token yet: create one to connect gateways."
        bulk={{ verb: "Revoke", noun: "cluster tokens", run: revoke, selectable: (token) => token.status !== "revoked" }}
        columns={[
          { key: "name", header: "Name", sort: "name", render: (token) => token.name },
          { key: "prefix", header: "Prefix", render: (token) => <Code>{token.prefix}…</Code> },
          {
            key: "status",
            header: "Status",
            render: (token) => (
              <Stack gap={0}>
                <Badge color={TOKEN_COLOR[token.status] ?? "gray"} variant="light">
                  {token.status}
                </Badge>
                {token.status === "rotating" && token.revoked_at && (
                  <Text size="xs" c="dimmed" title={when(token.revoked_at)}>
                    works until {when(token.revoked_at)} ({until(token.revoked_at)})
                  </Text>
                )}
              </Stack>
            ),
          },
          { key: "created_by", header: "Created by", render: (token) => token.created_by || "–" },
          { key: "created", header: "Created", sort: "created_at", render: (token) => <Text size="sm">{when(token.created_at)}</Text> },
          {
            key: "used",
            header: "Last use",
            sort: "last_used_at",
            render: (token) => (
              <Text size="sm" title={when(token.last_used_at)}>
                {ago(token.last_used_at, undefined, "never used")}
              </Text>
            ),
          },
          {
            key: "actions",
            header: "Actions",
            render: (token) => (
              <Group gap={4} wrap="nowrap">
                {token.status === "active" && (
                  <Button size="xs" variant="light" onClick={() => setRotating(token)} aria-label={`Rotate ${token.name} (${token.prefix}…)`}>
                    Rotate
                  </Button>
                )}
                {token.status !== "revoked" && (
                  <Button size="xs" color="red" variant="subtle" onClick={() => setRevoking(token)} aria-label={`Revoke ${token.name} (${token.prefix}…)`}>
                    Revoke
                  </Button>
                )}
              </Group>
            ),
          },
        ]}
      />
      <Modal opened={rotating !== null} onClose={closeDialogs} title={`Rotate ${rotating?.name ?? ""}`}>
        <Stack>
          {dialogError && <Alert color="red">{dialogError}</Alert>}
          <Text size="sm">
            A new secret is made under the same name and shown once. Gateways keep working with the old one for the grace period: restart them with the new one before it ends.
          </Text>
          <Select label="Grace period" data={GRACE_PERIODS} value={grace} onChange={setGrace} allowDeselect={false} data-autofocus comboboxProps={{ withinPortal: false }} />
          <Group justify="end">
            <Button variant="default" onClick={closeDialogs}>
              Cancel
            </Button>
            <Button onClick={rotate}>Rotate</Button>
          </Group>
        </Stack>
      </Modal>
      <ConfirmDialog
        opened={revoking !== null}
        title={`Revoke ${revoking?.name ?? ""}?`}
        confirmLabel="Revoke"
        onConfirm={revokeOne}
        onCancel={closeDialogs}
        error={dialogError}
      >
        <Text size="sm">Gateways using {revoking?.prefix}… are refused from now on, a rotating token too. This cannot be undone.</Text>
      </ConfirmDialog>
    </Stack>
  );
}

function Install({ path }: { path: ClusterPath }) {
  const me = useMe();
  const role = me.data?.organizations.find((o) => o.slug === path.org_slug)?.role ?? "";
  const install = useQuery({
    queryKey: ["install", path],
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/install/", { params: { path } })),
  });
  const afterWrite = useAfterWrite(path.org_slug);
  const [tokenName, setTokenName] = useState("gateway");
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const createToken = async () => {
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/tokens/", {
      params: { path },
      body: { name: tokenName } as never,
    });
    if (failed) setError(errorMessage(failed));
    else {
      setSecret((data as unknown as { token: string }).token);
      await afterWrite(keys.clusterTokens(path)); // listed on the Gateways tab
    }
  };
  const commands = Object.entries((install.data ?? {}) as Record<string, unknown>).filter(
    (entry): entry is [string, string] => typeof entry[1] === "string",
  );
  return (
    <Stack>
      {CLUSTER_WRITERS.includes(role) && (
        <Group align="end">
          <TextInput label="Token name" value={tokenName} onChange={(e) => setTokenName(e.currentTarget.value)} />
          <Button onClick={createToken}>Create cluster token</Button>
        </Group>
      )}
      {error && <Alert color="red">{error}</Alert>}
      {secret && (
        <Alert color="blue" title="Your cluster token (shown once)">
          <Group wrap="nowrap" align="start">
            <Code style={{ flex: 1, minWidth: 0, wordBreak: "break-all" }}>{secret}</Code>
            <CopyButton value={secret}>{({ copied, copy }) => <Button size="xs" onClick={copy}>{copied ? "Copied" : "Copy"}</Button>}</CopyButton>
          </Group>
        </Alert>
      )}
      {install.isLoading && <Loader aria-label="Loading install instructions" />}
      {commands.map(([method, command]) => (
        <Stack key={method} gap={4}>
          <Text fw={600}>{METHODS[method] ?? method}</Text>
          <Group wrap="nowrap" align="start">
            {/* Long commands wrap rather than widen the page (on a phone above all). */}
            <Code block style={{ flex: 1, minWidth: 0, whiteSpace: "pre-wrap", wordBreak: "break-all" }}>
              {secret ? command.replaceAll("<cluster token>", secret) : command}
            </Code>
            <CopyButton value={secret ? command.replaceAll("<cluster token>", secret) : command}>
              {({ copied, copy }) => (
                <Button size="xs" variant="light" onClick={copy} aria-label={`Copy the command: ${METHODS[method] ?? method}`}>
                  {copied ? "Copied" : "Copy"}
                </Button>
              )}
            </CopyButton>
          </Group>
        </Stack>
      ))}
    </Stack>
  );
}
