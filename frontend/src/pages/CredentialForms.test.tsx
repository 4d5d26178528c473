import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderInConsole } from "../test/render";
import { CredentialsPanel } from "./CredentialForms";

const URL = "/api/v1/orgs/acme/clusters/7/consumers/3/credentials/";
const PATH = { org_slug: "acme", cluster_id: "7" };
const page = (results: unknown[]) => [200, { count: results.length, next: null, previous: null, results }] as [number, unknown];

afterEach(() => vi.unstubAllGlobals());
vi.setConfig({ testTimeout: 30_000 });

describe("a consumer's credentials", () => {
  it("lists them by what identifies them, never a secret", async () => {
    answerApi({
      [`GET ${URL}`]: page([
        { id: 1, type: "key-auth", key_prefix: "Ab12cd" },
        { id: 2, type: "jwt-auth", key: "mobile-jwt", algorithm: "RS256", public_key: "-----BEGIN PUBLIC KEY-----" },
        { id: 3, type: "basic-auth", username: "mobile" },
        { id: 4, type: "hmac-auth", key_id: "mobile-hmac" },
      ]),
    });
    renderInConsole(<CredentialsPanel path={PATH} consumerId={3} canWrite />);
    const table = within(await screen.findByRole("table", { name: "Credentials" }));
    for (const text of ["key Ab12cd…", "key claim mobile-jwt, RS256", "user mobile", "key id mobile-hmac"]) expect(await table.findByText(text)).toBeTruthy();
  });

  it("makes a jwt-auth credential with its form, and shows the generated secret once with a copy button", async () => {
    const calls = answerApi({
      [`GET ${URL}`]: page([]),
      [`POST ${URL}`]: (body) => [201, { id: 5, type: "jwt-auth", key: (body as { key: string }).key, algorithm: "HS256", public_key: null, secret: "s".repeat(48) }],
    });
    renderInConsole(<CredentialsPanel path={PATH} consumerId={3} canWrite />);
    await userEvent.click(await screen.findByText("jwt-auth"));
    await userEvent.type(screen.getByRole("textbox", { name: /^Key claim/ }), "mobile-jwt");
    expect(screen.queryByLabelText(/Public key/)).toBeNull(); // HS256: a shared secret
    await userEvent.click(screen.getByRole("button", { name: "Add jwt-auth credential" }));

    const shown = within(await screen.findByRole("alert"));
    expect(shown.getByText("Shown once: copy it now")).toBeTruthy();
    expect(shown.getByText("s".repeat(48))).toBeTruthy();
    expect(shown.getByRole("button", { name: "Copy the secret" })).toBeTruthy();
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({ type: "jwt-auth", key: "mobile-jwt" });
  });

  it("asks an RS or ES jwt-auth credential for a public key instead of a secret", async () => {
    const calls = answerApi({ [`GET ${URL}`]: page([]), [`POST ${URL}`]: [201, { id: 6, type: "jwt-auth", key: "k", algorithm: "RS256" }] });
    renderInConsole(<CredentialsPanel path={PATH} consumerId={3} canWrite />);
    await userEvent.click(await screen.findByText("jwt-auth"));
    await userEvent.type(screen.getByRole("textbox", { name: /^Key claim/ }), "k");
    await userEvent.click(screen.getByRole("textbox", { name: /^Algorithm/ }));
    await userEvent.click(await screen.findByRole("option", { name: "RS256" }));
    expect(screen.queryByLabelText(/^Secret/)).toBeNull();
    await userEvent.type(screen.getByRole("textbox", { name: /^Public key/ }), "-----BEGIN PUBLIC KEY-----");
    await userEvent.click(screen.getByRole("button", { name: "Add jwt-auth credential" }));
    await vi.waitFor(() => expect(calls.some((call) => call.method === "POST")).toBe(true));
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({ type: "jwt-auth", key: "k", algorithm: "RS256", public_key: "-----BEGIN PUBLIC KEY-----" });
  });

  it("makes a basic-auth credential, the API's messages beside the fields", async () => {
    let tries = 0;
    const calls = answerApi({
      [`GET ${URL}`]: page([]),
      [`POST ${URL}`]: () =>
        ++tries === 1
          ? [400, { detail: "password: String should have at least 8 characters", errors: { password: ["String should have at least 8 characters"] } }]
          : [201, { id: 7, type: "basic-auth", username: "mobile" }],
    });
    renderInConsole(<CredentialsPanel path={PATH} consumerId={3} canWrite />);
    await userEvent.click(await screen.findByText("basic-auth"));
    await userEvent.type(screen.getByRole("textbox", { name: /^Username/ }), "mobile");
    const password = screen.getByLabelText(/^Password/);
    await userEvent.type(password, "short");
    await userEvent.click(screen.getByRole("button", { name: "Add basic-auth credential" }));
    expect(await screen.findByText("String should have at least 8 characters")).toBeTruthy();
    const described = (password.getAttribute("aria-describedby") ?? "").split(" ").map((id) => document.getElementById(id)?.textContent);
    expect(described).toContain("String should have at least 8 characters");
    await userEvent.type(password, " and longer");
    await userEvent.click(screen.getByRole("button", { name: "Add basic-auth credential" }));
    await vi.waitFor(() => expect(tries).toBe(2));
    expect(calls.filter((call) => call.method === "POST")[1].body).toEqual({ type: "basic-auth", username: "mobile", password: "short and longer" });
    expect(screen.queryByText("Shown once: copy it now")).toBeNull(); // nothing generated: nothing to show
  });
});
