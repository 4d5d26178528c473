import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { OPENAPI } from "../test/catalogSchemas";
import { answerApi, type Answers } from "../test/fakeApi";
import { renderInConsole } from "../test/render";
import { CatalogPanel } from "./CatalogPanel";

const BASE = "/api/v1/orgs/acme/clusters/7";
const PATH = { org_slug: "acme", cluster_id: "7" };
const LIMIT_COUNT = {
  name: "limit-count",
  description: "At most a number of requests per time window for each key; 429 beyond.",
  scopes: ["route", "service", "consumer"],
  schema: {
    type: "object",
    properties: {
      count: { type: "integer", minimum: 1, title: "Requests", description: "Requests allowed in each time window." },
      time_window: { type: "integer", enum: [1, 60, 3600, 86400], title: "Time window (seconds)" },
    },
    required: ["count", "time_window"],
  },
};
const page = (results: unknown[]) => [200, { count: results.length, next: null, previous: null, results }] as [number, unknown];
const ORDERS_ROUTE = {
  id: 1,
  name: "orders",
  service: "orders",
  revision: 4,
  hosts: [],
  paths: [{ type: "prefix", value: "/orders" }],
  methods: [],
  headers: [],
  priority: 0,
  strip_path_prefix: null,
  plugins: { "key-auth": {} },
  shadowed_by: [],
};
const CATALOG = {
  "GET /api/schema/": [200, OPENAPI],
  [`GET ${BASE}/routes/`]: page([ORDERS_ROUTE]),
  [`GET ${BASE}/services/`]: page([{ id: 2, name: "orders", upstream: "backend", plugins: {} }]),
  [`GET ${BASE}/upstreams/`]: page([{ id: 3, name: "backend", targets: [{ host: "10.0.0.5", port: 8080, weight: 100 }], load_balancing: "roundrobin", scheme: "http" }]),
  [`GET ${BASE}/consumers/`]: page([]),
  [`GET ${BASE}/certificates/`]: page([]),
  "GET /api/v1/plugins/": [200, { plugins: [LIMIT_COUNT] }],
} satisfies Answers;

afterEach(() => vi.unstubAllGlobals());
// Forms of many fields, typed in key by key.
vi.setConfig({ testTimeout: 30_000 });

async function choose(scope: ReturnType<typeof within>, label: RegExp, option: string) {
  await userEvent.click(scope.getByRole("textbox", { name: label }));
  await userEvent.click(await screen.findByRole("option", { name: option }));
}

describe("the catalog", () => {
  it("lists routes in a table with a header row, and warns of a shadowed route", async () => {
    const shadowed = {
      ...ORDERS_ROUTE,
      id: 9,
      name: "order-items",
      paths: [{ type: "exact", value: "/orders/items" }],
      priority: 0,
      shadowed_by: [{ path: "/orders/items", path_type: "exact", route_id: 1, route: "orders", priority: 5, by_path: "/orders", by_path_type: "prefix" }],
    };
    answerApi({ ...CATALOG, [`GET ${BASE}/routes/`]: page([{ ...ORDERS_ROUTE, priority: 5 }, shadowed]) });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    const table = within(await screen.findByRole("table", { name: "Routes" }));
    expect(table.getAllByRole("columnheader").map((th) => th.textContent?.replace(/[▲▼↕]/g, "").trim())).toEqual(["", "Name", "Paths", "Hosts", "Methods", "Service", "Priority", "Plugins", ""]);
    expect(await table.findByText("/orders")).toBeTruthy();
    expect(table.getByText("= /orders/items")).toBeTruthy();
    expect(table.getAllByText("key-auth", { selector: "code" })).toHaveLength(2);
    const badge = table.getByText("Shadowed");
    expect(badge.closest("[title]")?.getAttribute("title")).toMatch(/\/orders\/items is never reached: route orders \(priority 5\) matches it first by prefix \/orders/);
  });

  it("creates a route with every field of its schema, grouped, the Save always at hand", async () => {
    const calls = answerApi({ ...CATALOG, [`POST ${BASE}/routes/`]: (body) => [201, { id: 5, ...(body as object) }] });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "New route" }));
    const form = within(await screen.findByRole("dialog"));
    expect(await form.findByRole("heading", { name: "Matching" })).toBeTruthy();
    await userEvent.type(form.getByRole("textbox", { name: /^Name/ }), "checkout");
    await choose(form, /^Service/, "orders");
    const path1 = within(form.getByRole("group", { name: "Path 1" }));
    await userEvent.type(path1.getByRole("textbox", { name: /^Path/ }), "/checkout");
    await userEvent.click(form.getByRole("button", { name: "Add path" }));
    const path2 = within(form.getByRole("group", { name: "Path 2" }));
    await choose(path2, /Match/, "exact");
    await userEvent.type(path2.getByRole("textbox", { name: /^Path/ }), "/pay");
    await userEvent.type(form.getByRole("textbox", { name: /^Hosts/ }), "shop.example.com{enter}");
    await choose(form, /^Methods/, "POST");
    await userEvent.click(form.getByRole("button", { name: "Add header" }));
    const header = within(form.getByRole("group", { name: "Header 1" }));
    await userEvent.type(header.getByRole("textbox", { name: /Header name/ }), "X-Tenant");
    await userEvent.type(header.getByRole("textbox", { name: /^Value/ }), "acme");
    await userEvent.type(form.getByRole("textbox", { name: /^Priority/ }), "5");
    await userEvent.click(form.getByRole("button", { name: /Advanced settings/ }));
    await userEvent.type(form.getByRole("textbox", { name: /^Strip path prefix/ }), "/checkout");
    await choose(form, /^Plugins/, "limit-count");
    expect(form.getByText("Requests allowed in each time window.")).toBeTruthy(); // from the plugin's schema
    await userEvent.type(form.getByRole("textbox", { name: /^Requests/ }), "100");
    await choose(form, /^Time window/, "60");
    const save = form.getByRole("button", { name: "Create" });
    expect(save.closest("[style*='sticky']")).not.toBeNull();
    await userEvent.click(save);

    await vi.waitFor(() => expect(calls.some((call) => call.method === "POST")).toBe(true));
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({
      name: "checkout",
      service: "orders",
      paths: [{ value: "/checkout" }, { type: "exact", value: "/pay" }],
      hosts: ["shop.example.com"],
      methods: ["POST"],
      headers: [{ name: "X-Tenant", value: "acme" }],
      priority: 5,
      strip_path_prefix: "/checkout",
      plugins: { "limit-count": { count: 100, time_window: 60 } },
    });
  });

  it("shows each of the API's validation errors beside its field, and keeps what was typed", async () => {
    answerApi({
      ...CATALOG,
      [`POST ${BASE}/routes/`]: [
        400,
        {
          detail: "paths.0.value: a path starts with / and has no spaces",
          errors: {
            "paths.0.value": ["a path starts with / and has no spaces"],
            "hosts": ["'bad host' is not a host name (a leading *. wildcard is allowed)"],
            "plugins.limit-count": ["limit-count: 'time_window' is a required property"],
          },
        },
      ],
    });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "New route" }));
    const form = within(await screen.findByRole("dialog"));
    await userEvent.type(await form.findByRole("textbox", { name: /^Name/ }), "checkout");
    await choose(form, /^Service/, "orders");
    const path = within(form.getByRole("group", { name: "Path 1" })).getByRole("textbox", { name: /^Path/ });
    await userEvent.type(path, "checkout");
    await choose(form, /^Plugins/, "limit-count");
    await userEvent.type(form.getByRole("textbox", { name: /^Requests/ }), "100");
    await userEvent.click(form.getByRole("button", { name: "Create" }));

    expect(await form.findByText("a path starts with / and has no spaces")).toBeTruthy();
    expect(path.getAttribute("aria-invalid")).toBe("true");
    expect(form.getByRole("textbox", { name: /^Hosts/ }).getAttribute("aria-invalid")).toBe("true");
    expect(form.getByRole("textbox", { name: /^Time window/ }).getAttribute("aria-invalid")).toBe("true");
    expect(form.getByText("'time_window' is a required property")).toBeTruthy();
    expect(form.getByText("Please correct the fields marked below.")).toBeTruthy();
    expect((path as HTMLInputElement).value).toBe("checkout");
  });

  it("names, in the duplicate-route error, only fields the form offers", async () => {
    answerApi({
      ...CATALOG,
      [`POST ${BASE}/routes/`]: [400, { detail: "x", errors: { paths: ["Route 'orders' (id 1) already matches the same requests at priority 0; change the hosts, methods, headers or paths, or give one a different priority."] } }],
    });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "New route" }));
    const form = within(await screen.findByRole("dialog"));
    await userEvent.type(await form.findByRole("textbox", { name: /^Name/ }), "dup");
    await userEvent.click(form.getByRole("button", { name: "Create" }));
    expect(await form.findByText(/already matches the same requests/)).toBeTruthy();
    for (const field of [/^Hosts/, /^Methods/, /^Priority/]) expect(form.getByRole("textbox", { name: field })).toBeTruthy();
    expect(form.getByRole("button", { name: "Add header" })).toBeTruthy();
  });

  it("saves an edit as a PATCH of the changed fields only, naming the revision it opened; an emptied field is cleared", async () => {
    const route = {
      ...ORDERS_ROUTE,
      hosts: ["api.example.com"],
      priority: 5,
      strip_path_prefix: "/orders",
      paths: [{ type: "exact", value: "/orders" }],
      methods: ["GET"],
      headers: [{ name: "X-Tenant", value: "acme", type: "exact" }],
    };
    const calls = answerApi({
      ...CATALOG,
      [`GET ${BASE}/routes/`]: page([route]),
      [`PATCH ${BASE}/routes/1/`]: [200, { ...route, name: "orders-v2", revision: 5 }],
    });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "Edit orders" }));
    const form = within(await screen.findByRole("dialog"));
    const name = await form.findByRole("textbox", { name: /^Name/ });
    expect((within(form.getByRole("group", { name: "Header 1" })).getByRole("textbox", { name: /^Value/ }) as HTMLInputElement).value).toBe("acme");
    await userEvent.clear(name);
    await userEvent.type(name, "orders-v2");
    await userEvent.click(form.getByRole("button", { name: /Advanced settings/ }));
    await userEvent.clear(form.getByRole("textbox", { name: /^Strip path prefix/ }));
    await userEvent.click(form.getByRole("button", { name: "Save" }));

    await vi.waitFor(() => expect(calls.some((call) => call.method === "PATCH")).toBe(true));
    const sent = calls.find((call) => call.method === "PATCH");
    expect(sent?.body).toEqual({ name: "orders-v2", strip_path_prefix: null });
    expect(sent?.headers["if-match"]).toBe('"4"');
  });

  it("sets an upstream's balancing, TLS and health checks, each field shown where it applies", async () => {
    const calls = answerApi({ ...CATALOG, [`POST ${BASE}/upstreams/`]: (body) => [201, { id: 8, ...(body as object) }] });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("tab", { name: "Upstreams" }));
    await userEvent.click(await screen.findByRole("button", { name: "New upstream" }));
    const form = within(await screen.findByRole("dialog"));
    await userEvent.type(await form.findByRole("textbox", { name: /^Name/ }), "payments");
    const target = within(form.getByRole("group", { name: "Target 1" }));
    await userEvent.type(target.getByRole("textbox", { name: /^Host/ }), "10.0.0.9");
    await userEvent.type(target.getByRole("textbox", { name: /^Port/ }), "8443");
    await userEvent.type(target.getByRole("textbox", { name: /^Weight/ }), "50");
    expect(form.queryByRole("textbox", { name: /^Hash header/ })).toBeNull();
    await choose(form, /^Load balancing/, "hash_header");
    await userEvent.type(form.getByRole("textbox", { name: /^Hash header/ }), "X-User");
    await userEvent.click(form.getByRole("button", { name: /Advanced settings/ }));
    expect(form.queryByRole("textbox", { name: /^TLS server name/ })).toBeNull();
    await choose(form, /^Scheme/, "https");
    await userEvent.type(form.getByRole("textbox", { name: /^TLS server name/ }), "payments.internal");
    await userEvent.click(form.getByRole("switch", { name: /Verify the targets/ }));
    await userEvent.type(form.getByRole("textbox", { name: /^Connect/ }), "2");
    await userEvent.type(form.getByRole("textbox", { name: /^Retries/ }), "3");
    await userEvent.click(form.getByRole("switch", { name: "Check the targets" }));
    await userEvent.type(form.getByRole("textbox", { name: /^Check path/ }), "/healthz");
    await userEvent.click(form.getByRole("switch", { name: "Watch answers" }));
    await userEvent.type(form.getByRole("textbox", { name: /^Failures/ }), "4");
    await userEvent.click(form.getByRole("button", { name: "Create" }));

    await vi.waitFor(() => expect(calls.some((call) => call.method === "POST")).toBe(true));
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({
      name: "payments",
      targets: [{ host: "10.0.0.9", port: 8443, weight: 50 }],
      load_balancing: "hash_header",
      hash_header: "X-User",
      scheme: "https",
      tls_sni: "payments.internal",
      tls_verify: true,
      timeouts: { connect_s: 2 },
      retries: 3,
      active_health_check: { path: "/healthz" },
      passive_health_check: { max_fails: 4 },
    });
  });

  it("tells who changed an entry meanwhile instead of overwriting it", async () => {
    answerApi({
      ...CATALOG,
      [`PATCH ${BASE}/routes/1/`]: [412, { detail: "Route orders was changed by bob@example.com at 2026-12-03 10:00:00 UTC (revision 5; you edited revision 4). Reload it and make your change again.", current_revision: 5, updated_by: "bob@example.com", updated_at: "2026-12-03T10:00:00Z" }],
    });
    renderInConsole(<CatalogPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "Edit orders" }));
    const form = within(await screen.findByRole("dialog"));
    await userEvent.type(await form.findByRole("textbox", { name: /^Name/ }), "-v2");
    await userEvent.click(form.getByRole("button", { name: "Save" }));

    expect(await form.findByText(/changed by bob@example.com/)).toBeTruthy();
    expect(form.getByRole("button", { name: "Reload" })).toBeTruthy();
  });

  it("offers no way to change anything to a role that may not", async () => {
    answerApi({ ...CATALOG });
    renderInConsole(<CatalogPanel path={PATH} canWrite={false} />);
    expect(await screen.findByText("/orders")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "New route" })).toBeNull();
    expect(screen.queryByRole("button", { name: /^Edit/ })).toBeNull();
    expect(screen.queryByRole("button", { name: /^Delete/ })).toBeNull();
    expect(screen.queryByRole("checkbox")).toBeNull();
  });
});
