import { configure, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerListApi, type ListAnswers } from "../test/fakeListApi";
import { renderPage } from "../test/renderPage";
import { planLimit } from "./PortalApi";
import { PortalPage } from "./PortalPage";

// The whole suite runs at once: what the page shows may take more than the default second.
configure({ asyncUtilTimeout: 5000 });
// Forms typed in key by key.
vi.setConfig({ testTimeout: 30_000 });
afterEach(() => vi.unstubAllGlobals());

const ORG = "/api/v1/orgs/acme";
const PORTAL = `${ORG}/portal`;
const ME = { user: { id: 1, email: "owner@example.com", name: "" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "owner" }] };
const SETTINGS = {
  enabled: false,
  title: "Developer portal",
  logo_url: "",
  primary_color: "#1c5ab4",
  signup_mode: "approval",
  custom_host: "",
  url: "http://cloud.test/portal/acme/",
};
const CREATED = "2026-01-05T10:00:00Z";
const PRODUCT = {
  id: 3,
  name: "Petstore",
  slug: "petstore",
  description: "Pets, **sold**.",
  auth_type: "key-auth",
  published: false,
  versions: [],
  plans: [],
  created_at: CREATED,
  updated_at: CREATED,
};
const VERSION = { id: 11, name: "v1", status: "active", cluster_id: 7, route_ids: [21, 22], has_openapi: true, gateway_url: "https://api.example.com", subscriptions: 2 };
const page = (results: unknown[]) => [200, { count: results.length, next: null, previous: null, results }] as [number, unknown];
const PETSTORE = "openapi: 3.0.4\ninfo:\n  title: Petstore\npaths:\n  /pet:\n    get: {}\n";

function portalApi(answers: ListAnswers, role = "owner") {
  return answerListApi({
    "GET /api/v1/auth/me/": [200, { ...ME, organizations: [{ ...ME.organizations[0], role }] }],
    [`GET ${PORTAL}/settings/`]: [200, SETTINGS],
    [`GET ${ORG}/clusters/`]: page([
      { id: 7, name: "production" },
      { id: 8, name: "staging" },
    ]),
    [`GET ${ORG}/clusters/7/routes/`]: page([
      { id: 21, name: "getPet", service: "petstore", paths: [{ type: "exact", value: "/api/v3/pet" }] },
      { id: 22, name: "addPet", service: "petstore", paths: [{ type: "exact", value: "/api/v3/pet" }] },
    ]),
    [`GET ${ORG}/clusters/7/services/`]: page([{ id: 5, name: "petstore" }]),
    [`GET ${PORTAL}/products/`]: [200, []],
    [`GET ${PORTAL}/developers/`]: [200, []],
    ...answers,
  });
}

function renderPortal() {
  return renderPage(<PortalPage />, { url: "/orgs/acme/portal", route: "/orgs/:slug/portal" });
}

async function choose(scope: ReturnType<typeof within>, label: RegExp, option: string) {
  await userEvent.click(scope.getByRole("textbox", { name: label }));
  await userEvent.click(await screen.findByRole("option", { name: option }));
}

describe("a plan's limit", () => {
  it("reads as calls per time window", () => {
    expect(planLimit({ limit_count: 1000, time_window: 86400 })).toBe("1,000 / day");
    expect(planLimit({ limit_count: 100, time_window: 1 })).toBe("100 / second");
    expect(planLimit({ limit_count: 3, time_window: 60 })).toBe("3 / minute");
    expect(planLimit({ limit_count: null, time_window: null })).toBe("Unlimited");
  });
});

describe("the portal's settings", () => {
  it("links to the portal and saves what changed", async () => {
    const { calls } = portalApi({
      [`PATCH ${PORTAL}/settings/`]: (body) => [200, { ...SETTINGS, ...(body as object) }],
    });
    renderPortal();
    const open = await screen.findByRole("link", { name: "Open portal" });
    expect(open.getAttribute("href")).toBe("http://cloud.test/portal/acme/");
    await userEvent.click(await screen.findByRole("switch", { name: /Portal enabled/ }));
    const title = screen.getByRole("textbox", { name: /^Title/ });
    await userEvent.clear(title);
    await userEvent.type(title, "Acme APIs");
    await userEvent.type(screen.getByRole("textbox", { name: /^Logo URL/ }), "https://acme.test/logo.svg");
    const colour = screen.getByRole("textbox", { name: /^Colour/ });
    await userEvent.clear(colour);
    await userEvent.type(colour, "#ff8800");
    await choose(within(document.body), /^Sign-up/, "By invitation only");
    await userEvent.type(screen.getByRole("textbox", { name: /^Custom host/ }), "developers.acme.test");
    await userEvent.click(screen.getByRole("button", { name: "Save settings" }));

    expect(await screen.findByText("Saved. Developers find the portal at http://cloud.test/portal/acme/")).toBeTruthy();
    expect(calls.find((call) => call.method === "PATCH")?.body).toEqual({
      enabled: true,
      title: "Acme APIs",
      logo_url: "https://acme.test/logo.svg",
      primary_color: "#ff8800",
      signup_mode: "invitation",
      custom_host: "developers.acme.test",
    });
    expect(screen.getByText("on")).toBeTruthy();
  });

  it("describes the portal as it is switched: off, then on", async () => {
    portalApi({});
    renderPortal();
    const enabled = await screen.findByRole("switch", { name: /Portal enabled/ });
    expect(screen.getByText(/^Off: the portal's pages answer 404/)).toBeTruthy();
    await userEvent.click(enabled);
    expect(screen.getByText(/^On: developers can read your published products/)).toBeTruthy();
    expect(screen.queryByText(/^Off:/)).toBeNull();
  });

  it("shows the API's message beside its field", async () => {
    portalApi({
      [`PATCH ${PORTAL}/settings/`]: [400, { detail: "Invalid input.", errors: { logo_url: ["The logo's address starts with https://."] } }],
    });
    renderPortal();
    await userEvent.type(await screen.findByRole("textbox", { name: /^Logo URL/ }), "http://acme.test/logo.svg");
    await userEvent.click(screen.getByRole("button", { name: "Save settings" }));
    expect(await screen.findByText("The logo's address starts with https://.")).toBeTruthy();
  });

  it("is read-only to a developer", async () => {
    portalApi({}, "developer");
    renderPortal();
    expect(await screen.findByText("Only owners and admins change the portal's settings.")).toBeTruthy();
    expect((screen.getByRole("textbox", { name: /^Title/ }) as HTMLInputElement).disabled).toBe(true);
    expect(screen.queryByRole("button", { name: "Save settings" })).toBeNull();
  });
});

describe("the portal's products", () => {
  it("creates a product, adds a version over an imported service with an uploaded document, and a plan", async () => {
    let product: Record<string, unknown> | null = null;
    const { calls } = portalApi({
      [`GET ${PORTAL}/products/`]: () => [200, product ? [product] : []],
      [`POST ${PORTAL}/products/`]: (body) => {
        product = { ...PRODUCT, ...(body as object) };
        return [201, product];
      },
      [`POST ${PORTAL}/products/3/versions/`]: (body) => {
        const version = { ...VERSION, subscriptions: 0, name: (body as { name: string }).name };
        product = { ...(product as object), versions: [version] };
        return [201, version];
      },
      [`POST ${PORTAL}/products/3/plans/`]: (body) => {
        const plan = { id: 31, ...(body as object) };
        product = { ...(product as object), plans: [plan] };
        return [201, plan];
      },
    });
    renderPortal();
    await userEvent.click(await screen.findByRole("tab", { name: "Products" }));
    expect(await screen.findByText("No products yet.")).toBeTruthy();

    await userEvent.click(screen.getByRole("button", { name: "New product" }));
    let form = within(await screen.findByRole("dialog", { name: "New product" }));
    await userEvent.type(form.getByRole("textbox", { name: /^Name/ }), "Petstore");
    await userEvent.type(form.getByRole("textbox", { name: /^Description/ }), "Pets, **sold**.");
    await userEvent.click(form.getByRole("button", { name: "Create product" }));
    const card = within(await screen.findByRole("region", { name: "Petstore" }));
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({ name: "Petstore", description: "Pets, **sold**.", auth_type: "key-auth", published: false });
    expect(card.getByText("draft")).toBeTruthy();

    await userEvent.click(card.getByRole("button", { name: "Add version to Petstore" }));
    form = within(await screen.findByRole("dialog", { name: "New version of Petstore" }));
    expect(form.getByText(/require Petstore's authentication \(API key\)/)).toBeTruthy();
    await userEvent.type(form.getByRole("textbox", { name: /^Name/ }), "v1");
    await choose(form, /^Cluster/, "production");
    await userEvent.click(form.getByRole("radio", { name: /Every route of a service/ }));
    await choose(form, /^Service/, "petstore");
    await userEvent.upload(form.getByLabelText("OpenAPI document file"), new File([PETSTORE], "petstore.yaml", { type: "application/yaml" }));
    expect(await form.findByText(/Read from petstore.yaml/)).toBeTruthy();
    expect((form.getByRole("textbox", { name: /^OpenAPI document/ }) as HTMLTextAreaElement).value).toBe(PETSTORE);
    await userEvent.type(form.getByRole("textbox", { name: /^Gateway URL/ }), "https://api.example.com");
    await userEvent.click(form.getByRole("button", { name: "Add version" }));

    const versions = within(await card.findByRole("table", { name: "Versions of Petstore" }));
    expect(versions.getByText("production")).toBeTruthy();
    expect(calls.find((call) => call.path.endsWith("/versions/"))?.body).toEqual({
      name: "v1",
      status: "active",
      cluster_id: 7,
      gateway_url: "https://api.example.com",
      service: "petstore",
      openapi: PETSTORE,
    });

    await userEvent.click(card.getByRole("button", { name: "Add plan to Petstore" }));
    form = within(await screen.findByRole("dialog", { name: "New plan of Petstore" }));
    await userEvent.type(form.getByRole("textbox", { name: /^Name/ }), "free");
    await userEvent.type(form.getByRole("textbox", { name: /^Calls/ }), "3");
    expect(form.getByText("At most 3 / minute for each subscribed application.")).toBeTruthy();
    await userEvent.click(form.getByRole("button", { name: "Add plan" }));
    const plans = within(await card.findByRole("table", { name: "Plans of Petstore" }));
    expect(plans.getByText("3 / minute")).toBeTruthy();
    expect(calls.find((call) => call.path.endsWith("/plans/"))?.body).toEqual({ name: "free", description: "", limit_count: 3, time_window: 60 });
  });

  it("adds a version over routes chosen from the cluster", async () => {
    const { calls } = portalApi({
      [`GET ${PORTAL}/products/`]: [200, [PRODUCT]],
      [`POST ${PORTAL}/products/3/versions/`]: (body) => [201, { ...VERSION, ...(body as object) }],
    });
    renderPortal();
    await userEvent.click(await screen.findByRole("tab", { name: "Products" }));
    await userEvent.click(await screen.findByRole("button", { name: "Add version to Petstore" }));
    const form = within(await screen.findByRole("dialog", { name: "New version of Petstore" }));
    await userEvent.type(form.getByRole("textbox", { name: /^Name/ }), "v2");
    await choose(form, /^Cluster/, "production");
    await choose(form, /^Routes/, "addPet (/api/v3/pet)");
    await choose(form, /^Status/, "deprecated: no new subscriptions");
    await userEvent.click(form.getByRole("button", { name: "Add version" }));
    await vi.waitFor(() => expect(calls.some((call) => call.method === "POST")).toBe(true));
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({ name: "v2", status: "deprecated", cluster_id: 7, gateway_url: "", route_ids: [22] });
  });

  it("publishes a product, shows its plans' limits, and deletes a version once confirmed", async () => {
    let product = {
      ...PRODUCT,
      versions: [VERSION],
      plans: [
        { id: 31, name: "free", description: "To try it", limit_count: 1000, time_window: 86400 },
        { id: 32, name: "pro", description: "", limit_count: 100, time_window: 1 },
        { id: 33, name: "partner", description: "", limit_count: null, time_window: null },
      ],
    };
    const { calls } = portalApi({
      [`GET ${PORTAL}/products/`]: () => [200, [product]],
      [`PATCH ${PORTAL}/products/3/`]: (body) => {
        product = { ...product, ...(body as object) };
        return [200, product];
      },
      [`DELETE ${PORTAL}/products/3/versions/11/`]: () => {
        product = { ...product, versions: [] };
        return [204, null];
      },
    });
    renderPortal();
    await userEvent.click(await screen.findByRole("tab", { name: "Products" }));
    const card = within(await screen.findByRole("region", { name: "Petstore" }));
    const plans = within(card.getByRole("table", { name: "Plans of Petstore" }));
    expect(plans.getByText("1,000 / day")).toBeTruthy();
    expect(plans.getByText("100 / second")).toBeTruthy();
    expect(plans.getByText("Unlimited")).toBeTruthy();

    await userEvent.click(card.getByRole("button", { name: "Publish Petstore" }));
    expect(await card.findByText("published")).toBeTruthy();
    expect(calls.find((call) => call.method === "PATCH")?.body).toEqual({ published: true });

    await userEvent.click(card.getByRole("button", { name: "Delete version v1" }));
    const confirm = within(await screen.findByRole("dialog", { name: "Delete version v1" }));
    expect(confirm.getByText(/Its 2 subscriptions end: those applications lose access to its routes/)).toBeTruthy();
    await userEvent.click(confirm.getByRole("button", { name: "Delete" }));
    expect(await card.findByText(/No versions yet/)).toBeTruthy();
    expect(calls.some((call) => call.method === "DELETE" && call.path === `${PORTAL}/products/3/versions/11/`)).toBe(true);
  });

  it("shows a refusal in the confirmation", async () => {
    const plan = { id: 31, name: "free", description: "", limit_count: 3, time_window: 60 };
    portalApi({
      [`GET ${PORTAL}/products/`]: [200, [{ ...PRODUCT, plans: [plan] }]],
      [`DELETE ${PORTAL}/products/3/plans/31/`]: [400, { detail: "Applications hold this plan: move them to another plan first.", errors: { plan: ["Applications hold this plan: move them to another plan first."] } }],
    });
    renderPortal();
    await userEvent.click(await screen.findByRole("tab", { name: "Products" }));
    await userEvent.click(await screen.findByRole("button", { name: "Delete plan free" }));
    const confirm = within(await screen.findByRole("dialog", { name: "Delete plan free" }));
    await userEvent.click(confirm.getByRole("button", { name: "Delete" }));
    expect(await confirm.findByText("Applications hold this plan: move them to another plan first.")).toBeTruthy();
  });

  it("offers no changes to a viewer", async () => {
    portalApi({ [`GET ${PORTAL}/products/`]: [200, [{ ...PRODUCT, versions: [VERSION] }]] }, "viewer");
    renderPortal();
    await userEvent.click(await screen.findByRole("tab", { name: "Products" }));
    expect(await screen.findByRole("table", { name: "Versions of Petstore" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "New product" })).toBeNull();
    expect(screen.queryByRole("button", { name: "Delete version v1" })).toBeNull();
  });
});

const APPLICATION = {
  id: 41,
  name: "mobile",
  description: "",
  status: "active",
  developer: "ada@example.com",
  key_prefix: "pk_Ab12Cd",
  key_created_at: CREATED,
  jwt_key: null,
  jwt_algorithm: null,
  subscriptions: [{ id: 51, product: "Petstore", product_id: 3, version: "v1", version_id: 11, plan: "free", plan_id: 31 }],
  created_at: CREATED,
};
const ADA = { id: 1, email: "ada@example.com", name: "Ada", status: "active", email_verified: true, created_at: CREATED, last_login: null, applications: [APPLICATION] };
const GRACE = { id: 2, email: "grace@example.com", name: "", status: "pending", email_verified: true, created_at: CREATED, last_login: null, applications: [] };

describe("the portal's developers", () => {
  it("approves a pending developer and suspends an application once confirmed", async () => {
    let developers = [GRACE, ADA];
    const { calls } = portalApi({
      [`GET ${PORTAL}/developers/`]: () => [200, developers],
      [`POST ${PORTAL}/developers/2/approve/`]: () => {
        developers = [{ ...GRACE, status: "active" }, ADA];
        return [200, developers[0]];
      },
      [`PATCH ${PORTAL}/applications/41/`]: (body) => {
        const application = { ...APPLICATION, ...(body as object) };
        developers = [developers[0], { ...ADA, applications: [application] }];
        return [200, application];
      },
    });
    renderPortal();
    await userEvent.click(await screen.findByRole("tab", { name: "Developers" }));
    const table = within(await screen.findByRole("table", { name: "Developers" }));
    expect(table.getByText("waiting for approval")).toBeTruthy();
    expect(table.getByText("Petstore v1 on free")).toBeTruthy();
    expect(screen.getByText(/Anyone may sign up; each waits here for your approval/)).toBeTruthy();

    await userEvent.click(table.getByRole("button", { name: "Approve grace@example.com" }));
    expect(await table.findByRole("button", { name: "Suspend developer grace@example.com" })).toBeTruthy();
    expect(calls.some((call) => call.method === "POST" && call.path.endsWith("/developers/2/approve/"))).toBe(true);

    await userEvent.click(table.getByRole("button", { name: "Suspend app mobile" }));
    const confirm = within(await screen.findByRole("dialog", { name: "Suspend mobile" }));
    expect(confirm.getByText(/Its credentials stop working at the gateway within a second/)).toBeTruthy();
    await userEvent.click(confirm.getByRole("button", { name: "Suspend" }));
    expect(await table.findByRole("button", { name: "Reinstate app mobile" })).toBeTruthy();
    expect(calls.find((call) => call.method === "PATCH")?.body).toEqual({ status: "suspended" });
  });

  it("suspends a developer only once confirmed", async () => {
    const { calls } = portalApi({
      [`GET ${PORTAL}/developers/`]: [200, [ADA]],
      [`POST ${PORTAL}/developers/1/suspend/`]: [200, { ...ADA, status: "suspended" }],
    });
    renderPortal();
    await userEvent.click(await screen.findByRole("tab", { name: "Developers" }));
    await userEvent.click(await screen.findByRole("button", { name: "Suspend developer ada@example.com" }));
    const confirm = within(await screen.findByRole("dialog", { name: "Suspend ada@example.com" }));
    expect(calls.some((call) => call.method === "POST")).toBe(false);
    await userEvent.click(confirm.getByRole("button", { name: "Suspend" }));
    await vi.waitFor(() => expect(calls.some((call) => call.method === "POST" && call.path.endsWith("/developers/1/suspend/"))).toBe(true));
  });

  it("tells the application's buttons from the developer's, under a header of their own", async () => {
    portalApi({ [`GET ${PORTAL}/developers/`]: [200, [ADA, { ...GRACE, status: "suspended", applications: [{ ...APPLICATION, id: 42, name: "web", status: "suspended" }] }]] });
    renderPortal();
    await userEvent.click(await screen.findByRole("tab", { name: "Developers" }));
    const table = within(await screen.findByRole("table", { name: "Developers" }));
    expect(table.getByRole("columnheader", { name: "Developer actions" })).toBeTruthy();
    const [ada, grace] = table.getAllByRole("row").slice(1).map((row) => within(row));
    expect(ada.getByRole("button", { name: "Suspend app mobile" }).textContent).toBe("Suspend app");
    expect(ada.getByRole("button", { name: "Suspend developer ada@example.com" }).textContent).toBe("Suspend developer");
    expect(grace.getByRole("button", { name: "Reinstate app web" }).textContent).toBe("Reinstate app");
    expect(grace.getByRole("button", { name: "Reinstate developer grace@example.com" }).textContent).toBe("Reinstate developer");
    expect(table.queryByText("Suspend", { exact: true })).toBeNull();
  });

  it("invites a developer when sign-up is by invitation, and shows the link", async () => {
    const link = "http://cloud.test/portal/acme/signup?invitation=s3cret";
    const { calls } = portalApi({
      [`GET ${PORTAL}/settings/`]: [200, { ...SETTINGS, enabled: true, signup_mode: "invitation" }],
      [`POST ${PORTAL}/invitations/`]: (body) => [201, { email: (body as { email: string }).email, link }],
    });
    renderPortal();
    await userEvent.click(await screen.findByRole("tab", { name: "Developers" }));
    expect(await screen.findByText("No developers have signed up yet.")).toBeTruthy();
    await userEvent.type(screen.getByRole("textbox", { name: /^Email/ }), "linus@example.com");
    await userEvent.click(screen.getByRole("button", { name: "Send invitation" }));
    expect(await screen.findByText("Invitation sent to linus@example.com")).toBeTruthy();
    expect(screen.getByLabelText("Invitation link").textContent).toBe(link);
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({ email: "linus@example.com" });
  });
});
