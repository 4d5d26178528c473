import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderInConsole } from "../test/render";
import { analyticsQuery, everyBucket, TrafficPanel } from "./TrafficPanel";

const NOW = Date.parse("2026-11-26T18:20:00Z");
const BASE = "/api/v1/orgs/acme/clusters/7";
const PATH = { org_slug: "acme", cluster_id: "7" };
const page = (results: unknown[]) => [200, { count: results.length, next: null, previous: null, results }] as [number, unknown];
const EMPTY = { totals: { requests: 0, bytes_in: 0, bytes_out: 0 }, series: [], top_routes: [], top_consumers: [], latency_by_route: [] };

afterEach(() => vi.unstubAllGlobals());
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

describe("the traffic panel", () => {
  it("asks for a route's or a consumer's requests only when filtered, the anonymous ones as an empty consumer", () => {
    expect(analyticsQuery("1h", null, null)).toEqual({ range: "1h", bucket: "minute" });
    expect(analyticsQuery("7d", "3", "mobile-app")).toEqual({ range: "7d", bucket: "hour", route_id: "3", consumer: "mobile-app" });
    expect(analyticsQuery("24h", "0", "(anonymous)")).toEqual({ range: "24h", bucket: "hour", route_id: "0", consumer: "" });
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
});
