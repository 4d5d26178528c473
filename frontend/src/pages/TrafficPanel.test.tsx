import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { answerListApi } from "../test/fakeListApi";
import { renderInConsole } from "../test/render";
import { analyticsQuery, everyBucket, latencyPoints, type Point, statusName, statusSeries, TrafficPanel } from "./TrafficPanel";

const NOW = Date.parse("2026-11-26T18:20:00Z");
const BASE = "/api/v1/orgs/acme/clusters/7";
const PATH = { org_slug: "acme", cluster_id: "7" };
const CODES = [301, 302, 304, 400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504];
const page = (results: unknown[]) => [200, { count: results.length, next: null, previous: null, results }] as [number, unknown];
const EMPTY = {
  totals: { requests: 0, bytes_in: 0, bytes_out: 0 },
  series: [],
  top_routes: [],
  top_consumers: [],
  top_statuses: [],
  status_codes: CODES,
  latency_by_route: [],
};

afterEach(() => {
  vi.unstubAllGlobals();
  vi.useRealTimers();
});
vi.setConfig({ testTimeout: 20_000 });

describe("the traffic chart's buckets", () => {
  it("shows every hour of the last 24, quiet ones as zero, the API's counts where it has them", () => {
    const buckets = everyBucket([{ t: "2026-11-26T15:00:00Z", requests: 9, by_status: { "2xx": 6, "4xx": 3 } }], "24h", NOW);
    expect(buckets).toHaveLength(24);
    expect(buckets[0].t).toBe("2026-11-25T19:00:00.000Z");
    expect(buckets[23].t).toBe("2026-11-26T18:00:00.000Z");
    expect(buckets.filter((b) => b.requests > 0)).toEqual([{ t: "2026-11-26T15:00:00Z", requests: 9, by_status: { "2xx": 6, "4xx": 3 } }]);
  });

  it("uses minutes for the last hour and days for the last 30 days", () => {
    expect(everyBucket([], "1h", NOW)).toHaveLength(60);
    const days = everyBucket([], "30d", NOW);
    expect(days).toHaveLength(30);
    expect(days[29].t).toBe("2026-11-26T00:00:00.000Z");
  });
});

describe("statuses", () => {
  it("read as a code with its reason, or a class, the rest of a class whose codes are counted apart as 'other'", () => {
    expect(statusName("429", CODES)).toBe("429 Too Many Requests");
    expect(statusName("401", CODES)).toBe("401 Unauthorized");
    expect(statusName("4xx", CODES)).toBe("other 4xx");
    expect(statusName("2xx", CODES)).toBe("2xx");
  });

  it("are drawn by class in the class's hue, or by code in shades of it, a class's other codes last", () => {
    const series: Point[] = [
      { t: "a", requests: 20, by_status: { "2xx": 10, "4xx": 10 }, by_code: { "2xx": 10, "429": 5, "401": 4, "4xx": 1 } },
      { t: "b", requests: 1, by_status: { "5xx": 1 }, by_code: { "503": 1 } },
    ];
    expect(statusSeries(series, "class", CODES)).toEqual([
      { name: "2xx", label: "2xx", color: "teal.6" },
      { name: "3xx", label: "3xx", color: "blue.6" },
      { name: "4xx", label: "4xx", color: "yellow.6" },
      { name: "5xx", label: "5xx", color: "red.6" },
    ]);
    expect(statusSeries(series, "code", CODES)).toEqual([
      { name: "2xx", label: "2xx", color: "teal.6" },
      { name: "401", label: "401 Unauthorized", color: "yellow.8" },
      { name: "429", label: "429 Too Many Requests", color: "yellow.6" },
      { name: "4xx", label: "other 4xx", color: "yellow.4" },
      { name: "503", label: "503 Service Unavailable", color: "red.6" },
    ]);
  });
});

describe("the latency chart", () => {
  it("has a point where upstreams answered, none elsewhere, a percentile slower than 10 s just above it", () => {
    const points = latencyPoints([
      { t: "a", requests: 3, by_status: {}, latency: { answers: 3, p50_ms: 20, p95_ms: 200, p99_ms: null } },
      { t: "b", requests: 2, by_status: {} },
    ]);
    expect(points).toEqual([
      { p50: 20, p95: 200, p99: 10_001 },
      { p50: null, p95: null, p99: null },
    ]);
  });
});

describe("the traffic panel", () => {
  it("asks for a route's, a consumer's or a status's requests only when filtered, the anonymous ones as an empty consumer", () => {
    expect(analyticsQuery("1h", null, null)).toEqual({ range: "1h", bucket: "minute" });
    expect(analyticsQuery("7d", "3", "mobile-app")).toEqual({ range: "7d", bucket: "hour", route_id: "3", consumer: "mobile-app" });
    expect(analyticsQuery("24h", "0", "(anonymous)")).toEqual({ range: "24h", bucket: "hour", route_id: "0", consumer: "" });
    expect(analyticsQuery("1h", null, null, "429")).toEqual({ range: "1h", bucket: "minute", status: "429" });
  });

  it("starts at the last hour, and filters by consumer and route", async () => {
    answerApi({
      [`GET ${BASE}/analytics/`]: [200, { ...EMPTY, totals: { requests: 12, bytes_in: 0, bytes_out: 0 }, top_consumers: [{ consumer: "mobile-app", requests: 12 }] }],
      [`GET ${BASE}/routes/`]: page([{ id: 3, name: "orders" }]),
      [`GET ${BASE}/consumers/`]: page([{ id: 1, username: "mobile-app" }]),
    });
    const answer = globalThis.fetch;
    const asked: URLSearchParams[] = [];
    vi.stubGlobal("fetch", async (request: Request) => {
      const url = new URL(request.url);
      if (url.pathname.endsWith("/analytics/")) asked.push(url.searchParams);
      return answer(request);
    });
    renderInConsole(<TrafficPanel path={PATH} />);
    expect(await screen.findByText("12 requests")).toBeTruthy();
    expect(screen.getByRole("radio", { name: "Last 1h" })).toHaveProperty("checked", true);
    expect(Object.fromEntries(asked[0])).toEqual({ range: "1h", bucket: "minute" });

    await userEvent.click(screen.getByRole("textbox", { name: "Consumer" }));
    await userEvent.click(await screen.findByRole("option", { name: "mobile-app" }));
    await userEvent.click(screen.getByRole("textbox", { name: "Route" }));
    await userEvent.click(await screen.findByRole("option", { name: "orders" }));
    await vi.waitFor(() => expect(Object.fromEntries(asked[asked.length - 1])).toEqual({ range: "1h", bucket: "minute", route_id: "3", consumer: "mobile-app" }));
    expect(await screen.findByText("12 requests (route orders, consumer mobile-app)")).toBeTruthy();
  });

  // The last hour's traffic as the API answers it: 2xx, 401, 429 and another 4xx in the minute
  // before NOW, narrowed to a status when asked.
  function lastHour(query: URLSearchParams): [number, unknown] {
    const codes: Record<string, number> = { "2xx": 10, "401": 4, "429": 5, "4xx": 1 };
    const status = query.get("status");
    const kept = Object.fromEntries(Object.entries(codes).filter(([code]) => !status || code === status || (status === "4xx" && code.startsWith("4"))));
    const requests = Object.values(kept).reduce((sum, n) => sum + n, 0);
    const byStatus: Record<string, number> = {};
    for (const [code, n] of Object.entries(kept)) byStatus[`${code[0]}xx`] = (byStatus[`${code[0]}xx`] ?? 0) + n;
    return [
      200,
      {
        ...EMPTY,
        totals: { requests, bytes_in: 0, bytes_out: 0 },
        series: [
          { t: "2026-11-26T18:19:00Z", requests, by_status: byStatus, by_code: kept, latency: { answers: 20, p50_ms: 20, p95_ms: 500, p99_ms: null } },
        ],
        top_routes: [{ route_id: 3, requests }],
        top_consumers: [{ consumer: "mobile-app", requests }],
        top_statuses: Object.entries(kept)
          .sort(([, a], [, b]) => b - a)
          .map(([code, n]) => ({ status: code, requests: n })),
      },
    ];
  }

  function serveLastHour() {
    vi.useFakeTimers({ toFake: ["Date"], now: NOW });
    return answerListApi({
      [`GET ${BASE}/analytics/`]: (_body, query) => lastHour(query),
      [`GET ${BASE}/routes/`]: page([{ id: 3, name: "orders" }]),
      [`GET ${BASE}/consumers/`]: page([{ id: 1, username: "mobile-app" }]),
    });
  }

  it("filters by a status code or a class, the codes offered with their reasons", async () => {
    const { queried } = serveLastHour();
    renderInConsole(<TrafficPanel path={PATH} />);
    expect(await screen.findByText("20 requests")).toBeTruthy();

    await userEvent.click(screen.getByRole("textbox", { name: "Status" }));
    expect(screen.getByRole("option", { name: "Every 4xx" })).toBeTruthy();
    expect(screen.getByRole("option", { name: "503 Service Unavailable" })).toBeTruthy();
    await userEvent.click(screen.getByRole("option", { name: "429 Too Many Requests" }));
    expect(await screen.findByText("5 requests (status 429)")).toBeTruthy();
    expect(Object.fromEntries(queried(`${BASE}/analytics/`).at(-1)!)).toEqual({ range: "1h", bucket: "minute", status: "429" });
    // The latencies are every answer's: said so beside their chart.
    expect(screen.getByText(/of every status: latencies are kept by route and consumer/)).toBeTruthy();

    await userEvent.click(screen.getByRole("textbox", { name: "Status" }));
    await userEvent.click(screen.getByRole("option", { name: "Every 4xx" }));
    expect(await screen.findByText("10 requests (status 4xx)")).toBeTruthy();
  });

  it("shows the requests by class or by code, and the latency percentiles per minute", async () => {
    serveLastHour();
    renderInConsole(<TrafficPanel path={PATH} />);
    expect(await screen.findByRole("img", { name: "Requests per minute by status class, last 1h: 2xx 10, 3xx 0, 4xx 10, 5xx 0" })).toBeTruthy();
    expect(screen.getByRole("radio", { name: "By class" })).toHaveProperty("checked", true);

    await userEvent.click(screen.getByRole("radio", { name: "By code" }));
    expect(
      screen.getByRole("img", { name: "Requests per minute by status code, last 1h: 2xx 10, 401 Unauthorized 4, 429 Too Many Requests 5, other 4xx 1" }),
    ).toBeTruthy();
    expect(screen.getByRole("img", { name: "Latency per minute, last 1h; at its highest: p50 ≤ 20 ms, p95 ≤ 500 ms, p99 > 10 s" })).toBeTruthy();
  });

  it("applies a top route, consumer or status as the filter, by click or keyboard, and lifts it the same way", async () => {
    const { queried } = serveLastHour();
    const asked = () => Object.fromEntries(queried(`${BASE}/analytics/`).at(-1)!);
    renderInConsole(<TrafficPanel path={PATH} />);
    const statuses = await screen.findByRole("table", { name: "Top statuses" });
    expect(within(statuses).getAllByRole("row").map((row) => row.textContent)).toEqual(["StatusRequests", "2xx10", "429 Too Many Requests5", "401 Unauthorized4", "other 4xx1"]);

    await userEvent.click(within(statuses).getByText("429 Too Many Requests"));
    expect(await screen.findByText("5 requests (status 429)")).toBeTruthy();
    expect(asked()).toEqual({ range: "1h", bucket: "minute", status: "429" });
    expect(screen.getByRole("button", { name: "Filter by status 429 Too Many Requests" }).getAttribute("aria-pressed")).toBe("true");

    // By keyboard: the route's name is a button.
    const orders = within(screen.getByRole("table", { name: "Top routes" })).getByRole("button", { name: "Filter by route orders" });
    orders.focus();
    await userEvent.keyboard("{Enter}");
    expect(await screen.findByText("5 requests (route orders, status 429)")).toBeTruthy();
    expect(asked()).toEqual({ range: "1h", bucket: "minute", route_id: "3", status: "429" });

    await userEvent.click(within(screen.getByRole("table", { name: "Top consumers" })).getByRole("button", { name: "Filter by consumer mobile-app" }));
    expect(await screen.findByText("5 requests (route orders, consumer mobile-app, status 429)")).toBeTruthy();

    // Pressed again, the status filter is lifted.
    await userEvent.click(screen.getByRole("button", { name: "Filter by status 429 Too Many Requests" }));
    expect(await screen.findByText("20 requests (route orders, consumer mobile-app)")).toBeTruthy();
    expect(asked()).toEqual({ range: "1h", bucket: "minute", route_id: "3", consumer: "mobile-app" });
  });
});
