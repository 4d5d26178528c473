import { configure, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { answerApi } from "./test/fakeApi";
import { renderPage } from "./test/renderPage";

// The whole suite runs at once: what the page shows may take more than the default second.
configure({ asyncUtilTimeout: 5000 });

const ME = { user: { id: 1, email: "nina@example.com", name: "Nina" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "developer" }] };
const OVERVIEW = {
  generated_at: "2026-12-03T13:00:00Z",
  clusters: [{ id: 7, name: "edge", latest_version: 1 }],
  gateways: { total: 0, online: 0, lost: 0, offline: 0, on_latest_version: 0, outdated: 0 },
  traffic: null,
  top_failing_routes: [],
  quota: null,
  recent_changes: [],
};

afterEach(() => vi.unstubAllGlobals());

describe("the console's addresses", () => {
  // Where an accepted invitation sends people (saas/templates/accept_invitation.html).
  it("opens an organization's address on its overview", async () => {
    answerApi({ "GET /api/v1/auth/me/": [200, ME], "GET /api/v1/orgs/acme/overview/": [200, OVERVIEW] });
    renderPage(<App />, { url: "/orgs/acme" });
    // Pages load lazily: the first import of a page takes a while under test.
    expect(await screen.findByRole("link", { name: "edge" }, { timeout: 5000 })).toBeTruthy();
    await waitFor(() => expect(screen.getByTestId("address").textContent).toBe("/orgs/acme/overview"));
  }, 15_000);

  it("opens on the first organization's overview after signing in, and marks the page open", async () => {
    answerApi({
      "GET /api/v1/auth/me/": [200, ME],
      "GET /api/v1/orgs/acme/overview/": [200, OVERVIEW],
      "GET /api/v1/orgs/acme/clusters/": [200, { count: 1, results: [{ id: 7, name: "edge", description: "", latest_version: 1, created_at: "2026-12-01T00:00:00Z" }] }],
    });
    renderPage(<App />, { url: "/" });
    expect(await screen.findByRole("heading", { name: "Overview" }, { timeout: 5000 })).toBeTruthy();
    expect(screen.getByTestId("address").textContent).toBe("/orgs/acme/overview");
    expect(screen.getByRole("link", { name: "Overview" }).getAttribute("aria-current")).toBe("page");

    // The clusters' page loads when first opened.
    await userEvent.click(screen.getByRole("link", { name: "Clusters" }));
    expect(await screen.findByRole("table", { name: "Clusters" }, { timeout: 5000 })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Clusters" }).getAttribute("aria-current")).toBe("page");
    expect(screen.getByRole("link", { name: "Overview" }).getAttribute("aria-current")).toBeNull();
  }, 15_000);

  it("keeps the organization last open in the header and the navigation on the account page", async () => {
    answerApi({
      "GET /api/v1/auth/me/": [200, ME],
      "GET /api/v1/auth/sessions/": [200, []],
      "GET /api/v1/orgs/acme/overview/": [200, OVERVIEW],
    });
    renderPage(<App />, { url: "/account" });
    const overview = await screen.findByRole("link", { name: "Overview" }, { timeout: 5000 });
    expect(overview.getAttribute("href")).toBe("/orgs/acme/overview");
    expect(overview.getAttribute("aria-current")).toBeNull();
    const picker = screen.getByRole("textbox", { name: "Organization" }) as HTMLInputElement;
    expect(picker.value).toBe("Acme");
    // Picking the organization shown opens it (Mantine's select once cleared itself instead).
    await userEvent.click(picker);
    await userEvent.click(await screen.findByRole("option", { name: "Acme" }));
    await waitFor(() => expect(screen.getByTestId("address").textContent).toBe("/orgs/acme/overview"));
    expect((screen.getByRole("textbox", { name: "Organization" }) as HTMLInputElement).value).toBe("Acme");
  }, 15_000);
});
