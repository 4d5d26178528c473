import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { renderInConsole } from "../test/render";
import { pluginFieldErrors, SchemaForm, type FieldErrors, type Schema } from "./SchemaForm";

// Schemas as the API's /api/v1/plugins/ serves them.
const KEY_AUTH: Schema = {
  type: "object",
  properties: {
    header: { type: "string", default: "apikey" },
    query: { type: "string", default: "apikey" },
    hide_credentials: { type: "boolean", default: false },
  },
  required: [],
};
const LIMIT_COUNT: Schema = {
  type: "object",
  properties: {
    count: { type: "integer", minimum: 1, maximum: 1000000000 },
    time_window: { type: "integer", enum: [1, 60, 3600, 86400] },
    key: { enum: ["consumer", "route", "client_ip"], default: "client_ip" },
  },
  required: ["count", "time_window"],
};
const CORS: Schema = {
  type: "object",
  properties: {
    allow_origins: { type: "array", items: { type: "string" } },
    allow_methods: { type: "array", items: { enum: ["GET", "POST"] } },
  },
  required: ["allow_origins"],
};

/** The form with its value held as the plugin editor holds it; the last value is read back. */
function Harness({ schema, errors, seen }: { schema: Schema; errors?: FieldErrors; seen: { value: Record<string, unknown> } }) {
  const [value, setValue] = useState<Record<string, unknown>>(seen.value);
  return (
    <SchemaForm
      schema={schema}
      value={value}
      errors={errors}
      onChange={(next) => {
        seen.value = next;
        setValue(next);
      }}
    />
  );
}

describe("a plugin's settings form, generated from its JSON Schema", () => {
  it("shows each setting with its default, and sends only what the user set", async () => {
    const seen = { value: {} };
    renderInConsole(<Harness schema={KEY_AUTH} seen={seen} />);
    const header = screen.getByLabelText("header");
    expect(header).toHaveProperty("placeholder", "apikey");
    expect(screen.getByLabelText("hide credentials")).toHaveProperty("checked", false);

    await userEvent.type(header, "X-Api-Key");
    expect(seen.value).toEqual({ header: "X-Api-Key" });
    await userEvent.click(screen.getByLabelText("hide credentials"));
    expect(seen.value).toEqual({ header: "X-Api-Key", hide_credentials: true });
    await userEvent.clear(header);
    expect(seen.value).toEqual({ hide_credentials: true }); // cleared: the default applies again
  });

  it("marks required settings and keeps a choice's type (60, not \"60\")", async () => {
    const seen = { value: {} };
    renderInConsole(<Harness schema={LIMIT_COUNT} seen={seen} />);
    expect(screen.getByLabelText(/count/).hasAttribute("required")).toBe(true);
    await userEvent.type(screen.getByLabelText(/count/), "100");
    await userEvent.click(screen.getByRole("textbox", { name: /time window/ }));
    await userEvent.click(await screen.findByRole("option", { name: "60" }));
    expect(seen.value).toEqual({ count: 100, time_window: 60 });
  });

  it("edits lists as tags", async () => {
    const seen = { value: {} };
    renderInConsole(<Harness schema={CORS} seen={seen} />);
    await userEvent.type(screen.getByRole("textbox", { name: /allow origins/ }), "https://app.example.com{enter}https://admin.example.com{enter}");
    expect(seen.value).toEqual({ allow_origins: ["https://app.example.com", "https://admin.example.com"] });
  });

  it("falls back to JSON for what it has no control for, and says when the JSON is not valid", async () => {
    const seen = { value: {} };
    const schema: Schema = { type: "object", properties: { rules: { type: "array", items: { type: "object" } } } };
    renderInConsole(<Harness schema={schema} seen={seen} />);
    const rules = screen.getByLabelText("rules (JSON)");
    await userEvent.type(rules, "[[{{");
    expect(await screen.findByText("Not valid JSON yet.")).toBeTruthy();
    await userEvent.clear(rules);
    await userEvent.type(rules, '[[{{"weight": 10}]');
    expect(screen.queryByText("Not valid JSON yet.")).toBeNull();
    expect(seen.value).toEqual({ rules: [{ weight: 10 }] });
  });

  it("shows the API's message beside the setting it is about", () => {
    const errors = pluginFieldErrors("limit-count", [
      "limit-count.count: 0 is less than the minimum of 1",
      "limit-count: 'time_window' is a required property",
      "cors.allow_origins: [] should be non-empty",
    ]);
    expect(errors).toEqual({ count: "0 is less than the minimum of 1", time_window: "'time_window' is a required property" });
    renderInConsole(<Harness schema={LIMIT_COUNT} errors={errors} seen={{ value: { count: 0 } }} />);
    const count = screen.getByLabelText(/count/);
    expect(count.getAttribute("aria-invalid")).toBe("true");
    const described = (count.getAttribute("aria-describedby") ?? "").split(" ").map((id) => document.getElementById(id)?.textContent);
    expect(described).toContain("0 is less than the minimum of 1");
    expect(screen.getByText("'time_window' is a required property")).toBeTruthy();
  });
});
