import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi, type Answers } from "../test/fakeApi";
import { renderInConsole } from "../test/render";
import { CatalogPanel } from "./CatalogPanel";

const BASE = "/api/v1/orgs/acme/clusters/7";
const PATH = { org_slug: "acme", cluster_id: "7" };
const LIMIT_COUNT = {
  name: "limit-count",
  description: "Fixed-window request counting.",
  scopes: ["route", "service", "consumer"],
  schema: {
    type: "object",
    properties: { count: { type: "integer", minimum: 1 }, time_window: { type: "integer", enum: [1, 60, 3600, 86400] } },
    required: ["count", "time_window"],
  },
};
const CATALOG = {
  [`GET ${BASE}/routes/`]: [200, { results: [{ id: 1, name: "orders", service: "orders", paths: [{ value: "/orders" }], plugins: { "key-auth": {} } }] }],
  [`GET ${BASE}/services/`]: [200, { results: [{ id: 2, name: "orders", upstream: "backend", plugins: {} }] }],
  [`GET ${BASE}/upstreams/`]: [200, { results: [{ id: 3, name: "backend", targets: [{ host: "10.0.0.5", port: 8080 }] }] }],
  [`GET ${BASE}/consumers/`]: [200, { results: [] }],
  [`GET ${BASE}/certificates/`]: [200, { results: [] }],
  "GET /api/v1/plugins/": [200, { plugins: [LIMIT_COUNT] }],
} satisfies Answers;

afterEach(() => vi.unstubAllGlobals());

describe("the catalog", () => {
  it("lists routes with their paths, service and plugins", async () => {
    answerApi({ ...CATALOG });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    expect(await screen.findByText("/orders → orders")).toBeTruthy();
    expect(screen.getByText("key-auth")).toBeTruthy();
  });

  it("shows each of the API's validation errors beside its field, and keeps what was typed", async () => {
    const calls = answerApi({
      ...CATALOG,
      [`POST ${BASE}/routes/`]: [
        400,
        {
          detail: "paths.0.value: a path starts with / and has no spaces",
          errors: {
            "paths.0.value": ["a path starts with / and has no spaces"],
            "plugins.limit-count": ["limit-count: 'time_window' is a required property"],
          },
        },
      ],
    });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "New route" }));
    const form = within(await screen.findByRole("dialog"));
    await userEvent.type(form.getByRole("textbox", { name: /Name/ }), "checkout");
    await userEvent.click(form.getByRole("textbox", { name: /Service/ }));
    await userEvent.click(await screen.findByRole("option", { name: "orders" }));
    const paths = form.getByRole("textbox", { name: /Paths/ });
    await userEvent.clear(paths);
    await userEvent.type(paths, "checkout");
    await userEvent.click(form.getByRole("textbox", { name: /^Plugins/ }));
    await userEvent.click(await screen.findByRole("option", { name: "limit-count" }));
    await userEvent.type(form.getByRole("textbox", { name: /count/ }), "100");
    await userEvent.click(form.getByRole("button", { name: "Create" }));

    expect(await form.findByText("a path starts with / and has no spaces")).toBeTruthy();
    expect(paths.getAttribute("aria-invalid")).toBe("true");
    expect(form.getByRole("textbox", { name: /time window/ }).getAttribute("aria-invalid")).toBe("true");
    expect(form.getByText("'time_window' is a required property")).toBeTruthy();
    expect((paths as HTMLInputElement).value).toBe("checkout");
    const sent = calls.find((call) => call.method === "POST");
    expect(sent?.body).toEqual({ name: "checkout", service: "orders", paths: [{ value: "checkout" }], methods: [], plugins: { "limit-count": { count: 100 } } });
  });

  it("saves an edit as a PATCH of the changed fields only, naming the revision it opened", async () => {
    const route = {
      id: 1, name: "orders", service: "orders", revision: 4, hosts: ["api.example.com"], priority: 5, strip_path_prefix: "/orders",
      paths: [{ type: "exact", value: "/orders" }], methods: ["GET"], headers: [{ name: "X-Tenant", value: "acme", type: "exact" }], plugins: { "key-auth": {} },
    };
    const calls = answerApi({
      ...CATALOG,
      [`GET ${BASE}/routes/`]: [200, { results: [route] }],
      [`PATCH ${BASE}/routes/1/`]: [200, { ...route, name: "orders-v2", revision: 5 }],
    });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "Edit" }));
    const form = within(await screen.findByRole("dialog"));
    const name = form.getByRole("textbox", { name: /Name/ });
    await userEvent.clear(name);
    await userEvent.type(name, "orders-v2");
    await userEvent.click(form.getByRole("button", { name: "Save" }));

    await vi.waitFor(() => expect(calls.some((call) => call.method === "PATCH")).toBe(true));
    const sent = calls.find((call) => call.method === "PATCH");
    expect(sent?.body).toEqual({ name: "orders-v2" });
    expect(sent?.headers["if-match"]).toBe('"4"');
    expect(calls.some((call) => call.method === "PUT")).toBe(false);
  });

  it("tells who changed an entry meanwhile instead of overwriting it", async () => {
    const route = { id: 1, name: "orders", service: "orders", revision: 4, paths: [{ value: "/orders" }], methods: [], plugins: {} };
    answerApi({
      ...CATALOG,
      [`GET ${BASE}/routes/`]: [200, { results: [route] }],
      [`PATCH ${BASE}/routes/1/`]: [412, { detail: "Route orders was changed by bob@example.com at 2026-12-03 10:00:00 UTC (revision 5; you edited revision 4). Reload it and make your change again.", current_revision: 5, updated_by: "bob@example.com", updated_at: "2026-12-03T10:00:00Z" }],
    });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "Edit" }));
    const form = within(await screen.findByRole("dialog"));
    await userEvent.type(form.getByRole("textbox", { name: /Name/ }), "-v2");
    await userEvent.click(form.getByRole("button", { name: "Save" }));

    expect(await form.findByText(/changed by bob@example.com/)).toBeTruthy();
    expect(form.getByRole("button", { name: "Reload" })).toBeTruthy();
  });

  it("offers no way to change anything to a role that may not", async () => {
    answerApi({ ...CATALOG });
    renderInConsole(<CatalogPanel path={PATH} canWrite={false} />);
    expect(await screen.findByText("/orders → orders")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "New route" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Edit" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Delete" })).toBeNull();
  });
});
