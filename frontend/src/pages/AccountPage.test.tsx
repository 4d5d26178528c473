import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { AccountPage } from "./AccountPage";

afterEach(() => vi.unstubAllGlobals());

const ACCOUNT = { email: "ada@example.com", name: "Ada", email_verified: true, pending_email: "" };
const HERE = { id: 1, device: "Chrome on macOS", user_agent: "Mozilla/5.0", ip_address: "10.0.0.1", method: "password", signed_in_at: "2026-03-10T09:00:00Z", last_seen_at: "2026-03-10T09:00:00Z", current: true };
const PHONE = { ...HERE, id: 2, device: "Safari on iOS", ip_address: "10.0.0.2", current: false };

function renderAccount() {
  return renderPage(<AccountPage />, { url: "/account", route: "/account" });
}

describe("the account page", () => {
  it("lists the sessions, marks this one, and ends another", async () => {
    let sessions = [HERE, PHONE];
    const calls = answerApi({
      "GET /api/v1/auth/account/": [200, ACCOUNT],
      "GET /api/v1/auth/sessions/": () => [200, sessions],
      "DELETE /api/v1/auth/sessions/2/": () => {
        sessions = [HERE];
        return [200, {}]; // the fake answers a body: 204 has none
      },
    });
    renderAccount();
    const table = await screen.findByRole("table", { name: "Sessions" });
    expect(await within(table).findByText("Safari on iOS")).toBeTruthy();
    expect(within(table).getByText("This session")).toBeTruthy();
    expect(screen.getByText("Verified")).toBeTruthy();

    await userEvent.click(within(table).getByRole("button", { name: "End" }));
    expect(await screen.findByText("The session on Safari on iOS is signed out.")).toBeTruthy();
    expect(calls.some((c) => c.method === "DELETE" && c.path === "/api/v1/auth/sessions/2/")).toBe(true);
    expect(within(table).queryByText("Safari on iOS")).toBeNull();
    expect((screen.getByRole("button", { name: "End all other sessions" }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("shows a wrong current password beside its field", async () => {
    const calls = answerApi({
      "GET /api/v1/auth/account/": [200, { ...ACCOUNT, email_verified: false, pending_email: "new@example.com" }],
      "GET /api/v1/auth/sessions/": [200, [HERE]],
      "POST /api/v1/auth/password/": [400, { detail: "The current password is wrong.", errors: { current_password: ["The current password is wrong."] } }],
    });
    renderAccount();
    expect(await screen.findByText("Not verified")).toBeTruthy();
    expect(screen.getByText(/A change to new@example.com waits/)).toBeTruthy();
    const form = screen.getByRole("region", { name: "Change password" });
    await userEvent.type(within(form).getByLabelText(/Current password/), "nope");
    await userEvent.type(within(form).getByLabelText(/New password/), "a long new passphrase");
    await userEvent.click(within(form).getByRole("button", { name: "Change password" }));
    expect(await within(form).findAllByText("The current password is wrong.")).toHaveLength(2);
    expect(calls.find((c) => c.method === "POST")?.body).toEqual({ current_password: "nope", new_password: "a long new passphrase" });
  });
});
