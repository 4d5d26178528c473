import { BarChart, LineChart } from "@mantine/charts";
import { Alert, Group, Loader, SegmentedControl, Select, SimpleGrid, Stack, Table, Text, Title, UnstyledButton } from "@mantine/core";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useId, useState } from "react";
import { api, errorMessage, unwrap } from "../api/client";
import { catalogKeys } from "../api/queries";
import { useRows } from "./CatalogPanel";

type Latency = { answers: number; p50_ms: number | null; p95_ms: number | null; p99_ms: number | null };
export type Point = { t: string; requests: number; by_status: Record<string, number>; by_code?: Record<string, number>; latency?: Latency };
type Analytics = {
  totals: { requests: number; bytes_in: number; bytes_out: number };
  series: Point[];
  top_routes: { route_id: number; requests: number }[];
  top_consumers: { consumer: string; requests: number }[];
  top_statuses: { status: string; requests: number }[];
  status_codes: number[];
  latency_by_route: (Latency & { route_id: number })[];
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

/** A bucket's start as the x axis writes it: the time within a day, the day and hour within a
 * week, the day beyond. */
function bucketLabel(iso: string, range: Range): string {
  const options: Record<Range, Intl.DateTimeFormatOptions> = {
    "1h": { hour: "2-digit", minute: "2-digit" },
    "24h": { hour: "2-digit", minute: "2-digit" },
    "7d": { weekday: "short", day: "numeric", hour: "2-digit" },
    "30d": { month: "short", day: "numeric" },
  };
  return new Date(iso).toLocaleString(undefined, options[range]);
}

// Each class's hue; a code counted on its own is drawn in a shade of its class's hue.
const CLASS_HUES: Record<string, string> = { "1xx": "gray", "2xx": "teal", "3xx": "blue", "4xx": "yellow", "5xx": "red" };
const CLASSES = ["2xx", "3xx", "4xx", "5xx"];
// The reason phrases (RFC 9110, 6585) of the codes the gateways count one by one.
const REASONS: Record<string, string> = {
  "301": "Moved Permanently",
  "302": "Found",
  "304": "Not Modified",
  "400": "Bad Request",
  "401": "Unauthorized",
  "403": "Forbidden",
  "404": "Not Found",
  "413": "Content Too Large",
  "422": "Unprocessable Content",
  "429": "Too Many Requests",
  "500": "Internal Server Error",
  "502": "Bad Gateway",
  "503": "Service Unavailable",
  "504": "Gateway Timeout",
};

const isClass = (status: string) => /^[1-5]xx$/.test(status);
const classOf = (status: string) => `${status[0]}xx`;

/** How a status of the API reads: a code with its reason ("429 Too Many Requests"); a class as
 * itself, or, when some of its codes are counted one by one (`codes`), as the rest of it
 * ("other 4xx"). */
export function statusName(status: string, codes: number[]): string {
  if (!isClass(status)) return REASONS[status] ? `${status} ${REASONS[status]}` : status;
  return codes.some((code) => classOf(String(code)) === status) ? `other ${status}` : status;
}

/** Classes first by class, then codes ascending, a class's other codes after its codes. */
function byClassThenCode(a: string, b: string): number {
  return a[0] === b[0] ? (isClass(a) ? 1 : isClass(b) ? -1 : a.localeCompare(b)) : a.localeCompare(b);
}

export type StatusSeries = { name: string; label: string; color: string };

/** The requests chart's bars: by class (2xx to 5xx, and 1xx when there were some), or by code
 * (those in `series`), each code in a shade of its class's hue from dark to light. */
export function statusSeries(series: Point[], by: "class" | "code", codes: number[]): StatusSeries[] {
  if (by === "class") {
    const seen = new Set([...CLASSES, ...series.flatMap((point) => Object.keys(point.by_status))]);
    return [...seen].sort().map((name) => ({ name, label: name, color: `${CLASS_HUES[name] ?? "gray"}.6` }));
  }
  const seen = [...new Set(series.flatMap((point) => Object.keys(point.by_code ?? {})))].sort(byClassThenCode);
  return seen.map((name) => {
    const family = seen.filter((other) => other[0] === name[0]);
    const place = family.indexOf(name);
    const shade = family.length === 1 ? 6 : Math.round(8 - (place * 4) / (family.length - 1));
    return { name, label: statusName(name, codes), color: `${CLASS_HUES[classOf(name)] ?? "gray"}.${shade}` };
  });
}

// A percentile slower than the last latency bucket (10 s), drawn just above it.
const LAST_BOUND_MS = 10_000;
const SLOWER = LAST_BOUND_MS + 1;

function ms(value: number | null): string {
  return value === null ? "> 10 s" : `≤ ${value} ms`;
}
const tooltipMs = (value: number) => (value >= SLOWER ? "> 10 s" : `≤ ${value.toLocaleString()} ms`);
const tickMs = (value: number) => (value >= 1000 ? `${value / 1000} s` : `${value} ms`);

/** The latency chart's points: p50, p95 and p99 of a bucket's upstream answers (none: no line
 * there), one slower than the last bucket drawn at SLOWER. */
export function latencyPoints(series: Point[]): { p50: number | null; p95: number | null; p99: number | null }[] {
  const value = (latency: Latency | undefined, percentile: number | null | undefined) =>
    latency && latency.answers > 0 ? (percentile ?? SLOWER) : null;
  return series.map(({ latency }) => ({ p50: value(latency, latency?.p50_ms), p95: value(latency, latency?.p95_ms), p99: value(latency, latency?.p99_ms) }));
}

const PERCENTILES = [
  { name: "p50", label: "p50", color: "blue.6" },
  { name: "p95", label: "p95", color: "orange.6" },
  { name: "p99", label: "p99", color: "red.8" },
];

// The consumer filter's choice for requests no consumer was authenticated for (the API's "").
const ANONYMOUS = "(anonymous)";
const NO_ROUTE = "0";

/** The analytics query for a range and the filters chosen (none: every request). */
export function analyticsQuery(range: Range, route: string | null, consumer: string | null, status: string | null = null): Record<string, string> {
  const query: Record<string, string> = { range, bucket: RANGES[range] };
  if (route !== null) query.route_id = route;
  if (consumer !== null) query.consumer = consumer === ANONYMOUS ? "" : consumer;
  if (status !== null) query.status = status;
  return query;
}

/** The status filter's choices, by class: the class as a whole, then its codes counted one by one. */
function statusChoices(codes: number[]) {
  return ["1xx", ...CLASSES].map((group) => ({
    group,
    items: [
      { value: group, label: `Every ${group}` },
      ...codes.filter((code) => classOf(String(code)) === group).map((code) => ({ value: String(code), label: statusName(String(code), codes) })),
    ],
  }));
}

/** A cluster's traffic over a range the user picks (the last hour first): requests over time by
 * status class or code, latency percentiles over time and per route, the top routes, consumers
 * and statuses; of one route, consumer or status if the user filters (a top row applies itself). */
export function TrafficPanel({ path }: { path: { org_slug: string; cluster_id: string } }) {
  const [range, setRange] = useState<Range>("1h");
  const [route, setRoute] = useState<string | null>(null);
  const [consumer, setConsumer] = useState<string | null>(null);
  const [status, setStatus] = useState<string | null>(null);
  const [by, setBy] = useState<"class" | "code">("class");
  const analytics = useQuery({
    queryKey: [...catalogKeys.analytics(path, { range, route_id: route === null ? null : Number(route), consumer }), { status }],
    queryFn: async () =>
      (await unwrap(
        api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/analytics/", {
          params: { path, query: analyticsQuery(range, route, consumer, status) as never },
        }),
      )) as unknown as Analytics,
    refetchInterval: 30000,
    // The last answer stays on screen while the next filter's loads: no flash, and the status
    // filter keeps its codes.
    placeholderData: keepPreviousData,
  });
  const data = analytics.isPlaceholderData ? undefined : analytics.data;
  const shown = analytics.data;
  const codes = shown?.status_codes ?? [];
  const routes = useRows(path, "routes");
  const consumers = useRows(path, "consumers");
  const routeName = (id: number) => (id === 0 ? "no route matched" : String(routes.data?.find((r) => r.id === id)?.name ?? `#${id}`));
  const routeChoices = [...(routes.data ?? []).map((r) => ({ value: String(r.id), label: String(r.name) })), { value: NO_ROUTE, label: "No route matched" }];
  const consumerChoices = [...(consumers.data ?? []).map((c) => String(c.username)), ANONYMOUS];
  const filters = [
    route !== null ? `route ${routeName(Number(route))}` : "",
    consumer !== null ? `consumer ${consumer}` : "",
    status !== null ? `status ${status}` : "",
  ].filter(Boolean);
  const bucket = RANGES[range];
  const buckets = everyBucket(shown?.series ?? [], range, Date.now());
  const bars = statusSeries(buckets, by, codes);
  const countsOf = (point: Point) => (by === "class" ? point.by_status : (point.by_code ?? {}));
  const requestsData = buckets.map((point) => ({
    t: bucketLabel(point.t, range),
    ...Object.fromEntries(bars.map((s) => [s.name, countsOf(point)[s.name] ?? 0])),
  }));
  const latencies = latencyPoints(buckets);
  const latencyData = buckets.map((point, i) => ({ t: bucketLabel(point.t, range), ...latencies[i] }));
  const slowest = (name: "p50" | "p95" | "p99") => Math.max(0, ...latencies.map((l) => l[name] ?? 0));
  const timed = slowest("p99") > 0;
  // Powers of ten up to the slowest: latencies span 1 ms to 10 s, read on a log scale.
  const latencyTicks = [1, 10, 100, 1000, LAST_BOUND_MS].filter((_, i, all) => i === 0 || all[i - 1] < Math.max(slowest("p99"), 10));
  const latencyTop = Math.max(latencyTicks[latencyTicks.length - 1], slowest("p99"));
  const totalsBy = bars.map((s) => `${s.label} ${buckets.reduce((sum, point) => sum + (countsOf(point)[s.name] ?? 0), 0).toLocaleString()}`);
  const toggle = (current: string | null, set: (value: string | null) => void) => (value: string) => set(current === value ? null : value);
  return (
    <Stack>
      <Group justify="space-between" align="end" wrap="wrap">
        <Group align="end" gap="sm" wrap="wrap" w={{ base: "100%", sm: "auto" }}>
          <Select label="Route" placeholder="All routes" searchable clearable data={routeChoices} value={route} onChange={setRoute} w={{ base: "100%", xs: 200 }} />
          <Select label="Consumer" placeholder="All consumers" searchable clearable data={consumerChoices} value={consumer} onChange={setConsumer} w={{ base: "100%", xs: 200 }} />
          <Select label="Status" placeholder="All statuses" searchable clearable data={statusChoices(codes)} value={status} onChange={setStatus} w={{ base: "100%", xs: 220 }} />
        </Group>
        <SegmentedControl
          aria-label="Range"
          value={range}
          onChange={(value) => setRange(value as Range)}
          data={Object.keys(RANGES).map((r) => ({ value: r, label: `Last ${r}` }))}
        />
      </Group>
      {/* While the next filter's figures load, the last ones stay: the line says so, in place. */}
      <Text c="dimmed" aria-live="polite">
        {analytics.isPlaceholderData ? "Loading…" : ""}
        {data ? `${data.totals.requests.toLocaleString()} requests` : ""}
        {data && filters.length ? ` (${filters.join(", ")})` : ""}
      </Text>
      {analytics.isLoading && <Loader aria-label="Loading traffic" />}
      {analytics.isError && <Alert color="red">{errorMessage(analytics.error)}</Alert>}
      {data && data.totals.requests === 0 && <Text c="dimmed">No traffic in this range{filters.length ? " for this filter" : ""}.</Text>}
      {shown && shown.totals.requests > 0 && (
        <>
          <Stack gap={4}>
            <Group justify="space-between" align="center" wrap="wrap" gap="xs">
              <Title order={5}>Requests per {bucket}</Title>
              <SegmentedControl
                size="xs"
                aria-label="Statuses"
                value={by}
                onChange={(value) => setBy(value as "class" | "code")}
                data={[
                  { value: "class", label: "By class" },
                  { value: "code", label: "By code" },
                ]}
              />
            </Group>
            {/* Bars: each bucket stands on its own, one bucket or many. Read as its totals. */}
            <BarChart
              h={280}
              data={requestsData}
              dataKey="t"
              series={bars}
              type="stacked"
              withLegend
              legendProps={{ verticalAlign: "bottom" }}
              role="img"
              aria-label={`Requests per ${bucket} by status ${by}, last ${range}: ${totalsBy.join(", ")}`}
            />
          </Stack>
          <Stack gap={4}>
            <Title order={5}>Latency per {bucket}</Title>
            <Text size="sm" c="dimmed">
              p50, p95 and p99 of the upstream answers, each up to the bound of its latency bucket, on a log scale
              {status !== null ? "; of every status: latencies are kept by route and consumer, not by status" : ""}.
            </Text>
            {timed ? (
              <LineChart
                h={240}
                  data={latencyData}
                dataKey="t"
                series={PERCENTILES}
                connectNulls={false}
                curveType="linear"
                withLegend
                legendProps={{ verticalAlign: "bottom" }}
                valueFormatter={tooltipMs}
                yAxisProps={{ scale: "log", domain: [1, latencyTop], ticks: latencyTicks, tickFormatter: tickMs, allowDataOverflow: true }}
                role="img"
                aria-label={`Latency per ${bucket}, last ${range}; at its highest: ${PERCENTILES.map((p) => `${p.label} ${tooltipMs(slowest(p.name as "p50"))}`).join(", ")}`}
              />
            ) : (
              <Text size="sm" c="dimmed">
                No upstream answer timed in this range.
              </Text>
            )}
          </Stack>
          <SimpleGrid cols={{ base: 1, sm: 2, lg: 4 }}>
            <TopTable
              title="Top routes"
              column="Route"
              noun="route"
              rows={shown.top_routes.map((row) => ({ value: String(row.route_id), label: routeName(row.route_id), requests: row.requests }))}
              selected={route}
              onPick={toggle(route, setRoute)}
            />
            <TopTable
              title="Top consumers"
              column="Consumer"
              noun="consumer"
              rows={shown.top_consumers.map((row) => ({ value: row.consumer || ANONYMOUS, label: row.consumer || ANONYMOUS, requests: row.requests }))}
              selected={consumer}
              onPick={toggle(consumer, setConsumer)}
            />
            <TopTable
              title="Top statuses"
              column="Status"
              noun="status"
              rows={shown.top_statuses.map((row) => ({ value: row.status, label: statusName(row.status, codes), requests: row.requests }))}
              selected={status}
              onPick={toggle(status, setStatus)}
            />
            <Stack gap={4}>
              <Title order={5}>Latency by route</Title>
              <Table.ScrollContainer minWidth={300}>
                <Table aria-label="Latency by route">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Route</Table.Th>
                      <Table.Th>p50</Table.Th>
                      <Table.Th>p95</Table.Th>
                      <Table.Th>p99</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {shown.latency_by_route.length === 0 && (
                      <Table.Tr>
                        <Table.Td colSpan={4}>
                          <Text size="sm" c="dimmed">
                            No upstream answer timed in this range.
                          </Text>
                        </Table.Td>
                      </Table.Tr>
                    )}
                    {shown.latency_by_route.map((row) => (
                      <Table.Tr key={row.route_id}>
                        <Table.Td>{routeName(row.route_id)}</Table.Td>
                        <Table.Td>{ms(row.p50_ms)}</Table.Td>
                        <Table.Td>{ms(row.p95_ms)}</Table.Td>
                        <Table.Td>{ms(row.p99_ms)}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            </Stack>
          </SimpleGrid>
        </>
      )}
    </Stack>
  );
}

type TopRow = { value: string; label: string; requests: number };

/** The busiest routes, consumers or statuses; a row's name is a button that filters by it, or,
 * the filter applied, lifts it. */
function TopTable({ title, column, noun, rows, selected, onPick }: { title: string; column: string; noun: string; rows: TopRow[]; selected: string | null; onPick: (value: string) => void }) {
  const id = useId();
  return (
    <Stack gap={4}>
      <Title order={5} id={id}>
        {title}
      </Title>
      <Table.ScrollContainer minWidth={220}>
        <Table aria-labelledby={id} highlightOnHover>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>{column}</Table.Th>
              <Table.Th ta="right">Requests</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.length === 0 && (
              <Table.Tr>
                <Table.Td colSpan={2}>
                  <Text size="sm" c="dimmed">
                    None in this range.
                  </Text>
                </Table.Td>
              </Table.Tr>
            )}
            {rows.map((row) => {
              const applied = selected === row.value;
              return (
                <Table.Tr key={row.value} onClick={() => onPick(row.value)} style={{ cursor: "pointer" }} bg={applied ? "var(--mantine-primary-color-light)" : undefined}>
                  <Table.Td>
                    <UnstyledButton
                      fz="sm"
                      c="var(--mantine-color-anchor)"
                      aria-pressed={applied}
                      aria-label={`Filter by ${noun} ${row.label}`}
                      title={applied ? `Show every ${noun} again` : `Show only this ${noun}'s requests`}
                      onClick={(event) => {
                        event.stopPropagation(); // the row would pick it again
                        onPick(row.value);
                      }}
                    >
                      {row.label}
                    </UnstyledButton>
                  </Table.Td>
                  <Table.Td ta="right">{row.requests.toLocaleString()}</Table.Td>
                </Table.Tr>
              );
            })}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
    </Stack>
  );
}
