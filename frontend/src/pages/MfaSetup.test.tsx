import { configure, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "../App";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { AccountPage } from "./AccountPage";
import { grouped } from "./MfaSetup";

configure({ asyncUtilTimeout: 5000 });
afterEach(() => vi.unstubAllGlobals());
vi.setConfig({ testTimeout: 20_000 });

const ACCOUNT = { email: "ada@example.com", name: "Ada", email_verified: true, pending_email: "" };
const OFF = { enabled: false, enabled_at: null, recovery_codes_left: 0, required_by: [], setup_required: false };
const ON = { enabled: true, enabled_at: "2026-03-10T09:00:00Z", recovery_codes_left: 10, required_by: [], setup_required: false };
const SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const ENROLMENT = { secret: SECRET, otpauth_uri: `otpauth://totp/Gateway%20Cloud:ada%40example.com?secret=${SECRET}&issuer=Gateway%20Cloud`, qr_code: "data:image/svg+xml;charset=utf-8,%3Csvg%3E%3C%2Fsvg%3E" };
const CODES = Array.from({ length: 10 }, (_, i) => `abcd-efgh-00${String(i).padStart(2, "0")}`);
const ME = { user: { id: 1, email: "dev@example.com", name: "Dev" }, organizations: [{ id: 1, name: "Acme", slug: "acme", role: "developer" }] };

describe("setting up two-factor sign-in", () => {
  it("shows the QR code and the key, turns on with a first code, and shows the recovery codes once", async () => {
    let status: object = OFF;
    const calls = answerApi({
      "GET /api/v1/auth/account/": [200, ACCOUNT],
      "GET /api/v1/auth/sessions/": [200, []],
      "GET /api/v1/auth/mfa/": () => [200, status],
      "POST /api/v1/auth/mfa/setup/": [200, ENROLMENT],
      "POST /api/v1/auth/mfa/confirm/": (body) => {
        if ((body as { code: string }).code !== "123456") return [400, { detail: "This code is not valid: enter the 6-digit code your app shows now.", errors: { code: ["This code is not valid: enter the 6-digit code your app shows now."] } }];
        status = ON;
        return [200, { detail: "Two-factor sign-in is on.", recovery_codes: CODES }];
      },
    });
    renderPage(<AccountPage />, { url: "/account", route: "/account" });
    const section = await screen.findByRole("region", { name: "Two-factor sign-in" });
    expect(await within(section).findByText("Off")).toBeTruthy();
    await userEvent.click(within(section).getByRole("button", { name: "Set up two-factor sign-in" }));

    const qr = (await within(section).findByRole("img", { name: "QR code for your authenticator app" })) as HTMLImageElement;
    expect(qr.src).toBe(ENROLMENT.qr_code);
    expect(within(section).getByLabelText("Setup key").textContent).toBe("JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP");

    await userEvent.type(within(section).getByLabelText(/^Code from the app/), "000000");
    await userEvent.click(within(section).getByRole("button", { name: "Turn on" }));
    expect(await within(section).findByText("This code is not valid: enter the 6-digit code your app shows now.")).toBeTruthy();
    await userEvent.clear(within(section).getByLabelText(/^Code from the app/));
    await userEvent.type(within(section).getByLabelText(/^Code from the app/), "123456");
    await userEvent.click(within(section).getByRole("button", { name: "Turn on" }));

    const codes = await within(section).findByRole("region", { name: "Recovery codes" });
    expect(within(codes).getByLabelText("Your recovery codes").textContent).toBe(CODES.join("\n"));
    expect(within(codes).getByRole("button", { name: "Copy" })).toBeTruthy();
    expect(within(codes).getByRole("button", { name: "Download" })).toBeTruthy();
    await userEvent.click(within(codes).getByRole("button", { name: "I have saved them" }));
    // Gone for good; the section says it is on.
    expect(within(section).queryByRole("region", { name: "Recovery codes" })).toBeNull();
    expect(await within(section).findByText("On")).toBeTruthy();
    expect(within(section).getByText(/10 recovery codes left/)).toBeTruthy();
    expect(calls.filter((c) => c.path === "/api/v1/auth/mfa/confirm/").map((c) => c.body)).toEqual([{ code: "000000" }, { code: "123456" }]);
    expect(calls.filter((c) => c.path === "/api/v1/auth/mfa/setup/")).toHaveLength(1);
  });

  it("makes new recovery codes and turns off with the password and a code", async () => {
    let status: object = ON;
    const calls = answerApi({
      "GET /api/v1/auth/account/": [200, ACCOUNT],
      "GET /api/v1/auth/sessions/": [200, []],
      "GET /api/v1/auth/me/": [200, ME],
      "GET /api/v1/auth/mfa/": () => [200, status],
      "POST /api/v1/auth/mfa/recovery-codes/": [200, { detail: "New recovery codes.", recovery_codes: CODES }],
      "POST /api/v1/auth/mfa/disable/": () => {
        status = OFF;
        return [200, { detail: "Two-factor sign-in is off." }];
      },
    });
    renderPage(<AccountPage />, { url: "/account", route: "/account" });
    const section = await screen.findByRole("region", { name: "Two-factor sign-in" });
    await userEvent.type(await within(section).findByLabelText("Code for new recovery codes"), "111111");
    await userEvent.click(within(section).getByRole("button", { name: "Make new codes" }));
    expect(within(await within(section).findByRole("region", { name: "Recovery codes" })).getByLabelText("Your recovery codes").textContent).toContain(CODES[9]);
    await userEvent.click(within(section).getByRole("button", { name: "I have saved them" }));

    await userEvent.type(within(section).getByLabelText("Current password (to turn off)"), "correct horse");
    await userEvent.type(within(section).getByLabelText("Code (to turn off)"), "222222");
    await userEvent.click(within(section).getByRole("button", { name: "Turn off" }));
    expect(await within(section).findByText("Two-factor sign-in is off.")).toBeTruthy();
    expect(await within(section).findByText("Off")).toBeTruthy();
    expect(calls.find((c) => c.path === "/api/v1/auth/mfa/disable/")?.body).toEqual({ password: "correct horse", code: "222222" });
  });

  it("groups the key in fours", () => {
    expect(grouped("ABCDEFGHIJ")).toBe("ABCD EFGH IJ");
  });
});

describe("a member whose organization requires two-factor sign-in", () => {
  it("is sent to its setup before anything else, and into the console once it is on", async () => {
    let status: object = { ...OFF, required_by: ["Acme"], setup_required: true };
    answerApi({
      "GET /api/v1/auth/me/": [200, ME],
      "GET /api/v1/auth/mfa/": () => [200, status],
      "POST /api/v1/auth/mfa/setup/": [200, ENROLMENT],
      "POST /api/v1/auth/mfa/confirm/": () => {
        status = { ...ON, required_by: ["Acme"] };
        return [200, { detail: "Two-factor sign-in is on.", recovery_codes: CODES }];
      },
      "GET /api/v1/orgs/acme/overview/": [200, { generated_at: "2026-12-03T13:00:00Z", clusters: [], gateways: { total: 0, online: 0, lost: 0, offline: 0, on_latest_version: 0, outdated: 0 }, traffic: null, top_failing_routes: [], quota: null, recent_changes: [] }],
    });
    renderPage(<App />, { url: "/orgs/acme/overview" });
    expect(await screen.findByRole("heading", { name: "Set up two-factor sign-in" }, { timeout: 5000 })).toBeTruthy();
    await waitFor(() => expect(screen.getByTestId("address").textContent).toBe("/mfa/setup"));
    expect(screen.getByText(/Acme requires two-factor sign-in: set it up to go on/)).toBeTruthy();
    expect(screen.getByRole("button", { name: "Log out" })).toBeTruthy();

    await userEvent.click(screen.getByRole("button", { name: "Set up two-factor sign-in" }));
    await userEvent.type(await screen.findByLabelText(/^Code from the app/), "123456");
    await userEvent.click(screen.getByRole("button", { name: "Turn on" }));
    await userEvent.click(await screen.findByRole("button", { name: "I have saved them" }));
    expect(await screen.findByRole("heading", { name: "Overview" }, { timeout: 5000 })).toBeTruthy();
    expect(screen.getByTestId("address").textContent).toBe("/orgs/acme/overview");
  });
});
