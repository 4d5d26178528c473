import { configure, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { ClusterOverview, OverviewPage } from "./OverviewPage";

// The whole suite runs at once: what the page shows may take more than the default second.
configure({ asyncUtilTimeout: 5000 });

const ME = { user: { id: 1, email: "owner@example.com", name: "" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "owner" }] };
const MINUTE = 60_000;
const START = Date.parse("2026-12-03T12:00:00Z");

const SERIES = Array.from({ length: 60 }, (_, i) => ({
  t: new Date(START + i * MINUTE).toISOString(),
  requests: i === 59 ? 40 : 10,
  errors_4xx: i === 59 ? 4 : 0,
  errors_5xx: i === 58 ? 2 : 0,
}));
const TRAFFIC = {
  from: SERIES[0].t,
  to: new Date(START + 60 * MINUTE).toISOString(),
  requests: 630,
  errors_4xx: 4,
  errors_5xx: 2,
  error_rate_4xx_percent: 0.63,
  error_rate_5xx_percent: 0.32,
  series: SERIES,
};
const GATEWAYS = { total: 3, online: 2, lost: 1, offline: 0, on_latest_version: 2, outdated: 1 };
const QUOTA = {
  plan: "Free",
  period_start: "2026-12-01T00:00:00Z",
  period_end: "2027-01-01T00:00:00Z",
  calls: 8_500,
  included_calls: 10_000,
  used_percent: 85,
  hard_cap: true,
  exceeded: false,
  resets_at: null,
};
const ORGANIZATION = {
  generated_at: "2026-12-03T13:00:00Z",
  clusters: [
    { id: 7, name: "production", latest_version: 12 },
    { id: 8, name: "staging", latest_version: null },
  ],
  gateways: GATEWAYS,
  traffic: TRAFFIC,
  top_failing_routes: [
    { cluster_id: 7, cluster: "production", route_id: 3, name: "orders", requests: 200, errors_5xx: 2, errors_4xx: 1, error_rate_percent: 1.5 },
    { cluster_id: 7, cluster: "production", route_id: 0, name: null, requests: 3, errors_5xx: 0, errors_4xx: 3, error_rate_percent: 100 },
  ],
  quota: QUOTA,
  recent_changes: [
    { at: "2026-12-03T12:58:00Z", actor: "ada@example.com", action: "route.update", target_type: "route", target_id: "3", target: "orders", version: null },
    { at: "2026-12-03T12:50:00Z", actor: null, action: "snapshot.publish", target_type: "configsnapshot", target_id: "9", target: "nightly", version: null },
  ],
};

afterEach(() => vi.unstubAllGlobals());

function region(name: string) {
  return within(screen.getByRole("region", { name }));
}

describe("the organization's overview", () => {
  it("shows gateways, the last hour's requests and errors, failing routes, quota and who changed what", async () => {
    answerApi({ "GET /api/v1/auth/me/": [200, ME], "GET /api/v1/orgs/acme/overview/": [200, ORGANIZATION] });
    renderPage(<OverviewPage />, { url: "/orgs/acme/overview", route: "/orgs/:slug/overview" });

    expect(await screen.findByRole("heading", { name: "Overview" })).toBeTruthy();
    const gateways = await screen.findByRole("region", { name: "Gateways" });
    expect(within(gateways).getByText("2 of 3 online")).toBeTruthy();
    expect(within(gateways).getByText("1 lost")).toBeTruthy();
    expect(within(gateways).getByText("2 on the latest version")).toBeTruthy();
    expect(within(gateways).getByText("1 running an older version")).toBeTruthy();

    const requests = region("Requests, last hour");
    expect(requests.getByText("630")).toBeTruthy();
    const sparkline = requests.getByRole("img");
    expect(sparkline.getAttribute("aria-label")).toMatch(/at most 40 a minute/);
    expect(sparkline.querySelectorAll("polyline")).toHaveLength(3);

    const errors = region("Error rates, last hour");
    expect(errors.getByText("0.63%")).toBeTruthy();
    expect(errors.getByText("0.32%")).toBeTruthy();

    const quota = region("Quota");
    expect(quota.getByText("8,500 of 10,000 calls (Free)")).toBeTruthy();
    const bar = quota.getByRole("progressbar");
    expect(bar.getAttribute("aria-valuenow")).toBe("85");
    expect(bar.getAttribute("aria-label")).toMatch(/85% of the allowance/);
    expect(quota.getByText(/gateways answer 429/)).toBeTruthy();

    const failing = within(screen.getByRole("table", { name: "Top failing routes" }));
    expect(failing.getAllByRole("row").map((row) => row.textContent)).toEqual([
      "RouteClusterRequests4xx5xxErrors",
      "ordersproduction200121.5%",
      "(no route matched)production330100%",
    ]);

    const changes = within(screen.getByRole("table", { name: "Recent changes" }));
    expect(changes.getByText("ada@example.com")).toBeTruthy();
    expect(changes.getByText("route.update")).toBeTruthy();
    expect(changes.getByText("system")).toBeTruthy();

    const clusters = region("Clusters");
    expect(clusters.getByRole("link", { name: "production" }).getAttribute("href")).toBe("/orgs/acme/clusters/7");
    expect(clusters.getByText("v12")).toBeTruthy();
    expect(clusters.getByText("no version yet")).toBeTruthy();
  });

  it("shows a billing member the quota only: the rest is not theirs to read", async () => {
    answerApi({
      "GET /api/v1/auth/me/": [200, { ...ME, organizations: [{ ...ME.organizations[0], role: "billing" }] }],
      "GET /api/v1/orgs/acme/overview/": [
        200,
        { ...ORGANIZATION, clusters: null, gateways: null, traffic: null, top_failing_routes: null, recent_changes: null, quota: { ...QUOTA, calls: 12_000, used_percent: 120, exceeded: true, resets_at: "2027-01-01T00:00:00Z" } },
      ],
    });
    renderPage(<OverviewPage />, { url: "/orgs/acme/overview", route: "/orgs/:slug/overview" });
    const quota = await screen.findByRole("region", { name: "Quota" });
    expect(within(quota).getByRole("progressbar").getAttribute("aria-valuenow")).toBe("100");
    expect(within(quota).getByText(/Allowance used up, until/)).toBeTruthy();
    expect(screen.queryByRole("region", { name: "Gateways" })).toBeNull();
    expect(screen.queryByRole("region", { name: "Clusters" })).toBeNull();
    expect(screen.queryByRole("table")).toBeNull();
  });

  it("says when no gateway has connected and nothing has failed", async () => {
    answerApi({
      "GET /api/v1/auth/me/": [200, ME],
      "GET /api/v1/orgs/acme/overview/": [
        200,
        {
          ...ORGANIZATION,
          clusters: [],
          gateways: { total: 0, online: 0, lost: 0, offline: 0, on_latest_version: 0, outdated: 0 },
          traffic: { ...TRAFFIC, requests: 0, errors_4xx: 0, errors_5xx: 0, error_rate_4xx_percent: null, error_rate_5xx_percent: null, series: SERIES.map((p) => ({ ...p, requests: 0, errors_4xx: 0, errors_5xx: 0 })) },
          top_failing_routes: [],
          recent_changes: [],
        },
      ],
    });
    renderPage(<OverviewPage />, { url: "/orgs/acme/overview", route: "/orgs/:slug/overview" });
    expect(await screen.findByText("No gateway has connected yet.")).toBeTruthy();
    expect(screen.getByText("No 4xx or 5xx answers in the last hour.")).toBeTruthy();
    expect(screen.getByText("Nothing changed yet.")).toBeTruthy();
    expect(region("Error rates, last hour").getAllByText("–")).toHaveLength(2);
    expect(screen.getByRole("link", { name: "Create a cluster" }).getAttribute("href")).toBe("/orgs/acme/clusters");
  });
});

describe("a cluster's overview", () => {
  it("shows its gateways against its latest version, and who published its recent versions", async () => {
    answerApi({
      "GET /api/v1/auth/me/": [200, ME],
      "GET /api/v1/orgs/acme/clusters/7/overview/": [
        200,
        {
          generated_at: "2026-12-03T13:00:00Z",
          cluster: { id: 7, name: "production", latest_version: 12 },
          gateways: GATEWAYS,
          traffic: TRAFFIC,
          top_failing_routes: [ORGANIZATION.top_failing_routes[0]],
          quota: QUOTA,
          recent_changes: [{ at: "2026-12-03T12:58:00Z", actor: "ada@example.com", action: "snapshot.publish", target_type: "configsnapshot", target_id: "40", target: "route.update orders", version: 12 }],
        },
      ],
    });
    renderPage(<ClusterOverview path={{ org_slug: "acme", cluster_id: "7" }} />, { url: "/orgs/acme/clusters/7" });
    expect(await screen.findByText("2 on the latest version (v12)")).toBeTruthy();
    const versions = within(screen.getByRole("table", { name: "Recent versions" }));
    expect(versions.getByText("v12")).toBeTruthy();
    expect(versions.getByText("route.update orders")).toBeTruthy();
    expect(versions.getByText("ada@example.com")).toBeTruthy();
    // One cluster: no cluster column among the failing routes.
    expect(within(screen.getByRole("table", { name: "Top failing routes" })).queryByText("Cluster")).toBeNull();
  });
});
