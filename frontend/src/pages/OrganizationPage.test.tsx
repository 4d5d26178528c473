import { configure, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerListApi, pageOf } from "../test/fakeListApi";
import { renderPage } from "../test/renderPage";
import { OrganizationPage } from "./OrganizationPage";

// The whole suite runs at once: what the page shows may take more than the default second.
configure({ asyncUtilTimeout: 5000 });

const ORG = "/api/v1/orgs/acme";
const ME = { user: { id: 1, email: "owner@example.com", name: "Olga" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "owner" }] };
function member(id: number, email: string, name: string, role: string) {
  return { id, email, name, user: { id, email, name, date_joined: "2026-01-01T00:00:00Z" }, role, created_at: `2026-01-0${id}T00:00:00Z` };
}
const OWNER = member(1, "owner@example.com", "Olga", "owner");
const BOB = member(5, "bob@example.com", "Bob", "viewer");

function entry(id: number, action: string, target: string, actor = "owner@example.com") {
  return { id, created_at: `2026-01-03T00:00:${String(id % 60).padStart(2, "0")}Z`, actor, api_token: null, action, target_type: "x", target_id: String(id), target_repr: target, changes: {}, ip_address: null };
}

/** The organization's API as the server keeps it: each write changes what the lists answer next,
 * and leaves an audit entry. */
function organizationApi(role = "owner") {
  const state = { members: [OWNER, BOB], invitations: [] as object[], tokens: [] as object[], audit: [] as ReturnType<typeof entry>[] };
  const audited = (action: string, target: string) => state.audit.unshift(entry(state.audit.length + 1, action, target));
  const api = answerListApi({
    "GET /api/v1/auth/me/": [200, { ...ME, organizations: [{ ...ME.organizations[0], role }] }],
    [`GET ${ORG}/members/`]: (_, query) => pageOf(state.members, query, (m) => `${m.email} ${m.name}`),
    [`GET ${ORG}/invitations/`]: () => [200, { count: state.invitations.length, results: state.invitations }],
    [`GET ${ORG}/tokens/`]: (_, query) => pageOf(state.tokens, query),
    [`GET ${ORG}/audit-log/`]: (_, query) => {
      const action = query.get("action");
      const actor = query.get("actor");
      const since = query.get("since");
      const until = query.get("until");
      const found = state.audit.filter(
        (e) =>
          (!action || (action.endsWith(".*") ? e.action.startsWith(action.slice(0, -1)) : e.action === action)) &&
          (!actor || e.actor === actor) &&
          (!since || e.created_at >= since) &&
          (!until || e.created_at < until),
      );
      return pageOf(found, query);
    },
    [`POST ${ORG}/tokens/`]: (body) => {
      const { name, role_ceiling, expires_at } = body as { name: string; role_ceiling: string; expires_at: string | null };
      const token = { id: 9, name, user: "owner@example.com", prefix: "sgw_abc", role_ceiling, created_at: "2026-01-03T00:00:00Z", expires_at, last_used_at: null, revoked_at: null };
      state.tokens = [token];
      audited("api_token.create", token.name);
      return [201, { ...token, token: "sgw_abc_secret" }];
    },
    [`DELETE ${ORG}/tokens/9/`]: () => {
      state.tokens = state.tokens.map((t) => ({ ...t, revoked_at: "2026-01-04T00:00:00Z" }));
      audited("api_token.revoke", "ci");
      return [204, null];
    },
    [`POST ${ORG}/invitations/`]: (body) => {
      const { email, role: invited } = body as { email: string; role: string };
      state.invitations = [{ id: 3, email, role: invited, status: "pending", expires_at: "2026-02-01T00:00:00Z" }];
      audited("invitation.create", email);
      return [201, state.invitations[0]];
    },
    [`PATCH ${ORG}/members/5/`]: (body) => {
      state.members = [OWNER, { ...BOB, role: (body as { role: string }).role }];
      audited("member.role_change", "bob@example.com");
      return [200, state.members[1]];
    },
  });
  const fetched = (path: string) => api.queried(path).length;
  return { ...api, state, fetched };
}

function renderOrganization() {
  return renderPage(<OrganizationPage />, { url: "/orgs/acme/settings", route: "/orgs/:slug/settings" });
}

afterEach(() => vi.unstubAllGlobals());
// A page of several tables and selects renders slowly in jsdom.
vi.setConfig({ testTimeout: 20_000 });

describe("the organization's members", () => {
  it("lists members by email, name and role, searched on the server", async () => {
    const { queried } = organizationApi();
    renderOrganization();
    const table = within(await screen.findByRole("table", { name: "Members" }));
    expect(await table.findByText("bob@example.com")).toBeTruthy();
    expect(table.getAllByRole("columnheader").map((h) => h.textContent?.replace(/ [▲▼↕]$/, ""))).toEqual(["Email", "Name", "Role", "Joined", "Actions"]);
    expect(table.getByText("Bob")).toBeTruthy();
    await userEvent.type(screen.getByRole("searchbox", { name: "Search members" }), "bob");
    await waitFor(() => expect(table.queryByText("owner@example.com")).toBeNull());
    expect(queried(`${ORG}/members/`).slice(-1)[0]?.get("search")).toBe("bob");
  });

  it("shows a viewer the roles, with nothing to change", async () => {
    organizationApi("viewer");
    renderOrganization();
    const table = within(await screen.findByRole("table", { name: "Members" }));
    expect(await table.findByText("bob@example.com")).toBeTruthy();
    await waitFor(() => expect(table.queryByRole("textbox", { name: /Role of/ })).toBeNull());
    expect(table.queryByRole("button", { name: /Remove/ })).toBeNull();
    expect(screen.queryByRole("tab", { name: "Audit log" })).toBeNull();
  });
});

describe("the organization's lists after the user's own writes", () => {
  it("makes an API token with a role ceiling and an expiry, shows it once, lists it, and revokes it once confirmed", async () => {
    const { calls } = organizationApi();
    renderOrganization();
    await userEvent.click(await screen.findByRole("tab", { name: "API tokens" }));
    const ceiling = screen.getByRole("textbox", { name: /Role ceiling/ }) as HTMLInputElement;
    expect(ceiling.value).toBe("viewer"); // the least, unless asked for more
    await userEvent.type(screen.getByRole("textbox", { name: /Token name/ }), "ci");
    await userEvent.click(ceiling);
    await userEvent.click(await screen.findByRole("option", { name: "developer" }));
    const expiry = screen.getByLabelText(/Expires on/) as HTMLInputElement;
    expect(expiry.type).toBe("date");
    await userEvent.type(expiry, "2031-06-30");
    await userEvent.click(screen.getByRole("button", { name: "Create API token" }));

    expect(await screen.findByText("sgw_abc_secret")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Copy the API token" })).toBeTruthy();
    const body = calls.find((call) => call.method === "POST" && call.path === `${ORG}/tokens/`)?.body as Record<string, string>;
    expect(body).toEqual({ name: "ci", role_ceiling: "developer", expires_at: new Date(2031, 5, 30).toISOString() });

    const tokens = within(screen.getByRole("table", { name: "API tokens" }));
    expect(await tokens.findByText("never used")).toBeTruthy();
    expect(tokens.getByText("developer")).toBeTruthy();
    expect(tokens.getByText(new Date(2031, 5, 30).toLocaleDateString())).toBeTruthy();
    expect(await screen.findByText("api_token.create")).toBeTruthy(); // in the audit log

    // Cancelled, then confirmed.
    await userEvent.click(tokens.getByRole("button", { name: /^Revoke ci/ }));
    await userEvent.click(within(await screen.findByRole("dialog", { name: "Revoke ci?" })).getByRole("button", { name: "Cancel" }));
    expect(calls.some((call) => call.method === "DELETE")).toBe(false);
    await userEvent.click(tokens.getByRole("button", { name: /^Revoke ci/ }));
    await userEvent.click(within(await screen.findByRole("dialog", { name: "Revoke ci?" })).getByRole("button", { name: "Revoke" }));
    expect(await tokens.findByText("revoked")).toBeTruthy();
    expect(await screen.findByText("api_token.revoke")).toBeTruthy();
  }, 20_000);

  it("offers a developer no ceiling above their own role", async () => {
    organizationApi("developer");
    renderOrganization();
    await userEvent.click(await screen.findByRole("tab", { name: "API tokens" }));
    await userEvent.click(screen.getByRole("textbox", { name: /Role ceiling/ }));
    const options = (await screen.findAllByRole("option")).map((option) => option.textContent);
    expect(options).toEqual(["developer", "viewer"]);
  });

  it("shows a sent invitation, and its entry in the audit log", async () => {
    organizationApi();
    renderOrganization();
    await userEvent.type(await screen.findByRole("textbox", { name: /^Email/ }), "carol@example.com");
    await userEvent.click(screen.getByRole("button", { name: "Send invitation" }));

    expect(await screen.findByText(/carol@example.com invited as developer/)).toBeTruthy();
    expect(await screen.findByText("invitation.create")).toBeTruthy();
  });

  it("refetches the members, the audit log and the session after a role change", async () => {
    const { fetched } = organizationApi();
    renderOrganization();
    const role = await screen.findByRole("textbox", { name: "Role of bob@example.com" });
    await waitFor(() => expect(fetched(`${ORG}/audit-log/`)).toBe(1));
    const before = { members: fetched(`${ORG}/members/`), me: fetched("/api/v1/auth/me/") };
    await userEvent.click(role);
    await userEvent.click(await screen.findByRole("option", { name: "admin" }));

    expect(await screen.findByText("member.role_change")).toBeTruthy();
    await waitFor(() => expect((screen.getByRole("textbox", { name: "Role of bob@example.com" }) as HTMLInputElement).value).toBe("admin"));
    expect(fetched(`${ORG}/members/`)).toBeGreaterThan(before.members);
    expect(fetched("/api/v1/auth/me/")).toBe(before.me + 1);
  });
});

describe("the audit log", () => {
  it("filters by action, by who and by days, and pages through the server's count", async () => {
    const { state, queried } = organizationApi();
    state.audit = [
      ...Array.from({ length: 25 }, (_, i) => entry(100 - i, "route.update", `route-${i}`)),
      { ...entry(50, "member.role_change", "bob@example.com", "bob@example.com"), created_at: "2026-01-10T12:00:00Z" },
    ];
    renderOrganization();
    await userEvent.click(await screen.findByRole("tab", { name: "Audit log" }));
    const log = within(await screen.findByRole("table", { name: "Audit log" }));
    expect(await screen.findByText("1–20 of 26")).toBeTruthy();
    await userEvent.click(screen.getAllByRole("button", { name: "Next page" }).find((b) => b.closest("[role=tabpanel]")?.getAttribute("id")?.includes("audit"))!);
    expect(await screen.findByText("21–26 of 26")).toBeTruthy();
    expect(queried(`${ORG}/audit-log/`).slice(-1)[0]?.get("page")).toBe("2");

    await userEvent.type(screen.getByRole("textbox", { name: "Action" }), "member.*");
    await waitFor(() => expect(queried(`${ORG}/audit-log/`).slice(-1)[0]?.get("action")).toBe("member.*"));
    expect(await log.findByText("member.role_change")).toBeTruthy();
    expect(log.queryByText("route.update")).toBeNull();
    expect(queried(`${ORG}/audit-log/`).slice(-1)[0]?.get("page")).toBe("1");

    await userEvent.clear(screen.getByRole("textbox", { name: "Action" }));
    await waitFor(() => expect(queried(`${ORG}/audit-log/`).slice(-1)[0]?.get("action")).toBeNull());
    await userEvent.click(screen.getByRole("textbox", { name: "Who" }));
    await userEvent.click(await screen.findByRole("option", { name: "bob@example.com" }));
    await waitFor(() => expect(queried(`${ORG}/audit-log/`).slice(-1)[0]?.get("actor")).toBe("bob@example.com"));
    expect(queried(`${ORG}/audit-log/`).slice(-1)[0]?.get("action")).toBeNull();

    await userEvent.type(screen.getByLabelText("From"), "2026-01-10");
    await userEvent.type(screen.getByLabelText("To"), "2026-01-10");
    await waitFor(() => expect(queried(`${ORG}/audit-log/`).slice(-1)[0]?.get("until")).toBe(new Date(2026, 0, 11).toISOString()));
    expect(queried(`${ORG}/audit-log/`).slice(-1)[0]?.get("since")).toBe(new Date(2026, 0, 10).toISOString());
  }, 20_000);
});
