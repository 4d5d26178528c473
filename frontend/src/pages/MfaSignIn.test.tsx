import { configure, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { LoginPage } from "./AuthPages";

configure({ asyncUtilTimeout: 5000 });
afterEach(() => vi.unstubAllGlobals());
vi.setConfig({ testTimeout: 20_000 });

const ME = { user: { id: 1, email: "ada@example.com", name: "Ada" }, organizations: [] };
const CODE_DUE = { mfa_required: true, detail: "Enter the 6-digit code from your authenticator app, or one of your recovery codes." };
const WRONG = "This code is not valid: enter the current code from your authenticator app, or an unused recovery code.";

async function passwordStep() {
  await userEvent.type(screen.getByLabelText(/^Email/), "ada@example.com");
  await userEvent.type(screen.getByLabelText(/^Password/), "correct horse");
  await userEvent.click(screen.getByRole("button", { name: "Log in" }));
}

describe("the sign-in's second step", () => {
  it("asks for the app's code after a right password, and signs in with it", async () => {
    const calls = answerApi({
      "POST /api/v1/auth/login/": [200, CODE_DUE],
      "POST /api/v1/auth/mfa/verify/": (body) => ((body as { code: string }).code === "123456" ? [200, { ...ME, csrf_token: "t" }] : [400, { detail: WRONG, errors: { code: [WRONG] } }]),
      "GET /api/v1/auth/me/": [200, ME],
    });
    renderPage(<LoginPage />, { url: "/login" });
    await passwordStep();
    expect(await screen.findByRole("heading", { name: "Two-factor sign-in" })).toBeTruthy();

    await userEvent.type(screen.getByLabelText(/^Authentication code/), "654321");
    await userEvent.click(screen.getByRole("button", { name: "Verify" }));
    expect(await screen.findByText(WRONG)).toBeTruthy();
    await userEvent.type(screen.getByLabelText(/^Authentication code/), "123456");
    await userEvent.click(screen.getByRole("button", { name: "Verify" }));
    await vi.waitFor(() => expect(screen.getByTestId("address").textContent).toBe("/"));
    expect(calls.filter((c) => c.path === "/api/v1/auth/mfa/verify/").map((c) => c.body)).toEqual([{ code: "654321" }, { code: "123456" }]);
  });

  it("takes a recovery code instead, and goes back to the password", async () => {
    const calls = answerApi({
      "POST /api/v1/auth/login/": [200, CODE_DUE],
      "POST /api/v1/auth/mfa/verify/": [200, { ...ME, csrf_token: "t" }],
      "GET /api/v1/auth/me/": [200, ME],
    });
    renderPage(<LoginPage />, { url: "/login" });
    await passwordStep();
    await userEvent.click(await screen.findByRole("button", { name: "Use a recovery code" }));
    await userEvent.type(screen.getByLabelText(/^Recovery code/), "abcd-efgh-jkmn");
    await userEvent.click(screen.getByRole("button", { name: "Verify" }));
    await vi.waitFor(() => expect(calls.find((c) => c.path === "/api/v1/auth/mfa/verify/")?.body).toEqual({ code: "abcd-efgh-jkmn" }));
  });

  it("goes back to the password form", async () => {
    answerApi({ "POST /api/v1/auth/login/": [200, CODE_DUE] });
    renderPage(<LoginPage />, { url: "/login" });
    await passwordStep();
    await userEvent.click(await screen.findByRole("button", { name: "Back to log in" }));
    expect(screen.getByRole("heading", { name: "Log in to Gateway Cloud" })).toBeTruthy();
    expect((screen.getByLabelText(/^Password/) as HTMLInputElement).value).toBe("");
  });
});
