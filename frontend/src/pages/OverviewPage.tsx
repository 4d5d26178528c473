// The overviews: an organization's (the first page after signing in) and a cluster's (its first
// tab). Gateways up and on the latest version, the last hour's requests and error rates with a
// sparkline, the routes failing most, the plan's quota and the latest changes with who made them.
import { Alert, Anchor, Badge, Card, Code, Group, Loader, Progress, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { type ReactNode, useId } from "react";
import { Link, useParams } from "react-router-dom";
import { api, errorMessage, unwrap } from "../api/client";
import { keys } from "../api/queries";
import type { paths } from "../api/schema";
import { ago, count, day, percent } from "../components/format";
import { Sparkline } from "../components/Sparkline";

type Overview = paths["/api/v1/orgs/{org_slug}/overview/"]["get"]["responses"][200]["content"]["application/json"];
type Gateways = NonNullable<Overview["gateways"]>;
type Traffic = NonNullable<Overview["traffic"]>;
type Quota = NonNullable<Overview["quota"]>;
type FailingRoute = NonNullable<Overview["top_failing_routes"]>[number];
type Change = NonNullable<Overview["recent_changes"]>[number];
type ClusterPath = { org_slug: string; cluster_id: string };

// Gateways report every few seconds: the overview follows them, and the traffic of the minute.
const REFRESH_MS = 15_000;

/** The organization at a glance. Parts the member's role may not see are not shown. */
export function OverviewPage() {
  const { slug = "" } = useParams();
  const overview = useQuery({
    queryKey: keys.overview(slug),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/overview/", { params: { path: { org_slug: slug } } })),
    refetchInterval: REFRESH_MS,
  });
  const data = overview.data;
  return (
    <Stack>
      <Title order={2}>Overview</Title>
      {overview.isLoading && <Loader aria-label="Loading the overview" />}
      {overview.isError && <Alert color="red">{errorMessage(overview.error)}</Alert>}
      {data && (
        <>
          <Figures gateways={data.gateways} traffic={data.traffic} quota={data.quota} />
          <SimpleGrid cols={{ base: 1, lg: 2 }}>
            {(data.top_failing_routes || data.clusters) && (
              <Stack>
                {data.top_failing_routes && <FailingRoutes routes={data.top_failing_routes} withCluster />}
                {data.clusters && <Clusters clusters={data.clusters} slug={slug} />}
              </Stack>
            )}
            {data.recent_changes && <RecentChanges changes={data.recent_changes} />}
          </SimpleGrid>
        </>
      )}
    </Stack>
  );
}

/** One cluster at a glance (the cluster page's first tab). */
export function ClusterOverview({ path }: { path: ClusterPath }) {
  const overview = useQuery({
    queryKey: keys.clusterOverview(path),
    queryFn: () =>
      unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/overview/", { params: { path } })),
    refetchInterval: REFRESH_MS,
  });
  const data = overview.data;
  if (overview.isLoading) return <Loader aria-label="Loading the cluster's overview" />;
  if (overview.isError || !data) return <Alert color="red">{errorMessage(overview.error)}</Alert>;
  return (
    <Stack>
      <Figures gateways={data.gateways} traffic={data.traffic} quota={data.quota} latest={data.cluster.latest_version} />
      <SimpleGrid cols={{ base: 1, lg: 2 }}>
        <FailingRoutes routes={data.top_failing_routes} />
        <RecentChanges changes={data.recent_changes} versions />
      </SimpleGrid>
    </Stack>
  );
}

/** A titled card; its title names it for screen readers (a region). */
function Panel({ title, children }: { title: string; children: ReactNode }) {
  const id = useId();
  return (
    <Card withBorder padding="md" component="section" aria-labelledby={id}>
      <Title order={3} size="h5" id={id} mb="xs">
        {title}
      </Title>
      {children}
    </Card>
  );
}

function Figures({ gateways, traffic, quota, latest }: { gateways: Gateways | null; traffic: Traffic | null; quota: Quota | null; latest?: number | null }) {
  return (
    <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
      {gateways && <GatewaysFigure gateways={gateways} latest={latest} />}
      {traffic && <RequestsFigure traffic={traffic} />}
      {traffic && <ErrorsFigure traffic={traffic} />}
      {quota && <QuotaFigure quota={quota} />}
    </SimpleGrid>
  );
}

function GatewaysFigure({ gateways, latest }: { gateways: Gateways; latest?: number | null }) {
  return (
    <Panel title="Gateways">
      <Text fz={28} fw={700} lh={1.2}>
        {gateways.online} of {gateways.total} online
      </Text>
      {gateways.total === 0 ? (
        <Text size="sm" c="dimmed" mt="xs">
          No gateway has connected yet.
        </Text>
      ) : (
        <Stack gap={6} mt="xs">
          <Group gap={6}>
            <Badge color="green" variant="light">{gateways.online} online</Badge>
            <Badge color="yellow" variant="light">{gateways.lost} lost</Badge>
            <Badge color="gray" variant="light">{gateways.offline} offline</Badge>
          </Group>
          <Text size="sm">
            {gateways.on_latest_version} on the latest version{latest !== undefined && latest !== null ? ` (v${latest})` : ""}
          </Text>
          {gateways.outdated > 0 && (
            <Text size="sm" c="orange">
              {gateways.outdated} running an older version
            </Text>
          )}
        </Stack>
      )}
    </Panel>
  );
}

function RequestsFigure({ traffic }: { traffic: Traffic }) {
  const peak = Math.max(0, ...traffic.series.map((p) => p.requests));
  return (
    <Panel title="Requests, last hour">
      <Text fz={28} fw={700} lh={1.2}>
        {count(traffic.requests)}
      </Text>
      <Sparkline
        label={`Requests per minute over the last hour, at most ${count(peak)} a minute; 4xx and 5xx answers drawn below them.`}
        series={[
          { label: "requests", values: traffic.series.map((p) => p.requests), color: "blue" },
          { label: "4xx", values: traffic.series.map((p) => p.errors_4xx), color: "yellow" },
          { label: "5xx", values: traffic.series.map((p) => p.errors_5xx), color: "red" },
        ]}
      />
      <Text size="xs" c="dimmed">
        per minute, {new Date(traffic.from).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })} to now
      </Text>
    </Panel>
  );
}

function ErrorsFigure({ traffic }: { traffic: Traffic }) {
  return (
    <Panel title="Error rates, last hour">
      <Group gap="lg" align="end">
        <div>
          <Text size="xs" c="dimmed">4xx</Text>
          <Text fz={24} fw={700} lh={1.2} c={traffic.errors_4xx ? "yellow.8" : undefined}>
            {percent(traffic.error_rate_4xx_percent)}
          </Text>
          <Text size="xs">{count(traffic.errors_4xx)} answers</Text>
        </div>
        <div>
          <Text size="xs" c="dimmed">5xx</Text>
          <Text fz={24} fw={700} lh={1.2} c={traffic.errors_5xx ? "red" : undefined}>
            {percent(traffic.error_rate_5xx_percent)}
          </Text>
          <Text size="xs">{count(traffic.errors_5xx)} answers</Text>
        </div>
      </Group>
    </Panel>
  );
}

function QuotaFigure({ quota }: { quota: Quota }) {
  const used = quota.used_percent ?? (quota.calls > 0 ? 100 : 0);
  const color = quota.exceeded ? "red" : used >= 80 ? "orange" : "blue";
  return (
    <Panel title="Quota">
      <Text fz={28} fw={700} lh={1.2}>
        {percent(quota.used_percent)}
      </Text>
      <Progress.Root size="lg" mt="xs">
        <Progress.Section value={Math.min(100, used)} color={color} aria-label={`Calls used this period: ${percent(quota.used_percent)} of the allowance`} />
      </Progress.Root>
      <Text size="sm" mt="xs">
        {count(quota.calls)} of {count(quota.included_calls)} calls ({quota.plan})
      </Text>
      <Text size="xs" c="dimmed">
        {day(quota.period_start)} to {day(quota.period_end)}
        {quota.hard_cap ? "; past the allowance gateways answer 429" : ""}
      </Text>
      {quota.exceeded && (
        <Text size="sm" c="red" mt={4}>
          Allowance used up{quota.resets_at ? `, until ${day(quota.resets_at)}` : ""}.
        </Text>
      )}
    </Panel>
  );
}

function routeName(route: FailingRoute): string {
  if (route.name) return route.name;
  return route.route_id === 0 ? "(no route matched)" : `deleted route #${route.route_id}`;
}

function FailingRoutes({ routes, withCluster = false }: { routes: FailingRoute[]; withCluster?: boolean }) {
  return (
    <Panel title="Top failing routes, last hour">
      {routes.length === 0 ? (
        <Text size="sm" c="dimmed">
          No 4xx or 5xx answers in the last hour.
        </Text>
      ) : (
        <Table.ScrollContainer minWidth={420}>
          <Table aria-label="Top failing routes">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Route</Table.Th>
                {withCluster && <Table.Th>Cluster</Table.Th>}
                <Table.Th>Requests</Table.Th>
                <Table.Th>4xx</Table.Th>
                <Table.Th>5xx</Table.Th>
                <Table.Th>Errors</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {routes.map((route) => (
                <Table.Tr key={`${route.cluster_id}/${route.route_id}`}>
                  <Table.Td>{routeName(route)}</Table.Td>
                  {/* Plain text: each cluster's one link is in the clusters card. */}
                  {withCluster && <Table.Td>{route.cluster ?? `#${route.cluster_id}`}</Table.Td>}
                  <Table.Td>{count(route.requests)}</Table.Td>
                  <Table.Td>{count(route.errors_4xx)}</Table.Td>
                  <Table.Td>{count(route.errors_5xx)}</Table.Td>
                  <Table.Td>{percent(route.error_rate_percent)}</Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Panel>
  );
}

function RecentChanges({ changes, versions = false }: { changes: Change[]; versions?: boolean }) {
  return (
    <Panel title={versions ? "Recent versions" : "Recent changes"}>
      {changes.length === 0 ? (
        <Text size="sm" c="dimmed">
          Nothing changed yet.
        </Text>
      ) : (
        <Table.ScrollContainer minWidth={420}>
          <Table aria-label={versions ? "Recent versions" : "Recent changes"}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>When</Table.Th>
                <Table.Th>Who</Table.Th>
                <Table.Th>What</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {changes.map((change, index) => (
                <Table.Tr key={`${change.at}/${change.target_id}/${index}`}>
                  <Table.Td style={{ whiteSpace: "nowrap" }} title={new Date(change.at).toLocaleString()}>
                    {ago(change.at)}
                  </Table.Td>
                  <Table.Td>{change.actor ?? "system"}</Table.Td>
                  <Table.Td>
                    {change.version !== null ? <Text size="sm" span fw={600}>v{change.version} </Text> : <Code>{change.action}</Code>}{" "}
                    <Text size="sm" span>
                      {change.target}
                    </Text>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
    </Panel>
  );
}

function Clusters({ clusters, slug }: { clusters: NonNullable<Overview["clusters"]>; slug: string }) {
  return (
    <Panel title="Clusters">
      {clusters.length === 0 ? (
        <Text size="sm" c="dimmed">
          None yet.{" "}
          <Anchor component={Link} to={`/orgs/${slug}/clusters`}>
            Create a cluster
          </Anchor>{" "}
          to run gateways.
        </Text>
      ) : (
        <Stack gap={4}>
          {clusters.map((cluster) => (
            <Group key={cluster.id} justify="space-between" wrap="nowrap">
              <Anchor component={Link} to={`/orgs/${slug}/clusters/${cluster.id}`}>
                {cluster.name}
              </Anchor>
              <Text size="sm" c="dimmed">
                {cluster.latest_version === null ? "no version yet" : `v${cluster.latest_version}`}
              </Text>
            </Group>
          ))}
        </Stack>
      )}
    </Panel>
  );
}
