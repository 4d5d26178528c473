import { configure, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerListApi, pageOf } from "../test/fakeListApi";
import { renderPage } from "../test/renderPage";
import { ClusterPage } from "./ClusterPage";

// The whole suite runs at once: what the page shows may take more than the default second.
configure({ asyncUtilTimeout: 5000 });

const ME = { user: { id: 1, email: "owner@example.com", name: "" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "owner" }] };
const CLUSTER = "/api/v1/orgs/acme/clusters/7";
const NOW = Date.now();
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();
const later = (seconds: number) => new Date(NOW + seconds * 1000).toISOString();

const INSTANCES = [
  {
    id: 1,
    instance_id: "0f8e2a6c-1111-4a5b-9c3d-000000000001",
    hostname: "gw-eu-1",
    address: "10.0.0.11",
    agent_version: "1.4.0",
    haproxy_version: "3.0.5",
    labels: {},
    token: "gct_acme_ab12",
    registered_at: ago(7200),
    status: "online",
    last_heartbeat_at: ago(5),
    applied_version: 12,
    latest_version: 12,
    on_latest_version: true,
    last_error: null,
  },
  {
    id: 2,
    instance_id: "9a7b6c5d-2222-4a5b-9c3d-000000000002",
    hostname: "gw-eu-2",
    address: "10.0.0.12",
    agent_version: "1.3.9",
    haproxy_version: "",
    labels: {},
    token: "gct_acme_ab12",
    registered_at: ago(7200),
    status: "lost",
    last_heartbeat_at: ago(600),
    applied_version: 11,
    latest_version: 12,
    on_latest_version: false,
    last_error: "reload failed: bind 0.0.0.0:443: permission denied",
  },
];

type Token = { id: number; name: string; prefix: string; status: string; created_by: string; created_at: string; last_used_at: string | null; revoked_at: string | null };

/** The cluster's API as the server keeps it: tokens made, rotated and revoked. */
function clusterApi(role = "owner") {
  const state = {
    tokens: [{ id: 1, name: "gateway", prefix: "gct_acme_ab12", status: "active", created_by: "owner@example.com", created_at: ago(86400), last_used_at: ago(300), revoked_at: null }] as Token[],
  };
  const api = answerListApi({
    "GET /api/v1/auth/me/": [200, { ...ME, organizations: [{ ...ME.organizations[0], role }] }],
    [`GET ${CLUSTER}/`]: [200, { id: 7, name: "production", description: "", labels: {}, latest_version: 12 }],
    [`GET ${CLUSTER}/overview/`]: [
      200,
      {
        generated_at: ago(0),
        cluster: { id: 7, name: "production", latest_version: 12 },
        gateways: { total: 2, online: 1, lost: 1, offline: 0, on_latest_version: 1, outdated: 1 },
        traffic: { from: ago(3600), to: ago(0), requests: 0, errors_4xx: 0, errors_5xx: 0, error_rate_4xx_percent: null, error_rate_5xx_percent: null, series: [] },
        top_failing_routes: [],
        quota: { plan: "Free", period_start: ago(86400), period_end: later(86400), calls: 0, included_calls: 10000, used_percent: 0, hard_cap: true, exceeded: false, resets_at: null },
        recent_changes: [],
      },
    ],
    [`GET ${CLUSTER}/instances/`]: (_, query) =>
      pageOf(
        INSTANCES.filter((i) => !query.get("status") || i.status === query.get("status")),
        query,
      ),
    [`GET ${CLUSTER}/tokens/`]: (_, query) => pageOf(state.tokens, query),
    [`POST ${CLUSTER}/tokens/`]: (body) => {
      const token: Token = { id: 2, name: (body as { name: string }).name, prefix: "gct_acme_cd34", status: "active", created_by: "owner@example.com", created_at: ago(0), last_used_at: null, revoked_at: null };
      state.tokens = [token, ...state.tokens];
      return [201, { ...token, token: "gct_acme_cd34_new_secret" }];
    },
    [`POST ${CLUSTER}/tokens/1/rotate/`]: (body) => {
      const grace = (body as { grace_seconds: number }).grace_seconds;
      state.tokens = [
        { id: 3, name: "gateway", prefix: "gct_acme_ef56", status: "active", created_by: "owner@example.com", created_at: ago(0), last_used_at: null, revoked_at: null },
        ...state.tokens.map((t) => (t.id === 1 ? { ...t, status: "rotating", revoked_at: later(grace) } : t)),
      ];
      return [201, { ...state.tokens[0], token: "gct_acme_ef56_rotated_secret" }];
    },
    [`DELETE ${CLUSTER}/tokens/1/`]: () => {
      state.tokens = state.tokens.map((t) => (t.id === 1 ? { ...t, status: "revoked", revoked_at: ago(0) } : t));
      return [204, null];
    },
  });
  return { ...api, state };
}

function renderCluster() {
  return renderPage(<ClusterPage />, { url: "/orgs/acme/clusters/7", route: "/orgs/:slug/clusters/:clusterId" });
}

afterEach(() => vi.unstubAllGlobals());
// A page of several tables and selects renders slowly in jsdom.
vi.setConfig({ testTimeout: 20_000 });

describe("a cluster's page", () => {
  it("opens on the cluster's overview", async () => {
    clusterApi();
    renderCluster();
    expect(await screen.findByRole("heading", { name: "production" })).toBeTruthy();
    expect(screen.getByRole("tab", { name: "Overview" }).getAttribute("aria-selected")).toBe("true");
    expect(await screen.findByText("1 of 2 online")).toBeTruthy();
  });

  it("tells its gateways apart: id, hostname, address, versions, applied against latest, heartbeat, last error", async () => {
    const { queried } = clusterApi();
    renderCluster();
    await userEvent.click(await screen.findByRole("tab", { name: "Gateways" }));
    const table = within(await screen.findByRole("table", { name: "Instances" }));
    await table.findByText("gw-eu-1");
    expect(table.getAllByRole("columnheader").map((h) => h.textContent?.replace(/ [▲▼↕]$/, ""))).toEqual([
      "ID",
      "Hostname",
      "Address",
      "Status",
      "Config version",
      "Agent",
      "HAProxy",
      "Last heartbeat",
      "Last error",
    ]);
    const second = within(table.getByText("gw-eu-2").closest("tr")!);
    expect(second.getByText("9a7b6c5d").getAttribute("title")).toBe(INSTANCES[1].instance_id);
    expect(second.getByText("10.0.0.12")).toBeTruthy();
    expect(second.getByText("lost")).toBeTruthy();
    expect(second.getByText("v11 of v12")).toBeTruthy();
    expect(second.getByText("1.3.9")).toBeTruthy();
    expect(second.getByText("10 min ago")).toBeTruthy();
    expect(second.getByText(/permission denied/)).toBeTruthy();
    const first = within(table.getByText("gw-eu-1").closest("tr")!);
    expect(first.getByText("up to date")).toBeTruthy();
    expect(first.getByText("3.0.5")).toBeTruthy();

    // The status filter asks the API for those only.
    await userEvent.click(screen.getByRole("textbox", { name: "Status" }));
    await userEvent.click(await screen.findByRole("option", { name: "Lost" }));
    await waitFor(() => expect(table.queryByText("gw-eu-1")).toBeNull());
    expect(queried(`${CLUSTER}/instances/`).slice(-1)[0]?.get("status")).toBe("lost");
    // Sorted by the last heartbeat, on the server.
    await userEvent.click(screen.getByRole("button", { name: /Last heartbeat/ }));
    await waitFor(() => expect(queried(`${CLUSTER}/instances/`).slice(-1)[0]?.get("ordering")).toBe("last_heartbeat_at"));
  }, 15_000);

  it("lists cluster tokens with their last use, makes one shown once, rotates one with a grace period, revokes one after confirming", async () => {
    const { calls } = clusterApi();
    renderCluster();
    await userEvent.click(await screen.findByRole("tab", { name: "Gateways" }));
    const tokens = within(await screen.findByRole("table", { name: "Cluster tokens" }));
    const row = () => within(tokens.getByText("gct_acme_ab12…").closest("tr")!);
    expect(await tokens.findByText("5 min ago")).toBeTruthy();
    expect(row().getByText("active")).toBeTruthy();

    // Made: the secret shown once, with a copy button.
    await userEvent.clear(screen.getByRole("textbox", { name: /Token name/ }));
    await userEvent.type(screen.getByRole("textbox", { name: /Token name/ }), "edge-eu");
    await userEvent.click(screen.getByRole("button", { name: "Create cluster token" }));
    expect(await screen.findByText("gct_acme_cd34_new_secret")).toBeTruthy();
    expect(screen.getByText("Your cluster token edge-eu (shown once)")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Copy the secret" })).toBeTruthy();
    expect(await tokens.findByText("edge-eu")).toBeTruthy();

    // Rotated with a grace period of 24 hours: the old one listed as rotating until then.
    await userEvent.click(row().getByRole("button", { name: /^Rotate gateway/ }));
    const dialog = within(await screen.findByRole("dialog", { name: "Rotate gateway" }));
    expect((dialog.getByRole("textbox", { name: "Grace period" }) as HTMLInputElement).value).toBe("1 hour");
    await userEvent.click(dialog.getByRole("textbox", { name: "Grace period" }));
    await userEvent.click(await screen.findByRole("option", { name: "24 hours" }));
    await userEvent.click(dialog.getByRole("button", { name: "Rotate" }));
    expect(calls.find((call) => call.path === `${CLUSTER}/tokens/1/rotate/`)?.body).toEqual({ grace_seconds: 86400 });
    expect(await screen.findByText("gct_acme_ef56_rotated_secret")).toBeTruthy();
    await waitFor(() => expect(row().getByText("rotating")).toBeTruthy());
    expect(row().getByText(/works until .* \(in 24 h\)/)).toBeTruthy();
    expect(row().queryByRole("button", { name: /^Rotate/ })).toBeNull(); // rotate its replacement instead

    // Revoked once confirmed.
    await userEvent.click(row().getByRole("button", { name: /^Revoke gateway/ }));
    const confirm = within(await screen.findByRole("dialog", { name: "Revoke gateway?" }));
    await userEvent.click(confirm.getByRole("button", { name: "Revoke" }));
    await waitFor(() => expect(row().getByText("revoked")).toBeTruthy());
    expect(calls.filter((call) => call.method === "DELETE").map((call) => call.path)).toEqual([`${CLUSTER}/tokens/1/`]);
  }, 20_000);

  it("shows no cluster tokens to a developer, who may not manage them", async () => {
    clusterApi("developer");
    renderCluster();
    await userEvent.click(await screen.findByRole("tab", { name: "Gateways" }));
    expect(await screen.findByRole("table", { name: "Instances" })).toBeTruthy();
    await screen.findByText("gw-eu-1");
    expect(screen.queryByRole("table", { name: "Cluster tokens" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Create cluster token" })).toBeNull();
  });
});
