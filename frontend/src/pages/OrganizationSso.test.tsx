import { configure, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { OrganizationSso } from "./OrganizationSso";

configure({ asyncUtilTimeout: 5000 });
// Typing a whole form takes seconds when the suite runs at once.
vi.setConfig({ testTimeout: 20_000 });
afterEach(() => vi.unstubAllGlobals());

const URL = "/api/v1/orgs/acme/sso/";
const NONE = {
  configured: false,
  redirect_uri: "https://cloud.example.com/console/login",
  issuer: "",
  client_id: "",
  client_secret_set: false,
  allowed_domains: [],
  default_role: "viewer",
  role_claim: "",
  role_mapping: [],
  sso_only: false,
  updated_at: null,
};

describe("the organization's single sign-on", () => {
  it("shows the redirect URI to register and turns SSO on with rules and SSO only", async () => {
    const calls = answerApi({
      [`GET ${URL}`]: [200, NONE],
      [`PUT ${URL}`]: (body) => {
        const sent = body as Record<string, unknown>;
        return [200, { ...NONE, ...sent, configured: true, client_secret_set: true, updated_at: "2026-01-01T00:00:00Z" }];
      },
    });
    renderPage(<OrganizationSso slug="acme" />, { url: "/" });
    expect((await screen.findByLabelText("Redirect URI")).textContent).toBe("https://cloud.example.com/console/login");

    await userEvent.type(screen.getByRole("textbox", { name: /Issuer URL/ }), "https://login.acme.test");
    await userEvent.type(screen.getByRole("textbox", { name: /Client ID/ }), "gateway-cloud");
    await userEvent.type(screen.getByLabelText(/Client secret/), "s3cret");
    await userEvent.type(screen.getByRole("textbox", { name: /Allowed email domains/ }), "acme.test, acme.example");
    await userEvent.type(screen.getByRole("textbox", { name: /Role claim/ }), "groups");
    await userEvent.click(screen.getByRole("button", { name: "Add a rule" }));
    await userEvent.type(within(screen.getByRole("group", { name: "Rule 1" })).getByRole("textbox", { name: "Claim value" }), "platform-admins");
    await userEvent.click(screen.getByRole("switch", { name: /SSO only/ }));
    await userEvent.click(screen.getByRole("button", { name: "Turn on single sign-on" }));

    expect(await screen.findByText("Single sign-on is on: people at acme.test, acme.example sign in with https://login.acme.test.")).toBeTruthy();
    const put = calls.find((call) => call.method === "PUT");
    expect(put?.body).toEqual({
      issuer: "https://login.acme.test",
      client_id: "gateway-cloud",
      client_secret: "s3cret",
      allowed_domains: ["acme.test", "acme.example"],
      default_role: "viewer",
      role_claim: "groups",
      role_mapping: [{ value: "platform-admins", role: "developer" }],
      sso_only: true,
    });
    // Saved: the secret is not shown again, and is kept when left empty.
    expect((screen.getByLabelText(/Client secret/) as HTMLInputElement).value).toBe("");
    expect(screen.getByText("Saved (stored encrypted). Leave empty to keep it.")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Save" })).toBeTruthy();
  });

  it("shows the error beside the field the API names", async () => {
    const detail = "Could not read the provider's discovery document at https://nowhere.test/.well-known/openid-configuration: 404";
    answerApi({
      [`GET ${URL}`]: [200, NONE],
      [`PUT ${URL}`]: [400, { detail, errors: { issuer: [detail] } }],
    });
    renderPage(<OrganizationSso slug="acme" />, { url: "/" });
    await userEvent.type(await screen.findByRole("textbox", { name: /Issuer URL/ }), "https://nowhere.test");
    await userEvent.type(screen.getByRole("textbox", { name: /Client ID/ }), "x");
    await userEvent.type(screen.getByLabelText(/Client secret/), "y");
    await userEvent.type(screen.getByRole("textbox", { name: /Allowed email domains/ }), "acme.test");
    await userEvent.click(screen.getByRole("button", { name: "Turn on single sign-on" }));
    expect((await screen.findAllByText(detail)).length).toBe(2);
  });
});
