import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { OrganizationPage } from "./OrganizationPage";

const ORG = "/api/v1/orgs/acme";
const ME = { user: { id: 1, email: "owner@example.com", name: "Olga" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "owner" }] };
const OWNER = { id: 1, user: { email: "owner@example.com", name: "Olga" }, role: "owner", created_at: "2026-01-01T00:00:00Z" };
const BOB = { id: 5, user: { email: "bob@example.com", name: "Bob" }, role: "viewer", created_at: "2026-01-02T00:00:00Z" };

function entry(id: number, action: string, target: string) {
  return { id, created_at: "2026-01-03T00:00:00Z", actor: "owner@example.com", action, target_type: "x", target_repr: target };
}

/** The organization's API as the server keeps it: each write changes what the lists answer next,
 * and leaves an audit entry. */
function organizationApi() {
  const state = { members: [OWNER, BOB], invitations: [] as object[], tokens: [] as object[], audit: [] as object[] };
  const audited = (action: string, target: string) => state.audit.unshift(entry(state.audit.length + 1, action, target));
  const calls = answerApi({
    "GET /api/v1/auth/me/": [200, ME],
    [`GET ${ORG}/members/`]: () => [200, { results: state.members }],
    [`GET ${ORG}/invitations/`]: () => [200, { results: state.invitations }],
    [`GET ${ORG}/tokens/`]: () => [200, { results: state.tokens }],
    [`GET ${ORG}/audit-log/`]: () => [200, { results: state.audit }],
    [`POST ${ORG}/tokens/`]: (body) => {
      const token = { id: 9, name: (body as { name: string }).name, prefix: "sgw_abc", role_ceiling: null, created_at: "2026-01-03T00:00:00Z", last_used_at: null, revoked_at: null };
      state.tokens = [token];
      audited("api_token.create", token.name);
      return [201, { ...token, token: "sgw_abc_secret" }];
    },
    [`DELETE ${ORG}/tokens/9/`]: () => {
      state.tokens = state.tokens.map((t) => ({ ...t, revoked_at: "2026-01-04T00:00:00Z" }));
      audited("api_token.revoke", "ci");
      return [200, {}]; // (204 in the API: the fake answers every call with a body)
    },
    [`POST ${ORG}/invitations/`]: (body) => {
      const { email, role } = body as { email: string; role: string };
      state.invitations = [{ id: 3, email, role, status: "pending", expires_at: "2026-02-01T00:00:00Z" }];
      audited("invitation.create", email);
      return [201, state.invitations[0]];
    },
    [`PATCH ${ORG}/members/5/`]: (body) => {
      state.members = [OWNER, { ...BOB, role: (body as { role: string }).role }];
      audited("member.role_change", "bob@example.com");
      return [200, state.members[1]];
    },
  });
  const fetched = (path: string) => calls.filter((call) => call.method === "GET" && call.path === path).length;
  return { calls, fetched };
}

function renderOrganization() {
  return renderPage(<OrganizationPage />, { url: "/orgs/acme/settings", route: "/orgs/:slug/settings" });
}

afterEach(() => vi.unstubAllGlobals());

describe("the organization's lists after the user's own writes", () => {
  it("shows a new API token, and its entry in the audit log, then its revocation", async () => {
    organizationApi();
    vi.stubGlobal("confirm", () => true);
    renderOrganization();
    await userEvent.click(await screen.findByRole("tab", { name: "API tokens" }));
    await userEvent.type(await screen.findByRole("textbox", { name: /Token name/ }), "ci");
    await userEvent.click(screen.getByRole("button", { name: "Create API token" }));

    expect(await screen.findByText("sgw_abc_secret")).toBeTruthy();
    expect(await screen.findByText("never used")).toBeTruthy();
    expect(await screen.findByText("api_token.create")).toBeTruthy();

    await userEvent.click(screen.getByRole("button", { name: "Revoke" }));
    expect(await screen.findByText("revoked")).toBeTruthy();
    expect(await screen.findByText("api_token.revoke")).toBeTruthy();
  });

  it("shows a sent invitation, and its entry in the audit log", async () => {
    organizationApi();
    renderOrganization();
    await userEvent.type(await screen.findByRole("textbox", { name: /Email/ }), "carol@example.com");
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
    expect(fetched(`${ORG}/members/`)).toBe(before.members + 1);
    expect(fetched("/api/v1/auth/me/")).toBe(before.me + 1);
  });
});
