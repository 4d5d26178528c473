import { configure, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { keys } from "../api/queries";
import { answerListApi, pageOf } from "../test/fakeListApi";
import { renderPage } from "../test/renderPage";
import { ClustersPage } from "./ClustersPage";

// The whole suite runs at once: what the page shows may take more than the default second.
configure({ asyncUtilTimeout: 5000 });

const ME = { user: { id: 1, email: "owner@example.com", name: "" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "owner" }] };
const CLUSTERS = "/api/v1/orgs/acme/clusters/";

function cluster(id: number, name: string, description = "") {
  return { id, name, description, labels: {}, latest_version: null, created_at: `2026-12-0${id}T00:00:00Z`, updated_at: "2026-12-03T00:00:00Z" };
}

afterEach(() => vi.unstubAllGlobals());
// A page of several tables and selects renders slowly in jsdom.
vi.setConfig({ testTimeout: 20_000 });

describe("the clusters", () => {
  it("lists a cluster just created, and refreshes the audit log", async () => {
    let clusters: ReturnType<typeof cluster>[] = [];
    answerListApi({
      "GET /api/v1/auth/me/": [200, ME],
      [`GET ${CLUSTERS}`]: (_, query) => pageOf(clusters, query),
      [`POST ${CLUSTERS}`]: (body) => {
        clusters = [cluster(7, (body as { name: string }).name)];
        return [201, clusters[0]];
      },
    });
    const { queries } = renderPage(<ClustersPage />, { url: "/orgs/acme/clusters", route: "/orgs/:slug/clusters" });
    queries.setQueryData(keys.audit("acme"), { results: [] }); // the audit log, read before
    expect(await screen.findByText(/No clusters yet/)).toBeTruthy();

    await userEvent.click(screen.getByRole("button", { name: "New cluster" }));
    const dialog = within(await screen.findByRole("dialog"));
    await userEvent.type(dialog.getByRole("textbox", { name: /Name/ }), "edge");
    await userEvent.click(dialog.getByRole("button", { name: "Create cluster" }));

    expect(await screen.findByRole("link", { name: "edge" })).toBeTruthy();
    expect(screen.getByText("none yet")).toBeTruthy(); // no version published yet
    expect(queries.getQueryState(keys.audit("acme"))?.isInvalidated).toBe(true);
  });

  it("searches and sorts on the server, in a table with a header row", async () => {
    const clusters = [cluster(1, "production", "customers"), cluster(2, "staging"), cluster(3, "edge-eu", "customers in the EU")];
    const { queried } = answerListApi({
      "GET /api/v1/auth/me/": [200, ME],
      [`GET ${CLUSTERS}`]: (_, query) => pageOf(clusters, query, (c) => `${c.name} ${c.description}`),
    });
    renderPage(<ClustersPage />, { url: "/orgs/acme/clusters", route: "/orgs/:slug/clusters" });
    const table = await screen.findByRole("table", { name: "Clusters" });
    await screen.findByRole("link", { name: "staging" });
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent?.replace(/ [▲▼↕]$/, ""))).toEqual(["Name", "Description", "Latest version", "Created"]);

    await userEvent.type(screen.getByRole("searchbox", { name: "Search clusters" }), "customers");
    await waitFor(() => expect(screen.queryByRole("link", { name: "staging" })).toBeNull());
    expect(screen.getByRole("link", { name: "production" })).toBeTruthy();
    expect(queried(CLUSTERS).slice(-1)[0]?.get("search")).toBe("customers");

    await userEvent.click(screen.getByRole("button", { name: /Name/ }));
    await waitFor(() => expect(queried(CLUSTERS).slice(-1)[0]?.get("ordering")).toBe("name"));
    await waitFor(() => expect(screen.getAllByRole("link").map((link) => link.textContent)).toEqual(["edge-eu", "production"]));
  });

  it("offers no new cluster to a viewer", async () => {
    answerListApi({
      "GET /api/v1/auth/me/": [200, { ...ME, organizations: [{ ...ME.organizations[0], role: "viewer" }] }],
      [`GET ${CLUSTERS}`]: (_, query) => pageOf([cluster(1, "production")], query),
    });
    renderPage(<ClustersPage />, { url: "/orgs/acme/clusters", route: "/orgs/:slug/clusters" });
    expect(await screen.findByRole("link", { name: "production" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "New cluster" })).toBeNull();
  });
});
