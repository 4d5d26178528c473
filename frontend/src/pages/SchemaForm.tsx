import { Fieldset, NumberInput, Select, Stack, Switch, TagsInput, Textarea, TextInput } from "@mantine/core";
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

/** A form generated from a JSON Schema: text, numbers, switches, choices, lists of strings and
 * nested objects; anything else is edited as JSON. The API validates what is sent. */
export function SchemaForm({ schema, value, onChange }: { schema: Schema; value: Value; onChange: (value: Value) => void }) {
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

function Field({ name, schema, required, value, onChange }: { name: string; schema: Schema; required: boolean; value: unknown; onChange: (v: unknown) => void }) {
  const label = schema.title ?? name.replaceAll("_", " ");
  const common = { label, description: schema.description, required, withAsterisk: required };
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  if (schema.enum) {
    return (
      <Select
        {...common}
        data={schema.enum.map(String)}
        value={value === undefined ? (schema.default === undefined ? null : String(schema.default)) : String(value)}
        onChange={(v) => onChange(v ?? undefined)}
        clearable={!required}
      />
    );
  }
  if (type === "boolean") {
    return <Switch label={label} description={schema.description} checked={Boolean(value ?? schema.default)} onChange={(e) => onChange(e.currentTarget.checked)} />;
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
        <SchemaForm schema={schema} value={(value as Value) ?? {}} onChange={(v) => onChange(Object.keys(v).length ? v : undefined)} />
      </Fieldset>
    );
  }
  return <JsonField label={label} description={schema.description} value={value} onChange={onChange} />;
}

function JsonField({ label, description, value, onChange }: { label: string; description?: string; value: unknown; onChange: (v: unknown) => void }) {
  const [text, setText] = useState(value === undefined ? "" : JSON.stringify(value, null, 2));
  const [error, setError] = useState<string | null>(null);
  return (
    <Textarea
      label={`${label} (JSON)`}
      description={description}
      autosize
      minRows={2}
      value={text}
      error={error}
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
