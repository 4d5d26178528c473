import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { keys } from "../api/queries";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { ClustersPage } from "./ClustersPage";

const ME = { user: { id: 1, email: "owner@example.com", name: "" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "owner" }] };

afterEach(() => vi.unstubAllGlobals());

describe("the clusters", () => {
  it("lists a cluster just created, and refreshes the audit log", async () => {
    let clusters: object[] = [];
    answerApi({
      "GET /api/v1/auth/me/": [200, ME],
      "GET /api/v1/orgs/acme/clusters/": () => [200, { results: clusters }],
      "POST /api/v1/orgs/acme/clusters/": (body) => {
        clusters = [{ id: 7, name: (body as { name: string }).name, description: "", latest_version: null }];
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
    expect(queries.getQueryState(keys.audit("acme"))?.isInvalidated).toBe(true);
  });
});
