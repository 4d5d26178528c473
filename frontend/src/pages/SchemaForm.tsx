import { Fieldset, NumberInput, Select, Stack, Switch, TagsInput, Text, Textarea, TextInput } from "@mantine/core";
import { useState } from "react";

/** A JSON Schema (the subset plugin configs use). */
export type Schema = {
  type?: string | string[];
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  minimum?: number;
  maximum?: number;
};

type Value = Record<string, unknown>;
/** The API's messages for a config, by the path of the field each is about ("cors/max_age"). */
export type FieldErrors = Record<string, string>;

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

function within(errors: FieldErrors, name: string): FieldErrors {
  return Object.fromEntries(
    Object.entries(errors)
      .filter(([path]) => path.startsWith(`${name}/`))
      .map(([path, message]) => [path.slice(name.length + 1), message]),
  );
}

/** A form generated from a JSON Schema: text, numbers, switches, choices, lists of strings and
 * nested objects; anything else is edited as JSON. The API validates what is sent, and its
 * messages show beside the fields they are about. */
export function SchemaForm({ schema, value, onChange, errors = {} }: { schema: Schema; value: Value; onChange: (value: Value) => void; errors?: FieldErrors }) {
  const properties = Object.entries(schema.properties ?? {});
  if (properties.length === 0) return null;
  return (
    <Stack gap="xs">
      {properties.map(([name, field]) => (
        <Field
          key={name}
          name={name}
          schema={field}
          required={(schema.required ?? []).includes(name)}
          value={value[name]}
          error={errors[name]}
          nested={within(errors, name)}
          onChange={(next) => {
            const copy = { ...value };
            if (next === undefined || next === "") delete copy[name];
            else copy[name] = next;
            onChange(copy);
          }}
        />
      ))}
    </Stack>
  );
}

type FieldProps = { name: string; schema: Schema; required: boolean; value: unknown; onChange: (v: unknown) => void; error?: string; nested: FieldErrors };

function Field({ name, schema, required, value, onChange, error, nested }: FieldProps) {
  const label = schema.title ?? name.replaceAll("_", " ");
  const common = { label, description: schema.description, required, withAsterisk: required, error };
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (schema.enum) {
    const choices = schema.enum;
    return (
      <Select
        {...common}
        data={choices.map(String)}
        value={value === undefined ? (schema.default === undefined ? null : String(schema.default)) : String(value)}
        // The choice as the schema spells it: 60, not "60".
        onChange={(v) => onChange(v === null ? undefined : choices.find((choice) => String(choice) === v))}
        clearable={!required}
      />
    );
  }
  if (type === "boolean") {
    return <Switch label={label} description={schema.description} error={error} checked={Boolean(value ?? schema.default)} onChange={(e) => onChange(e.currentTarget.checked)} />;
  }
  if (type === "integer" || type === "number") {
    return (
      <NumberInput
        {...common}
        min={schema.minimum}
        max={schema.maximum}
        allowDecimal={type === "number"}
        placeholder={schema.default === undefined ? undefined : String(schema.default)}
        value={typeof value === "number" ? value : ""}
        onChange={(v) => onChange(typeof v === "number" ? v : undefined)}
      />
    );
  }
  if (type === "string") {
    return <TextInput {...common} placeholder={schema.default === undefined ? undefined : String(schema.default)} value={(value as string) ?? ""} onChange={(e) => onChange(e.currentTarget.value)} />;
  }
  if (type === "array" && schema.items && (schema.items.type === "string" || schema.items.enum)) {
    return <TagsInput {...common} data={schema.items.enum?.map(String)} value={(value as string[]) ?? []} onChange={(v) => onChange(v.length ? v : undefined)} />;
  }
  if (type === "object" && schema.properties) {
    return (
      <Fieldset legend={label}>
        <SchemaForm schema={schema} value={(value as Value) ?? {}} errors={nested} onChange={(v) => onChange(Object.keys(v).length ? v : undefined)} />
        {error && (
          <Text c="red" size="xs" mt={4}>
            {error}
          </Text>
        )}
      </Fieldset>
    );
  }
  return <JsonField label={label} description={schema.description} value={value} onChange={onChange} apiError={error} />;
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
