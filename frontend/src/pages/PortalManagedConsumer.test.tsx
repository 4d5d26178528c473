// The catalog's consumer editor (CatalogPanel.tsx) with a consumer the developer portal manages:
// it warns, and asks before saving.
import { configure, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { OPENAPI } from "../test/catalogSchemas";
import { answerApi } from "../test/fakeApi";
import { renderInConsole } from "../test/render";
import { CatalogPanel } from "./CatalogPanel";

configure({ asyncUtilTimeout: 5000 });
vi.setConfig({ testTimeout: 30_000 });
afterEach(() => vi.unstubAllGlobals());

const BASE = "/api/v1/orgs/acme/clusters/7";
const page = (results: unknown[]) => [200, { count: results.length, next: null, previous: null, results }] as [number, unknown];
const MANAGED = { id: 4, username: "portal-app-41", revision: 3, labels: { "managed-by": "portal", "portal-application": "41", "portal-version-11": "subscribed" }, plugins: {}, credentials: [{ type: "key-auth" }] };
const OWN = { id: 5, username: "web", revision: 1, labels: { team: "web" }, plugins: {}, credentials: [] };

function catalogApi() {
  return answerApi({
    "GET /api/schema/": [200, OPENAPI],
    [`GET ${BASE}/routes/`]: page([]),
    [`GET ${BASE}/consumers/`]: page([MANAGED, OWN]),
    "GET /api/v1/plugins/": [200, { plugins: [] }],
    [`PATCH ${BASE}/consumers/4/`]: (body) => [200, { ...MANAGED, ...(body as object), revision: 4 }],
    [`PATCH ${BASE}/consumers/5/`]: (body) => [200, { ...OWN, ...(body as object), revision: 2 }],
  });
}

async function editConsumer(name: string) {
  renderInConsole(<CatalogPanel path={{ org_slug: "acme", cluster_id: "7" }} canWrite />);
  await userEvent.click(await screen.findByRole("tab", { name: "Consumers" }));
  await userEvent.click(await screen.findByRole("button", { name: `Edit ${name}` }));
  return within(await screen.findByRole("dialog", { name: `Edit ${name}` }));
}

describe("a consumer the developer portal manages", () => {
  it("warns that edits are overwritten, and saves only once confirmed", async () => {
    const calls = catalogApi();
    const form = await editConsumer("portal-app-41");
    expect(form.getByText(/The developer portal manages this consumer/)).toBeTruthy();
    expect(form.getByText(/edits made here are overwritten/)).toBeTruthy();
    await userEvent.type(form.getByRole("textbox", { name: /^Username/ }), "-x");
    await userEvent.click(form.getByRole("button", { name: "Save" }));

    const confirm = within(await screen.findByRole("dialog", { name: "Save a consumer the portal manages?" }));
    expect(calls.some((call) => call.method === "PATCH")).toBe(false);
    await userEvent.click(confirm.getByRole("button", { name: "Cancel" }));
    expect(calls.some((call) => call.method === "PATCH")).toBe(false);

    await userEvent.click(form.getByRole("button", { name: "Save" }));
    await userEvent.click(within(await screen.findByRole("dialog", { name: "Save a consumer the portal manages?" })).getByRole("button", { name: "Save anyway" }));
    await vi.waitFor(() => expect(calls.some((call) => call.method === "PATCH")).toBe(true));
    expect(calls.find((call) => call.method === "PATCH")?.body).toEqual({ username: "portal-app-41-x" });
  });

  it("leaves the team's own consumers as they were", async () => {
    const calls = catalogApi();
    const form = await editConsumer("web");
    expect(form.queryByText(/The developer portal manages this consumer/)).toBeNull();
    await userEvent.type(form.getByRole("textbox", { name: /^Username/ }), "-2");
    await userEvent.click(form.getByRole("button", { name: "Save" }));
    await vi.waitFor(() => expect(calls.some((call) => call.method === "PATCH")).toBe(true));
    expect(screen.queryByRole("dialog", { name: "Save a consumer the portal manages?" })).toBeNull();
  });
});
