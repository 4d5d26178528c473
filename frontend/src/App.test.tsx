import { screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { answerApi } from "./test/fakeApi";
import { renderPage } from "./test/renderPage";

const ME = { user: { id: 1, email: "nina@example.com", name: "Nina" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "developer" }] };

afterEach(() => vi.unstubAllGlobals());

describe("the console's addresses", () => {
  // Where an accepted invitation sends people (saas/templates/accept_invitation.html).
  it("opens an organization's address on its clusters", async () => {
    answerApi({
      "GET /api/v1/auth/me/": [200, ME],
      "GET /api/v1/orgs/acme/clusters/": [200, { results: [{ id: 7, name: "edge", description: "", latest_version: 1 }] }],
    });
    renderPage(<App />, { url: "/orgs/acme" });
    expect(await screen.findByRole("link", { name: "edge" })).toBeTruthy();
    await waitFor(() => expect(screen.getByTestId("address").textContent).toBe("/orgs/acme/clusters"));
  });
});
