import { Alert, Badge, Button, Code, CopyButton, Group, Loader, Stack, Table, Tabs, Text, TextInput, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { lazy, Suspense, useState } from "react";
import { useParams } from "react-router-dom";
import { api, errorMessage, unwrap } from "../api/client";
import { keys, useAfterWrite } from "../api/queries";
import { CLUSTER_WRITERS, useMe } from "../session";
import { CatalogPanel } from "./CatalogPanel";
import { HistoryPanel } from "./HistoryPanel";

type Instance = {
  instance_id: string;
  hostname: string;
  status: "online" | "lost" | "offline";
  applied_version: number | null;
  latest_version: number | null;
  agent_version: string;
  haproxy_version: string;
  last_error: string | null;
};

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
      <Tabs defaultValue="instances" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="instances">Instances</Tabs.Tab>
          <Tabs.Tab value="catalog">Catalog</Tabs.Tab>
          <Tabs.Tab value="history">History</Tabs.Tab>
          <Tabs.Tab value="traffic">Traffic</Tabs.Tab>
          <Tabs.Tab value="install">Install</Tabs.Tab>
        </Tabs.List>
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
        <Tabs.Panel value="instances" pt="md">
          <Instances path={path} />
        </Tabs.Panel>
        <Tabs.Panel value="install" pt="md">
          <Install path={path} />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

function Instances({ path }: { path: { org_slug: string; cluster_id: string } }) {
  // Live status: refreshed on its own every 5 s.
  const instances = useQuery({
    queryKey: keys.instances(path),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/instances/", { params: { path } })),
    refetchInterval: 5000,
  });
  const rows = ((instances.data as { results?: Instance[] } | undefined)?.results ?? []) as Instance[];
  if (instances.isLoading) return <Loader aria-label="Loading instances" />;
  if (instances.isError) return <Alert color="red">{errorMessage(instances.error)}</Alert>;
  if (rows.length === 0) return <Text c="dimmed">No gateway has connected yet: install one from the Install tab.</Text>;
  return (
    <Table.ScrollContainer minWidth={560}><Table striped>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>Host</Table.Th>
          <Table.Th>Status</Table.Th>
          <Table.Th>Config version</Table.Th>
          <Table.Th>Versions</Table.Th>
          <Table.Th>Last error</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {rows.map((row) => (
          <Table.Tr key={row.instance_id}>
            <Table.Td>{row.hostname}</Table.Td>
            <Table.Td>
              <Badge color={STATUS_COLOR[row.status]}>{row.status}</Badge>
            </Table.Td>
            <Table.Td>
              {row.applied_version !== null && row.applied_version === row.latest_version ? (
                <Group gap={6}>
                  <Text size="sm">v{row.applied_version}</Text>
                  <Badge color="green" variant="light">
                    up to date
                  </Badge>
                </Group>
              ) : (
                <Text size="sm">
                  {row.applied_version === null ? "none" : `v${row.applied_version}`} of {row.latest_version === null ? "none" : `v${row.latest_version}`}
                </Text>
              )}
            </Table.Td>
            <Table.Td>
              agent {row.agent_version}, HAProxy {row.haproxy_version}
            </Table.Td>
            <Table.Td>{row.last_error ?? ""}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table></Table.ScrollContainer>
  );
}

function Install({ path }: { path: { org_slug: string; cluster_id: string } }) {
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
      await afterWrite(); // no list of cluster tokens here: the audit log only
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
          <Group>
            <Code>{secret}</Code>
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
