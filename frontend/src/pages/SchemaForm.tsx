import { Box, Button, CloseButton, Fieldset, Group, MultiSelect, NumberInput, PasswordInput, Select, SimpleGrid, Stack, Switch, TagsInput, Text, Textarea, TextInput } from "@mantine/core";
import { type ReactNode, useState } from "react";

/** A JSON Schema: the subset plugin configs use, and what the OpenAPI document's components
 * add ($ref, allOf and anyOf wrappers, maps). */
export type Schema = {
  type?: string | string[];
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  additionalProperties?: boolean | Schema;
  propertyNames?: Schema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  format?: string;
  nullable?: boolean;
  $ref?: string;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
};

/** A document whose components a $ref may name (the OpenAPI document). */
export type SchemaRoot = { components?: { schemas?: Record<string, Schema> } };

type Value = Record<string, unknown>;
/** Messages by the path of the field each is about ("cors/max_age", "paths/0/value"); "" for
 * what names no field. */
export type FieldErrors = Record<string, string>;

/** How the console shows a field the schema describes: what the schema cannot say (a label
 * better than the field's name, the group it belongs to, a control of its own), never what it
 * says (type, limits, defaults, choices). The schema's own description is preferred. */
export type FieldUi = {
  label?: string;
  description?: string;
  /** The form's section: "basic", "matching", "advanced" (the default for fields without one). */
  group?: string;
  /** Several lines (PEM and the like). */
  multiline?: boolean;
  /** Typed without being shown. */
  secret?: boolean;
  /** Not shown (and reset to its default) while this holds of the object around it. */
  hidden?: (parent: Value) => boolean;
  /** A list of objects: what one item is called ("Target": "Target 1", "Add target"). */
  itemLabel?: string;
  /** A nullable object: the switch that turns it on ("Active health checks"). */
  switchLabel?: string;
  /** The fields of an object, or of each item of a list of objects. */
  fields?: Record<string, FieldUi>;
  /** A control of its own instead of the generated one. */
  render?: (props: CustomFieldProps) => ReactNode;
};
export type Ui = Record<string, FieldUi>;
export type CustomFieldProps = { label: string; description?: string; required: boolean; value: unknown; onChange: (v: unknown) => void; error?: string; messages: FieldErrors };

/** The plugin an API message is about ("limit-count.count: ...", "limit-count: ..."), and the
 * rest of it. */
function parsePluginMessage(message: string): { plugin: string; where?: string; text: string } | null {
  const match = message.match(/^([\w-]+)(?:\.([^:]+))?: (.*)$/);
  return match ? { plugin: match[1], where: match[2], text: match[3] } : null;
}

/** Whether an API message from the `plugins` errors is about `plugin`. */
export function isAboutPlugin(message: string, plugin: string): boolean {
  return parsePluginMessage(message)?.plugin === plugin;
}

/** Messages for one plugin's fields out of the API's `plugins` errors ("limit-count.count: ...",
 * "limit-count: 'count' is a required property"); what names no field stays under "". */
export function pluginFieldErrors(plugin: string, messages: string[]): FieldErrors {
  const errors: FieldErrors = {};
  for (const message of messages) {
    const parsed = parsePluginMessage(message);
    if (parsed?.plugin !== plugin) continue;
    const required = parsed.text.match(/^'([^']+)' is a required property$/);
    const field = [parsed.where, required?.[1]].filter(Boolean).join("/");
    errors[field] = errors[field] ? `${errors[field]} ${parsed.text}` : parsed.text;
  }
  return errors;
}

/** The API's 400 errors ({"errors": {"paths.0.value": [...]}}) by field path, as forms place
 * them ("paths/0/value"). */
export function apiFieldErrors(error: unknown): FieldErrors {
  const errors = (error as { errors?: Record<string, string[]> } | undefined)?.errors ?? {};
  const placed: FieldErrors = {};
  for (const [key, messages] of Object.entries(errors)) {
    const path = key === "non_field_errors" ? "" : key.split(".").join("/");
    placed[path] = [placed[path], ...messages].filter(Boolean).join(" ");
  }
  return placed;
}

/** The errors under `name`, by their paths within it. */
export function within(errors: FieldErrors, name: string): FieldErrors {
  return Object.fromEntries(
    Object.entries(errors)
      .filter(([path]) => path.startsWith(`${name}/`))
      .map(([path, message]) => [path.slice(name.length + 1), message]),
  );
}

const MAX_DEPTH = 20;

/** `schema` with what only points elsewhere resolved: $refs into the document's components, an
 * allOf of one schema (how OpenAPI adds a default to a $ref), and anyOf [X, null] (X, nullable).
 * The outer schema's title, description and default are kept over the referenced one's. */
export function resolveSchema(schema: Schema, root: SchemaRoot = {}, depth = 0): Schema {
  if (depth > MAX_DEPTH) return schema;
  const again = (inner: Schema) => resolveSchema(inner, root, depth + 1);
  const { $ref, allOf, anyOf, ...own } = schema;
  let base: Schema = own;
  if ($ref) {
    const name = $ref.replace(/^#\/components\/schemas\//, "");
    base = { ...again(root.components?.schemas?.[name] ?? {}), ...own };
  } else if (allOf && allOf.length === 1) {
    base = { ...again(allOf[0]), ...own };
  } else if (anyOf) {
    const others = anyOf.filter((option) => option.type !== "null");
    if (others.length === 1) base = { ...again(others[0]), ...own, nullable: others.length < anyOf.length || own.nullable };
    else base = { ...own, anyOf };
  }
  if (base.properties) base = { ...base, properties: Object.fromEntries(Object.entries(base.properties).map(([name, field]) => [name, again(field)])) };
  if (base.items) base = { ...base, items: again(base.items) };
  if (base.additionalProperties && typeof base.additionalProperties === "object") base = { ...base, additionalProperties: again(base.additionalProperties) };
  return base;
}

/** "time_window" as people write it: "Time window". */
export function humanize(name: string): string {
  const words = name.replaceAll("_", " ").replaceAll("-", " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function typeOf(schema: Schema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t) => t !== "null");
  if (schema.type) return schema.type;
  if (schema.properties) return "object";
  return undefined;
}

const isMap = (schema: Schema) => typeOf(schema) === "object" && !schema.properties && typeof schema.additionalProperties === "object";

/** What a field left empty is sent as when a change must say so (a PATCH clearing it): its
 * default, an empty list or map, or null. */
export function emptyValue(schema: Schema): unknown {
  if (schema.default !== undefined) return schema.default;
  if (schema.nullable) return null;
  const type = typeOf(schema);
  if (type === "array") return [];
  if (type === "object") return {};
  return null;
}

/** Whether two values mean the same (an absent field and null alike). */
export function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** A form generated from a JSON Schema: text, numbers, switches, choices, lists of strings, lists
 * of objects (rows added and removed), maps (name and value rows), nested and optional objects;
 * anything else is edited as JSON. The API validates what is sent, and its messages show beside
 * the fields they are about. `fields` renders only those (in that order), for forms in sections;
 * the messages about no rendered field are then the caller's to show. */
export function SchemaForm({
  schema,
  value,
  onChange,
  errors = {},
  ui = {},
  fields,
  layout = "stack",
}: {
  schema: Schema;
  value: Value;
  onChange: (value: Value) => void;
  errors?: FieldErrors;
  ui?: Ui;
  fields?: string[];
  layout?: "stack" | "row";
}) {
  const properties = schema.properties ?? {};
  const names = (fields ?? Object.keys(properties)).filter((name) => properties[name] && !ui[name]?.hidden?.(value));
  const change = (name: string, next: unknown) => {
    const copy: Value = { ...value };
    if (next === undefined || next === "") delete copy[name];
    else copy[name] = next;
    // A field that no longer applies (TLS settings without https) goes back to its default.
    for (const [other, field] of Object.entries(ui)) {
      if (!field.hidden?.(copy) || copy[other] === undefined || !properties[other]) continue;
      const fallback = properties[other].default;
      if (fallback === undefined) delete copy[other];
      else copy[other] = fallback;
    }
    onChange(copy);
  };
  const unplaced = fields
    ? []
    : Object.entries(errors).filter(([path]) => !Object.keys(properties).includes(path.split("/")[0]));
  if (names.length === 0 && unplaced.length === 0) return null;
  const rendered = names.map((name) => (
    <Field
      key={name}
      name={name}
      schema={properties[name]}
      ui={ui[name] ?? {}}
      required={(schema.required ?? []).includes(name)}
      value={value[name]}
      error={errors[name]}
      nested={within(errors, name)}
      onChange={(next) => change(name, next)}
    />
  ));
  return (
    <Stack gap="xs">
      {layout === "row" ? <SimpleGrid cols={{ base: 1, sm: Math.min(names.length, 3) }} spacing="xs">{rendered}</SimpleGrid> : rendered}
      {unplaced.map(([path, message]) => (
        <Text key={path} c="red" size="sm" role="alert">
          {path ? `${path.replaceAll("/", ".")}: ` : ""}
          {message}
        </Text>
      ))}
    </Stack>
  );
}

type FieldProps = { name: string; schema: Schema; ui: FieldUi; required: boolean; value: unknown; onChange: (v: unknown) => void; error?: string; nested: FieldErrors };

function Field({ name, schema, ui, required, value, onChange, error, nested }: FieldProps) {
  const label = ui.label ?? schema.title ?? humanize(name);
  const description = schema.description ?? ui.description;
  const common = { label, description, required, withAsterisk: required, error };
  const type = typeOf(schema);
  const fallback = schema.default === undefined || schema.default === null ? undefined : schema.default;
  if (ui.render) return <>{ui.render({ label, description, required, value, onChange, error, messages: nested })}</>;
  if (schema.enum) {
    const choices = schema.enum;
    return (
      <Select
        {...common}
        data={choices.map(String)}
        value={value === undefined || value === null ? (fallback === undefined ? null : String(fallback)) : String(value)}
        // The choice as the schema spells it: 60, not "60".
        onChange={(v) => onChange(v === null ? undefined : choices.find((choice) => String(choice) === v))}
        clearable={!required && fallback === undefined}
        allowDeselect={!required && fallback === undefined}
      />
    );
  }
  if (type === "boolean") {
    return <Switch label={label} description={description} error={error} checked={Boolean(value ?? schema.default)} onChange={(e) => onChange(e.currentTarget.checked)} />;
  }
  if (type === "integer" || type === "number") {
    return (
      <NumberInput
        {...common}
        min={schema.minimum}
        max={schema.maximum}
        allowDecimal={type === "number"}
        placeholder={fallback === undefined ? undefined : String(fallback)}
        value={typeof value === "number" ? value : ""}
        onChange={(v) => onChange(typeof v === "number" ? v : undefined)}
      />
    );
  }
  if (type === "string") {
    const text = (value as string | null | undefined) ?? "";
    const placeholder = fallback === undefined || fallback === "" ? undefined : String(fallback);
    if (ui.secret || schema.format === "password") return <PasswordInput {...common} value={text} onChange={(e) => onChange(e.currentTarget.value)} />;
    if (ui.multiline || (schema.maxLength ?? 0) > 10000) {
      return <Textarea {...common} autosize minRows={3} maxRows={12} placeholder={placeholder} value={text} onChange={(e) => onChange(e.currentTarget.value)} styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }} />;
    }
    return <TextInput {...common} placeholder={placeholder} value={text} onChange={(e) => onChange(e.currentTarget.value)} />;
  }
  if (type === "array" && schema.items?.enum) {
    const choices = schema.items.enum;
    const defaults = Array.isArray(schema.default) && schema.default.length ? `Default: ${schema.default.join(", ")}` : undefined;
    return (
      <MultiSelect
        {...common}
        data={choices.map(String)}
        placeholder={defaults}
        value={((value as unknown[]) ?? []).map(String)}
        onChange={(v) => onChange(v.length ? v.map((s) => choices.find((choice) => String(choice) === s)) : undefined)}
      />
    );
  }
  if (type === "array" && schema.items && typeOf(schema.items) === "string") {
    const defaults = Array.isArray(schema.default) && schema.default.length ? `Default: ${schema.default.join(", ")}` : "Type, then Enter";
    return <TagsInput {...common} placeholder={defaults} value={(value as string[]) ?? []} onChange={(v) => onChange(v.length ? v : undefined)} />;
  }
  if (type === "array" && schema.items?.properties) {
    return <ObjectList label={label} description={description} schema={schema} ui={ui} value={(value as Value[]) ?? []} onChange={onChange} error={error} nested={nested} />;
  }
  if (isMap(schema)) {
    return <KeyValues label={label} description={description} value={(value as Record<string, string>) ?? {}} onChange={onChange} error={error} nested={nested} />;
  }
  if (type === "object" && schema.properties) {
    const on = value !== undefined && value !== null;
    return (
      <Fieldset legend={label} variant="filled" p="sm">
        <Stack gap="xs">
          {description && (
            <Text size="xs" c="dimmed">
              {description}
            </Text>
          )}
          {schema.nullable && <Switch label={ui.switchLabel ?? `Use ${label.toLowerCase()}`} checked={on} onChange={(e) => onChange(e.currentTarget.checked ? {} : null)} />}
          {(!schema.nullable || on) && (
            <SchemaForm
              schema={schema}
              value={(value as Value) ?? {}}
              errors={nested}
              ui={ui.fields}
              layout="row"
              onChange={(v) => onChange(Object.keys(v).length || schema.nullable ? v : undefined)}
            />
          )}
          {error && <FieldError message={error} />}
        </Stack>
      </Fieldset>
    );
  }
  return <JsonField label={label} description={description} value={value} onChange={onChange} apiError={[error, ...Object.values(nested)].filter(Boolean).join(" ") || undefined} />;
}

function FieldError({ message }: { message: string }) {
  return (
    <Text c="red" size="xs">
      {message}
    </Text>
  );
}

/** A list of objects: a row of fields per item, added and removed. */
function ObjectList({ label, description, schema, ui, value, onChange, error, nested }: { label: string; description?: string; schema: Schema; ui: FieldUi; value: Value[]; onChange: (v: unknown) => void; error?: string; nested: FieldErrors }) {
  const item = schema.items ?? {};
  const noun = ui.itemLabel ?? (item.title && !/Spec$/.test(item.title) ? item.title : label.replace(/s$/, ""));
  const full = schema.maxItems !== undefined && value.length >= schema.maxItems;
  const set = (index: number, next: Value) => onChange(value.map((old, i) => (i === index ? next : old)));
  return (
    <Stack gap={4}>
      <Text fw={500} size="sm">
        {label}
        {(schema.minItems ?? 0) > 0 && (
          <Text span c="red" aria-hidden>
            {" "}*
          </Text>
        )}
      </Text>
      {description && (
        <Text size="xs" c="dimmed">
          {description}
        </Text>
      )}
      {value.map((entry, index) => (
        <Fieldset key={index} legend={`${noun} ${index + 1}`} p="xs" variant="filled">
          <Group align="flex-start" wrap="nowrap" gap="xs">
            <Box style={{ flex: 1, minWidth: 0 }}>
              <SchemaForm schema={item} value={entry ?? {}} errors={within(nested, String(index))} ui={ui.fields} layout="row" onChange={(next) => set(index, next)} />
              {nested[String(index)] && <FieldError message={nested[String(index)]} />}
            </Box>
            <CloseButton mt={24} aria-label={`Remove ${noun.toLowerCase()} ${index + 1}`} onClick={() => onChange(value.filter((_, i) => i !== index))} />
          </Group>
        </Fieldset>
      ))}
      {error && <FieldError message={error} />}
      <Group>
        <Button size="xs" variant="light" disabled={full} onClick={() => onChange([...value, {}])}>
          Add {noun.toLowerCase()}
        </Button>
      </Group>
    </Stack>
  );
}

/** A map of names to values (labels, headers): a row per entry. */
function KeyValues({ label, description, value, onChange, error, nested }: { label: string; description?: string; value: Record<string, string>; onChange: (v: unknown) => void; error?: string; nested: FieldErrors }) {
  // Rows of their own, so a name being typed (empty, or the same as another) is kept as typed.
  const [rows, setRows] = useState<[string, string][]>(() => Object.entries(value ?? {}).map(([k, v]) => [k, String(v)]));
  const update = (next: [string, string][]) => {
    setRows(next);
    const entries = next.filter(([k]) => k !== "");
    onChange(entries.length ? Object.fromEntries(entries) : undefined);
  };
  const noun = label.toLowerCase();
  return (
    <Stack gap={4}>
      <Text fw={500} size="sm">
        {label}
      </Text>
      {description && (
        <Text size="xs" c="dimmed">
          {description}
        </Text>
      )}
      {rows.map(([k, v], index) => (
        <Group key={index} gap="xs" wrap="nowrap" align="flex-start">
          <TextInput style={{ flex: 1 }} aria-label={`${label} ${index + 1}: name`} placeholder="name" value={k} error={nested[k]} onChange={(e) => update(rows.map((row, i) => (i === index ? [e.currentTarget.value, row[1]] : row)))} />
          <TextInput style={{ flex: 1 }} aria-label={`${label} ${index + 1}: value`} placeholder="value" value={v} onChange={(e) => update(rows.map((row, i) => (i === index ? [row[0], e.currentTarget.value] : row)))} />
          <CloseButton mt={6} aria-label={`Remove ${noun} ${index + 1}`} onClick={() => update(rows.filter((_, i) => i !== index))} />
        </Group>
      ))}
      {error && <FieldError message={error} />}
      <Group>
        <Button size="xs" variant="light" onClick={() => setRows([...rows, ["", ""]])}>
          Add to {noun}
        </Button>
      </Group>
    </Stack>
  );
}

function JsonField({ label, description, value, onChange, apiError }: { label: string; description?: string; value: unknown; onChange: (v: unknown) => void; apiError?: string }) {
  const [text, setText] = useState(value === undefined ? "" : JSON.stringify(value, null, 2));
  const [error, setError] = useState<string | null>(null);
  return (
    <Textarea
      label={`${label} (JSON)`}
      description={description}
      autosize
      minRows={2}
      value={text}
      error={error ?? apiError}
      onChange={(e) => {
        setText(e.currentTarget.value);
        try {
          onChange(e.currentTarget.value.trim() ? JSON.parse(e.currentTarget.value) : undefined);
          setError(null);
        } catch {
          setError("Not valid JSON yet.");
        }
      }}
    />
  );
}
