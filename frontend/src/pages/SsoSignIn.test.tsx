import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { LoginPage } from "./AuthPages";
import { SsoLinkPage } from "./AccountRecoveryPages";
import { goTo, isSsoCallback } from "./SsoSignIn";

afterEach(() => vi.unstubAllGlobals());
vi.setConfig({ testTimeout: 20_000 });

describe("signing in with SSO", () => {
  it("finds the organization by the work email and goes to its provider", async () => {
    const went = vi.spyOn(goTo, "url").mockImplementation(() => undefined);
    const calls = answerApi({
      "POST /api/v1/auth/sso/discover/": [200, { organization_name: "Acme", organization_slug: "acme" }],
      "POST /api/v1/auth/sso/start/": [200, { redirect_url: "https://login.acme.test/auth?state=s" }],
    });
    renderPage(<LoginPage />, { url: "/login" });
    await userEvent.type(screen.getByLabelText(/^Email/), "ann@acme.test");
    await userEvent.click(screen.getByRole("button", { name: "Sign in with SSO" }));
    // The email typed for the password is the one offered.
    expect(((await screen.findByLabelText(/Work email/)) as HTMLInputElement).value).toBe("ann@acme.test");
    await userEvent.click(screen.getByRole("button", { name: "Continue" }));
    expect(await screen.findByText("Taking you to Acme's sign-in…")).toBeTruthy();
    await vi.waitFor(() => expect(went).toHaveBeenCalledWith("https://login.acme.test/auth?state=s"));
    expect(calls.map((call) => [call.path, call.body])).toEqual([
      ["/api/v1/auth/sso/discover/", { email: "ann@acme.test" }],
      ["/api/v1/auth/sso/start/", { email: "ann@acme.test" }],
    ]);
  });

  it("says when no organization signs in with SSO for the domain", async () => {
    const detail = "No organization signs in with single sign-on for elsewhere.test: sign in with your password.";
    answerApi({ "POST /api/v1/auth/sso/discover/": [404, { detail }] });
    renderPage(<LoginPage />, { url: "/login" });
    await userEvent.click(screen.getByRole("button", { name: "Sign in with SSO" }));
    await userEvent.type(await screen.findByLabelText(/Work email/), "bob@elsewhere.test");
    await userEvent.click(screen.getByRole("button", { name: "Continue" }));
    expect(await screen.findByText(detail)).toBeTruthy();
  });

  it("finishes the sign-in with the provider's answer, once, and opens the organization", async () => {
    const calls = answerApi({
      "POST /api/v1/auth/sso/callback/": [200, { email: "ann@acme.test", organization: { name: "Acme", slug: "acme", role: "viewer" }, joined: true, csrf_token: "t" }],
    });
    renderPage(<LoginPage />, { url: "/login?code=c0de&state=st4te&iss=https%3A%2F%2Flogin.acme.test" });
    await vi.waitFor(() => expect(screen.getByTestId("address").textContent).toBe("/orgs/acme/overview"));
    const callbacks = calls.filter((call) => call.path === "/api/v1/auth/sso/callback/");
    expect(callbacks.map((call) => call.body)).toEqual([{ state: "st4te", code: "c0de", error: "", error_description: "", iss: "https://login.acme.test" }]);
  });

  it("shows why a sign-in was refused, and the way back", async () => {
    const detail = "The ID token from the provider was refused: its 'nonce' claim is not the expected one.";
    answerApi({ "POST /api/v1/auth/sso/callback/": [400, { detail, errors: {} }] });
    renderPage(<LoginPage />, { url: "/login?code=c&state=s" });
    expect(await screen.findByText(detail)).toBeTruthy();
    await userEvent.click(screen.getByRole("button", { name: "Back to sign-in" }));
    expect(screen.getByRole("button", { name: "Log in" })).toBeTruthy();
  });

  it("sends an account from before to its mailbox", async () => {
    const detail = "Your account ann@acme.test is not yet connected to Acme's single sign-on. We emailed it a link: open it to connect them, then sign in with SSO again.";
    answerApi({ "POST /api/v1/auth/sso/callback/": [202, { detail, link_sent_to: "ann@acme.test" }] });
    renderPage(<LoginPage />, { url: "/login?code=c&state=s" });
    expect(await screen.findByText(detail)).toBeTruthy();
    expect(screen.getByText("Check your email")).toBeTruthy();
    expect(screen.getByTestId("address").textContent).toBe("/login");
  });

  it("connects the account from the emailed link, once", async () => {
    const connected = "Your account is connected to Acme's single sign-on: sign in with SSO.";
    const calls = answerApi({ "POST /api/v1/auth/sso/link/": [200, { detail: connected, organization_name: "Acme" }] });
    renderPage(<SsoLinkPage />, { url: "/sso/link/t0ken", route: "/sso/link/:token" });
    expect(await screen.findByText(connected)).toBeTruthy();
    expect(calls.filter((call) => call.path === "/api/v1/auth/sso/link/").map((call) => call.body)).toEqual([{ token: "t0ken" }]);
  });

  it("tells a provider's answer from any other visit", () => {
    expect(isSsoCallback("?code=a&state=b")).toBe(true);
    expect(isSsoCallback("?error=access_denied&state=b")).toBe(true);
    expect(isSsoCallback("?code=a")).toBe(false);
    expect(isSsoCallback("")).toBe(false);
  });
});
