import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { ForgotPasswordPage, ResetPasswordPage, VerifyEmailPage } from "./AccountRecoveryPages";

afterEach(() => vi.unstubAllGlobals());

const USED = { detail: "This link has expired or was already used: ask for a new one.", errors: { token: ["This link has expired or was already used: ask for a new one."] } };

describe("the pages of the emailed links", () => {
  it("sends a reset link and says what follows", async () => {
    const calls = answerApi({
      "POST /api/v1/auth/password-reset/": [202, { detail: "If an account has the address ada@example.com, a link to reset its password is on its way." }],
    });
    renderPage(<ForgotPasswordPage />, { url: "/forgot", route: "/forgot" });
    await userEvent.type(screen.getByLabelText(/Email/), "ada@example.com");
    await userEvent.click(screen.getByRole("button", { name: "Send the link" }));
    expect(await screen.findByText(/a link to reset its password is on its way/)).toBeTruthy();
    expect(calls[calls.length - 1].body).toEqual({ email: "ada@example.com" });
  });

  it("sets a new password through a working link", async () => {
    const calls = answerApi({
      "POST /api/v1/auth/password-reset/check/": [200, { email: "ada@example.com" }],
      "POST /api/v1/auth/password-reset/confirm/": [200, { detail: "Your password is changed: log in with it.", sessions_ended: 1 }],
    });
    renderPage(<ResetPasswordPage />, { url: "/reset/MQ/abc-123", route: "/reset/:uid/:token" });
    expect(await screen.findByText(/For ada@example.com/)).toBeTruthy();
    await userEvent.type(screen.getByLabelText(/New password/), "a brand new passphrase");
    await userEvent.click(screen.getByRole("button", { name: "Set the new password" }));
    expect(await screen.findByText("Your password is changed: log in with it.")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Log in" })).toBeTruthy();
    expect(calls[calls.length - 1].body).toEqual({ uid: "MQ", token: "abc-123", password: "a brand new passphrase" });
  });

  it("says once, beside the field, what is wrong with a new password", async () => {
    const SHORT = "This password is too short. It must contain at least 10 characters.";
    answerApi({
      "POST /api/v1/auth/password-reset/check/": [200, { email: "ada@example.com" }],
      "POST /api/v1/auth/password-reset/confirm/": [400, { detail: `password: ${SHORT}`, errors: { password: [SHORT] } }],
    });
    renderPage(<ResetPasswordPage />, { url: "/reset/MQ/abc-123", route: "/reset/:uid/:token" });
    await userEvent.type(await screen.findByLabelText(/New password/), "short");
    await userEvent.click(screen.getByRole("button", { name: "Set the new password" }));
    expect(await screen.findByText(SHORT)).toBeTruthy();
    expect(screen.queryByText(`password: ${SHORT}`)).toBeNull();
  });

  it("says when a reset link has expired or was used, and offers a new one", async () => {
    answerApi({ "POST /api/v1/auth/password-reset/check/": [400, USED] });
    renderPage(<ResetPasswordPage />, { url: "/reset/MQ/old", route: "/reset/:uid/:token" });
    expect(await screen.findByText(USED.detail)).toBeTruthy();
    expect(screen.getByRole("link", { name: "Ask for a new link" }).getAttribute("href")).toBe("/forgot");
    expect(screen.queryByLabelText(/New password/)).toBeNull();
  });

  it("verifies an address from its link", async () => {
    answerApi({ "POST /api/v1/auth/email/verify/": [200, { detail: "ada@example.com is verified.", email: "ada@example.com" }] });
    renderPage(<VerifyEmailPage />, { url: "/verify-email/tok:en", route: "/verify-email/:token" });
    expect(await screen.findByText("ada@example.com is verified.")).toBeTruthy();
    expect(screen.getByRole("link", { name: "Log in" })).toBeTruthy();
  });
});
