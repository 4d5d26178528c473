import { BarChart } from "@mantine/charts";
import { Alert, Group, Loader, SegmentedControl, Select, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage, unwrap } from "../api/client";
import { catalogKeys } from "../api/queries";
import { useRows } from "./CatalogPanel";

type Point = { t: string; requests: number; by_status: Record<string, number> };
type Latency = { route_id: number; answers: number; p50_ms: number | null; p95_ms: number | null; p99_ms: number | null };
type Analytics = {
  totals: { requests: number; bytes_in: number; bytes_out: number };
  series: Point[];
  top_routes: { route_id: number; requests: number }[];
  top_consumers: { consumer: string; requests: number }[];
  latency_by_route: Latency[];
};

const RANGES = { "1h": "minute", "24h": "hour", "7d": "hour", "30d": "day" } as const;
type Range = keyof typeof RANGES;
const BUCKET_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
const RANGE_MS: Record<Range, number> = { "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000 };

/** Every bucket of the range, in order, those without traffic as zero: the API lists only buckets
 * that had some, and a quiet hour must show as a gap, not vanish. Buckets are UTC-aligned, as
 * the API's are. */
export function everyBucket(series: Point[], range: Range, now: number): Point[] {
  const size = BUCKET_MS[RANGES[range]];
  const byStart = new Map(series.map((point) => [Math.floor(Date.parse(point.t) / size) * size, point]));
  const last = Math.floor(now / size) * size;
  const filled: Point[] = [];
  for (let start = last - Math.ceil(RANGE_MS[range] / size - 1) * size; start <= last; start += size) {
    filled.push(byStart.get(start) ?? { t: new Date(start).toISOString(), requests: 0, by_status: {} });
  }
  return filled;
}
const CLASSES = [
  { name: "2xx", color: "teal.6" },
  { name: "3xx", color: "blue.6" },
  { name: "4xx", color: "yellow.6" },
  { name: "5xx", color: "red.6" },
];

function ms(value: number | null): string {
  return value === null ? "> 10 s" : `≤ ${value} ms`;
}

// The consumer filter's choice for requests no consumer was authenticated for (the API's "").
const ANONYMOUS = "(anonymous)";
const NO_ROUTE = "0";

/** The analytics query for a range and the filters chosen (none: every request). */
export function analyticsQuery(range: Range, route: string | null, consumer: string | null): Record<string, string> {
  const query: Record<string, string> = { range, bucket: RANGES[range] };
  if (route !== null) query.route_id = route;
  if (consumer !== null) query.consumer = consumer === ANONYMOUS ? "" : consumer;
  return query;
}

/** A cluster's traffic: requests over time by status class, latency per route, top routes and
 * consumers, over a range the user picks (the last hour first), of one route or consumer if the
 * user filters. */
export function TrafficPanel({ path }: { path: { org_slug: string; cluster_id: string } }) {
  const [range, setRange] = useState<Range>("1h");
  const [route, setRoute] = useState<string | null>(null);
  const [consumer, setConsumer] = useState<string | null>(null);
  const analytics = useQuery({
    queryKey: catalogKeys.analytics(path, { range, route_id: route === null ? null : Number(route), consumer }),
    queryFn: async () =>
      (await unwrap(
        api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/analytics/", {
          params: { path, query: analyticsQuery(range, route, consumer) as never },
        }),
      )) as unknown as Analytics,
    refetchInterval: 30000,
  });
  const data = analytics.data;
  const routes = useRows(path, "routes");
  const consumers = useRows(path, "consumers");
  const routeName = (id: number) => (id === 0 ? "no route matched" : String(routes.data?.find((r) => r.id === id)?.name ?? `#${id}`));
  const routeChoices = [...(routes.data ?? []).map((r) => ({ value: String(r.id), label: String(r.name) })), { value: NO_ROUTE, label: "No route matched" }];
  const consumerChoices = [...(consumers.data ?? []).map((c) => String(c.username)), ANONYMOUS];
  const filtered = route !== null || consumer !== null;
  const series = everyBucket(data?.series ?? [], range, Date.now()).map((point) => ({
    t: new Date(point.t).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }),
    ...Object.fromEntries(CLASSES.map((c) => [c.name, point.by_status[c.name] ?? 0])),
  }));
  return (
    <Stack>
      <Group justify="space-between" align="end" wrap="wrap">
        <Group align="end" gap="sm" wrap="wrap">
          <Select label="Route" placeholder="All routes" searchable clearable data={routeChoices} value={route} onChange={setRoute} w={{ base: "100%", xs: 200 }} />
          <Select label="Consumer" placeholder="All consumers" searchable clearable data={consumerChoices} value={consumer} onChange={setConsumer} w={{ base: "100%", xs: 200 }} />
        </Group>
        <SegmentedControl
          aria-label="Range"
          value={range}
          onChange={(value) => setRange(value as Range)}
          data={Object.keys(RANGES).map((r) => ({ value: r, label: `Last ${r}` }))}
        />
      </Group>
      <Text c="dimmed" aria-live="polite">
        {data ? `${data.totals.requests.toLocaleString()} requests` : ""}
        {data && filtered ? ` (${[route !== null ? `route ${routeName(Number(route))}` : "", consumer !== null ? `consumer ${consumer}` : ""].filter(Boolean).join(", ")})` : ""}
      </Text>
      {analytics.isLoading && <Loader aria-label="Loading traffic" />}
      {analytics.isError && <Alert color="red">{errorMessage(analytics.error)}</Alert>}
      {data && data.totals.requests === 0 && <Text c="dimmed">No traffic in this range{filtered ? " for this filter" : ""}.</Text>}
      {data && data.totals.requests > 0 && (
        <>
          {/* Bars: each bucket stands on its own, one bucket or many. */}
          <BarChart h={260} data={series} dataKey="t" series={CLASSES} type="stacked" withLegend aria-label="Requests by status class" />
          <SimpleGrid cols={{ base: 1, md: 3 }}>
            <Stack gap={4}>
              <Title order={5}>Latency by route</Title>
              <Table.ScrollContainer minWidth={300}><Table>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Route</Table.Th>
                    <Table.Th>p50</Table.Th>
                    <Table.Th>p95</Table.Th>
                    <Table.Th>p99</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {data.latency_by_route.length === 0 && (
                    <Table.Tr>
                      <Table.Td colSpan={4}>
                        <Text size="sm" c="dimmed">
                          No upstream answer timed in this range.
                        </Text>
                      </Table.Td>
                    </Table.Tr>
                  )}
                  {data.latency_by_route.map((row) => (
                    <Table.Tr key={row.route_id}>
                      <Table.Td>{routeName(row.route_id)}</Table.Td>
                      <Table.Td>{ms(row.p50_ms)}</Table.Td>
                      <Table.Td>{ms(row.p95_ms)}</Table.Td>
                      <Table.Td>{ms(row.p99_ms)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table></Table.ScrollContainer>
            </Stack>
            <Stack gap={4}>
              <Title order={5}>Top routes</Title>
              {data.top_routes.map((row) => (
                <Group key={row.route_id} justify="space-between">
                  <Text>{routeName(row.route_id)}</Text>
                  <Text>{row.requests.toLocaleString()}</Text>
                </Group>
              ))}
            </Stack>
            <Stack gap={4}>
              <Title order={5}>Top consumers</Title>
              {data.top_consumers.map((row) => (
                <Group key={row.consumer} justify="space-between">
                  <Text>{row.consumer || "anonymous"}</Text>
                  <Text>{row.requests.toLocaleString()}</Text>
                </Group>
              ))}
            </Stack>
          </SimpleGrid>
        </>
      )}
    </Stack>
  );
}
