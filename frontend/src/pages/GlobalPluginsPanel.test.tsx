import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { answerApi } from "../test/fakeApi";
import { renderInConsole } from "../test/render";
import { GlobalPluginsPanel, settingsText } from "./GlobalPluginsPanel";

const BASE = "/api/v1/orgs/acme/clusters/7/plugins/";
const PATH = { org_slug: "acme", cluster_id: "7" };
const CORS = {
  name: "cors",
  description: "Cross-origin resource sharing, preflight answered at the gateway.",
  scopes: ["global", "service", "route"],
  schema: {
    type: "object",
    properties: {
      allow_origins: { type: "array", items: { type: "string" }, title: "Allowed origins", description: "Exact origins, or * for any." },
      max_age: { type: "integer", default: 5, title: "Max age (seconds)", description: "How long a browser may cache a preflight answer." },
      allow_credentials: { type: "boolean", default: false, title: "Allow credentials" },
    },
    required: ["allow_origins"],
  },
};
const KEY_AUTH = { name: "key-auth", description: "Authenticate consumers by an API key.", scopes: ["global", "route"], schema: { type: "object", properties: {} } };
const MOCKING = { name: "mocking", description: "Answer without the upstream.", scopes: ["service", "route"], schema: { type: "object", properties: {} } };

afterEach(() => vi.unstubAllGlobals());
vi.setConfig({ testTimeout: 30_000 });

describe("global plugins", () => {
  it("lists each with what it does and its settings by their titles", async () => {
    answerApi({
      [`GET ${BASE}`]: [200, { cors: { max_age: 600, allow_credentials: true, allow_origins: ["https://a.example.com"] } }],
      "GET /api/v1/plugins/": [200, { plugins: [CORS, KEY_AUTH, MOCKING] }],
    });
    renderInConsole(<GlobalPluginsPanel path={PATH} canWrite />);
    const table = within(await screen.findByRole("table", { name: "Global plugins" }));
    expect(table.getAllByRole("columnheader").map((th) => th.textContent)).toEqual(["Plugin", "What it does", "Settings", ""]);
    expect(await table.findByText("Allowed origins: https://a.example.com · Max age (seconds): 600 · Allow credentials: yes")).toBeTruthy();
    expect(table.getByText(CORS.description)).toBeTruthy();
    // Only plugins that may be set for the whole cluster, and not those already set, are offered.
    await userEvent.click(screen.getByRole("textbox", { name: "Add a plugin to the whole cluster" }));
    expect(await screen.findByRole("option", { name: /^key-auth/ })).toBeTruthy();
    expect(screen.queryByRole("option", { name: /^mocking/ })).toBeNull();
    expect(screen.queryByRole("option", { name: /^cors/ })).toBeNull();
  });

  it("edits one through its schema's form, naming the revision it opened", async () => {
    const calls = answerApi({
      [`GET ${BASE}`]: [200, { cors: { allow_origins: ["https://a.example.com"], max_age: 600 } }],
      [`GET ${BASE}cors/`]: [200, { name: "cors", config: { allow_origins: ["https://a.example.com"], max_age: 600 }, revision: 3 }],
      [`PUT ${BASE}cors/`]: [200, { name: "cors", config: {}, revision: 4 }],
      "GET /api/v1/plugins/": [200, { plugins: [CORS] }],
    });
    renderInConsole(<GlobalPluginsPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "Edit cors" }));
    const form = within(await screen.findByRole("dialog"));
    expect(form.getByText("How long a browser may cache a preflight answer.")).toBeTruthy();
    const maxAge = form.getByRole("textbox", { name: /^Max age/ });
    await userEvent.clear(maxAge);
    await userEvent.type(maxAge, "900");
    await userEvent.click(form.getByRole("button", { name: "Save" }));
    await vi.waitFor(() => expect(calls.some((call) => call.method === "PUT")).toBe(true));
    const sent = calls.find((call) => call.method === "PUT");
    expect(sent?.body).toEqual({ allow_origins: ["https://a.example.com"], max_age: 900 });
    expect(sent?.headers["if-match"]).toBe('"3"');
  });

  it("removes one once confirmed", async () => {
    const calls = answerApi({
      [`GET ${BASE}`]: [200, { cors: { allow_origins: ["*"] } }],
      [`DELETE ${BASE}cors/`]: [200, {}],
      "GET /api/v1/plugins/": [200, { plugins: [CORS] }],
    });
    renderInConsole(<GlobalPluginsPanel path={PATH} canWrite />);
    await userEvent.click(await screen.findByRole("button", { name: "Remove cors" }));
    expect(calls.some((call) => call.method === "DELETE")).toBe(false);
    await userEvent.click(within(await screen.findByRole("dialog")).getByRole("button", { name: "Remove" }));
    await vi.waitFor(() => expect(calls.some((call) => call.method === "DELETE")).toBe(true));
  });

  it("reads settings out by their schema's titles", () => {
    expect(settingsText({}, CORS.schema)).toBe("defaults");
    expect(settingsText({ allow_origins: ["*"], extra_field: { a: 1 } }, CORS.schema)).toBe("Allowed origins: * · Extra field: a: 1");
  });
});
