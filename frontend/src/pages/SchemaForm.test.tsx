import { screen, within as inside } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { renderInConsole } from "../test/render";
import { apiFieldErrors, emptyValue, pluginFieldErrors, resolveSchema, SchemaForm, type FieldErrors, type Schema, type Ui } from "./SchemaForm";

// Schemas as the API's /api/v1/plugins/ serves them: titles and descriptions from the schema.
const KEY_AUTH: Schema = {
  type: "object",
  properties: {
    header: { type: "string", default: "apikey", title: "Header", description: "The request header that holds the key." },
    query: { type: "string", default: "apikey", title: "Query parameter" },
    hide_credentials: { type: "boolean", default: false, title: "Hide credentials" },
  },
  required: [],
};
const LIMIT_COUNT: Schema = {
  type: "object",
  properties: {
    count: { type: "integer", minimum: 1, maximum: 1000000000, title: "Requests" },
    time_window: { type: "integer", enum: [1, 60, 3600, 86400], title: "Time window (seconds)" },
    key: { enum: ["consumer", "route", "client_ip"], default: "client_ip", title: "Counted per" },
  },
  required: ["count", "time_window"],
};
const CORS: Schema = {
  type: "object",
  properties: {
    allow_origins: { type: "array", items: { type: "string" }, title: "Allowed origins" },
    allow_methods: { type: "array", items: { enum: ["GET", "POST"] }, title: "Allowed methods" },
  },
  required: ["allow_origins"],
};

// A piece of the OpenAPI document, as drf-spectacular writes pydantic specs.
const DOCUMENT = {
  components: {
    schemas: {
      PathSpec: {
        type: "object",
        properties: { type: { allOf: [{ $ref: "#/components/schemas/PathSpecTypeEnum" }], default: "prefix", title: "Type" }, value: { type: "string", title: "Value" } },
        required: ["value"],
        title: "PathSpec",
      },
      PathSpecTypeEnum: { enum: ["prefix", "exact", "regex"], type: "string" },
      Check: { type: "object", properties: { path: { type: "string", default: "/", title: "Path" }, interval_s: { type: "number", default: 5, title: "Interval S" } } },
    },
  },
};
const ROUTE: Schema = {
  type: "object",
  properties: {
    paths: { type: "array", items: { $ref: "#/components/schemas/PathSpec" }, minItems: 1, title: "Paths" },
    strip: { anyOf: [{ type: "string" }, { type: "null" }], default: null, title: "Strip" },
    check: { anyOf: [{ $ref: "#/components/schemas/Check" }, { type: "null" }], default: null },
    labels: { type: "object", additionalProperties: { type: "string" }, title: "Labels" },
    scheme: { enum: ["http", "https"], default: "http", type: "string", title: "Scheme" },
    sni: { anyOf: [{ type: "string" }, { type: "null" }], default: null, title: "SNI" },
  },
  required: ["paths"],
};

/** The form with its value held as the editors hold it; the last value is read back. */
function Harness({ schema, errors, seen, ui }: { schema: Schema; errors?: FieldErrors; seen: { value: Record<string, unknown> }; ui?: Ui }) {
  const [value, setValue] = useState<Record<string, unknown>>(seen.value);
  return (
    <SchemaForm
      schema={schema}
      value={value}
      errors={errors}
      ui={ui}
      onChange={(next) => {
        seen.value = next;
        setValue(next);
      }}
    />
  );
}

describe("a form generated from a JSON Schema", () => {
  it("shows each setting by its title with its description and default, and sends only what the user set", async () => {
    const seen = { value: {} };
    renderInConsole(<Harness schema={KEY_AUTH} seen={seen} />);
    const header = screen.getByLabelText("Header");
    expect(header).toHaveProperty("placeholder", "apikey");
    expect(screen.getByText("The request header that holds the key.")).toBeTruthy();
    expect(screen.getByLabelText("Hide credentials")).toHaveProperty("checked", false);

    await userEvent.type(header, "X-Api-Key");
    expect(seen.value).toEqual({ header: "X-Api-Key" });
    await userEvent.click(screen.getByLabelText("Hide credentials"));
    expect(seen.value).toEqual({ header: "X-Api-Key", hide_credentials: true });
    await userEvent.clear(header);
    expect(seen.value).toEqual({ hide_credentials: true }); // cleared: the default applies again
  });

  it("names a setting without a title as people write it, never by its raw field name", () => {
    renderInConsole(<Harness schema={{ type: "object", properties: { time_window: { type: "integer" } } }} seen={{ value: {} }} />);
    expect(screen.getByLabelText("Time window")).toBeTruthy();
  });

  it("marks required settings and keeps a choice's type (60, not \"60\")", async () => {
    const seen = { value: {} };
    renderInConsole(<Harness schema={LIMIT_COUNT} seen={seen} />);
    expect(screen.getByLabelText(/Requests/).hasAttribute("required")).toBe(true);
    await userEvent.type(screen.getByLabelText(/Requests/), "100");
    await userEvent.click(screen.getByRole("textbox", { name: /Time window/ }));
    await userEvent.click(await screen.findByRole("option", { name: "60" }));
    expect(seen.value).toEqual({ count: 100, time_window: 60 });
  });

  it("edits lists as tags, and a list of choices as a multi-select", async () => {
    const seen = { value: {} };
    renderInConsole(<Harness schema={CORS} seen={seen} />);
    await userEvent.type(screen.getByRole("textbox", { name: /Allowed origins/ }), "https://app.example.com{enter}https://admin.example.com{enter}");
    await userEvent.click(screen.getByRole("textbox", { name: /Allowed methods/ }));
    await userEvent.click(await screen.findByRole("option", { name: "POST" }));
    expect(seen.value).toEqual({ allow_origins: ["https://app.example.com", "https://admin.example.com"], allow_methods: ["POST"] });
  });

  it("falls back to JSON for what it has no control for, and says when the JSON is not valid", async () => {
    const seen = { value: {} };
    const schema: Schema = { type: "object", properties: { rules: { type: "array", items: { type: "object" } } } };
    renderInConsole(<Harness schema={schema} seen={seen} />);
    const rules = screen.getByLabelText("Rules (JSON)");
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
    const count = screen.getByLabelText(/Requests/);
    expect(count.getAttribute("aria-invalid")).toBe("true");
    const described = (count.getAttribute("aria-describedby") ?? "").split(" ").map((id) => document.getElementById(id)?.textContent);
    expect(described).toContain("0 is less than the minimum of 1");
    expect(screen.getByText("'time_window' is a required property")).toBeTruthy();
  });
});

describe("forms from the OpenAPI document's schemas", () => {
  it("resolves $refs, a default around a $ref, and optional (nullable) fields", () => {
    const route = resolveSchema(ROUTE, DOCUMENT);
    expect(route.properties?.paths.items?.properties?.type).toEqual({ enum: ["prefix", "exact", "regex"], type: "string", default: "prefix", title: "Type" });
    expect(route.properties?.strip).toMatchObject({ type: "string", nullable: true, default: null });
    expect(route.properties?.check).toMatchObject({ nullable: true, properties: { path: { default: "/" } } });
    expect(emptyValue(route.properties!.strip)).toBeNull();
    expect(emptyValue(route.properties!.labels)).toEqual({});
    expect(apiFieldErrors({ errors: { "paths.0.value": ["starts with /"], non_field_errors: ["no"] } })).toEqual({ "paths/0/value": "starts with /", "": "no" });
  });

  it("edits a list of objects a row each, added and removed, with the API's messages beside each row's field", async () => {
    const seen: { value: Record<string, unknown> } = { value: { paths: [{}] } };
    const ui: Ui = { paths: { itemLabel: "Path", fields: { type: { label: "Match" }, value: { label: "Path" } } } };
    renderInConsole(<Harness schema={resolveSchema(ROUTE, DOCUMENT)} ui={ui} seen={seen} errors={{ "paths/1/value": "a path starts with /" }} />);
    const first = inside(screen.getByRole("group", { name: "Path 1" }));
    await userEvent.type(first.getByRole("textbox", { name: /^Path/ }), "/orders");
    await userEvent.click(screen.getByRole("button", { name: "Add path" }));
    const second = inside(screen.getByRole("group", { name: "Path 2" }));
    await userEvent.click(second.getByRole("textbox", { name: /Match/ }));
    await userEvent.click(await screen.findByRole("option", { name: "exact" }));
    await userEvent.type(second.getByRole("textbox", { name: /^Path/ }), "health");
    expect(second.getByRole("textbox", { name: /^Path/ }).getAttribute("aria-invalid")).toBe("true");
    expect(second.getByText("a path starts with /")).toBeTruthy();
    expect(seen.value.paths).toEqual([{ value: "/orders" }, { type: "exact", value: "health" }]);
    await userEvent.click(screen.getByRole("button", { name: "Remove path 1" }));
    expect(seen.value.paths).toEqual([{ type: "exact", value: "health" }]);
  });

  it("edits a map as name and value rows, and turns an optional object on and off", async () => {
    const seen: { value: Record<string, unknown> } = { value: { paths: [] } };
    renderInConsole(<Harness schema={resolveSchema(ROUTE, DOCUMENT)} ui={{ check: { label: "Health check", switchLabel: "Check the targets" } }} seen={seen} />);
    await userEvent.click(screen.getByRole("button", { name: "Add to labels" }));
    await userEvent.type(screen.getByRole("textbox", { name: "Labels 1: name" }), "team");
    await userEvent.type(screen.getByRole("textbox", { name: "Labels 1: value" }), "apps");
    expect(seen.value.labels).toEqual({ team: "apps" });

    expect(screen.queryByLabelText(/Interval/)).toBeNull();
    await userEvent.click(screen.getByLabelText("Check the targets"));
    expect(seen.value.check).toEqual({});
    await userEvent.type(screen.getByLabelText(/Interval/), "2.5");
    expect(seen.value.check).toEqual({ interval_s: 2.5 });
    await userEvent.click(screen.getByLabelText("Check the targets"));
    expect(seen.value.check).toBeNull();
  });

  it("shows a field only where it applies, and resets it when it no longer does", async () => {
    const seen: { value: Record<string, unknown> } = { value: { paths: [] } };
    const ui: Ui = { sni: { label: "SNI", hidden: (v) => v.scheme !== "https" } };
    renderInConsole(<Harness schema={resolveSchema(ROUTE, DOCUMENT)} ui={ui} seen={seen} />);
    expect(screen.queryByLabelText("SNI")).toBeNull();
    await userEvent.click(screen.getByRole("textbox", { name: /Scheme/ }));
    await userEvent.click(await screen.findByRole("option", { name: "https" }));
    await userEvent.type(screen.getByLabelText("SNI"), "api.internal");
    expect(seen.value).toMatchObject({ scheme: "https", sni: "api.internal" });
    await userEvent.click(screen.getByRole("textbox", { name: /Scheme/ }));
    await userEvent.click(await screen.findByRole("option", { name: "http" }));
    expect(screen.queryByLabelText("SNI")).toBeNull();
    expect(seen.value).toMatchObject({ scheme: "http", sni: null }); // its default, so an edit clears it
  });
});
