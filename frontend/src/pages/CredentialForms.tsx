import { Alert, Button, Code, CopyButton, Group, SegmentedControl, Stack, Text, Title } from "@mantine/core";
import { useState } from "react";
import { api, errorMessage, unwrap } from "../api/client";
import { keys, published, useAfterWrite } from "../api/queries";
import { type Column, type PageOf, ServerTable } from "../components/ServerTable";
import { apiFieldErrors, type FieldErrors, SchemaForm, type Schema, type Ui } from "./SchemaForm";
import { ConfirmDialog } from "../components/ConfirmDialog";

type Path = { org_slug: string; cluster_id: string };
type Credential = { id: number; type: string; key_prefix?: string; key?: string; algorithm?: string; public_key?: string | null; username?: string; key_id?: string };
export type CredentialType = "key-auth" | "jwt-auth" | "basic-auth" | "hmac-auth";
export const CREDENTIAL_TYPES: CredentialType[] = ["key-auth", "jwt-auth", "basic-auth", "hmac-auth"];

const GENERATED = "Leave empty to have one generated, shown once.";
const HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"];

/** What each type of credential is made of (the API's credential specs: saas/catalog/specs.py),
 * as the forms below are generated from; the API validates what is sent and its messages show
 * beside these fields. */
export const CREDENTIAL_SCHEMAS: Record<CredentialType, Schema> = {
  "key-auth": {
    type: "object",
    properties: {
      key: { type: "string", title: "Key", description: `At least 16 printable characters, no spaces. ${GENERATED}`, minLength: 16, maxLength: 256 },
    },
  },
  "jwt-auth": {
    type: "object",
    properties: {
      key: { type: "string", title: "Key claim", description: "The value of the token's key claim that names this consumer.", minLength: 1, maxLength: 200 },
      algorithm: { type: "string", title: "Algorithm", description: "HS: a shared secret; RS and ES: the consumer's public key.", enum: ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"], default: "HS256" },
      secret: { type: "string", title: "Secret", description: `At least 32 characters, without spaces, commas, brackets, quotes or backslashes. ${GENERATED}`, minLength: 32, maxLength: 1024 },
      public_key: { type: "string", title: "Public key (PEM)", description: "The key tokens are verified with.", maxLength: 20000 },
    },
    required: ["key"],
  },
  "basic-auth": {
    type: "object",
    properties: {
      username: { type: "string", title: "Username", description: "Letters, digits and . _ @ + -; unique in the cluster.", minLength: 1, maxLength: 100 },
      password: { type: "string", title: "Password", description: "At least 8 characters; stored only as a hash, never shown again.", minLength: 8, maxLength: 256, format: "password" },
    },
    required: ["username", "password"],
  },
  "hmac-auth": {
    type: "object",
    properties: {
      key_id: { type: "string", title: "Key id", description: "The keyId requests are signed with; unique in the cluster.", minLength: 1, maxLength: 100 },
      secret: { type: "string", title: "Secret", description: `At least 32 printable characters. ${GENERATED}`, minLength: 32, maxLength: 1024 },
    },
    required: ["key_id"],
  },
};

const hmacAlgorithm = (value: Record<string, unknown>) => HMAC_ALGORITHMS.includes(String(value.algorithm ?? "HS256"));
const CREDENTIAL_UI: Record<CredentialType, Ui> = {
  "key-auth": {},
  "jwt-auth": {
    secret: { secret: true, hidden: (v) => !hmacAlgorithm(v) },
    public_key: { multiline: true, hidden: (v) => hmacAlgorithm(v) },
  },
  "basic-auth": { password: { secret: true } },
  "hmac-auth": { secret: { secret: true } },
};

/** How a credential is told apart from the consumer's others (never its secret). */
export function identifies(credential: Credential): string {
  if (credential.type === "key-auth") return credential.key_prefix ? `key ${credential.key_prefix}…` : "key chosen by you";
  if (credential.type === "jwt-auth") return `key claim ${credential.key ?? ""}, ${credential.algorithm ?? ""}`;
  if (credential.type === "basic-auth") return `user ${credential.username ?? ""}`;
  return `key id ${credential.key_id ?? ""}`;
}

/** A consumer's credentials: listed by what identifies them (secrets are never shown again),
 * added through a form for each type with a generated key or secret shown once with a copy
 * button, deleted with confirmation. */
export function CredentialsPanel({ path, consumerId, canWrite }: { path: Path; consumerId: number; canWrite: boolean }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const url = "/api/v1/orgs/{org_slug}/clusters/{cluster_id}/consumers/{consumer_id}/credentials/";
  const params = { path: { ...path, consumer_id: String(consumerId) } };
  const refresh = () => afterWrite(keys.credentials(path, consumerId), ...published(path));
  const remove = async (rows: Credential[]) => {
    try {
      for (const row of rows) await unwrap(api.DELETE(`${url}{id}/` as never, { params: { path: { ...params.path, id: row.id } } } as never));
    } finally {
      await refresh();
    }
  };
  const [deleting, setDeleting] = useState<Credential | null>(null);
  const [error, setError] = useState<string | null>(null);
  const columns: Column<Credential>[] = [
    { key: "type", header: "Type", sort: "type", render: (row) => <Code>{row.type}</Code> },
    { key: "identifies", header: "Identified by", render: (row) => identifies(row) },
  ];
  if (canWrite)
    columns.push({
      key: "actions",
      header: "",
      render: (row) => (
        <Button size="xs" color="red" variant="subtle" onClick={() => setDeleting(row)} aria-label={`Delete the ${row.type} credential (${identifies(row)})`}>
          Delete
        </Button>
      ),
    });
  const removeOne = async () => {
    if (!deleting) return;
    try {
      await remove([deleting]);
      setError(null);
    } catch (failed) {
      setError(errorMessage(failed));
    }
    setDeleting(null);
  };
  return (
    <Stack>
      <ServerTable<Credential>
        label="Credentials"
        queryKey={keys.credentials(path, consumerId)}
        fetchPage={(query) => unwrap(api.GET(url as never, { params: { ...params, query } } as never)) as Promise<PageOf<Credential>>}
        columns={columns}
        rowKey={(row) => row.id}
        rowName={(row) => `${row.type} (${identifies(row)})`}
        defaultOrdering="id"
        searchPlaceholder="Type, key prefix, key claim, username or key id"
        empty="No credentials yet."
        minWidth={420}
        pageSize={10}
        bulk={canWrite ? { verb: "Delete", noun: "credentials", run: remove } : undefined}
      />
      {error && <Alert color="red">{error}</Alert>}
      {canWrite && <CredentialForm path={path} consumerId={consumerId} onAdded={refresh} />}
      <ConfirmDialog opened={deleting !== null} title="Delete a credential" confirmLabel="Delete" onConfirm={removeOne} onCancel={() => setDeleting(null)}>
        <Text>Delete this {deleting?.type} credential ({deleting ? identifies(deleting) : ""})? Clients using it are refused from the next snapshot.</Text>
      </ConfirmDialog>
    </Stack>
  );
}

/** A new credential of the type chosen, through the form its schema generates. */
export function CredentialForm({ path, consumerId, onAdded }: { path: Path; consumerId: number; onAdded: () => Promise<unknown> }) {
  const [type, setType] = useState<CredentialType>("key-auth");
  const [value, setValue] = useState<Record<string, unknown>>({});
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<string | null>(null);
  const [shown, setShown] = useState<{ type: string; secrets: Record<string, string> } | null>(null);
  const [saving, setSaving] = useState(false);
  const choose = (next: string) => {
    setType(next as CredentialType);
    setValue({});
    setErrors({});
    setError(null);
  };
  const add = async (event: React.FormEvent) => {
    event.preventDefault();
    setSaving(true);
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/consumers/{consumer_id}/credentials/" as never, {
      params: { path: { ...path, consumer_id: String(consumerId) } },
      body: { type, ...value },
    } as never);
    setSaving(false);
    if (failed) {
      const beside = apiFieldErrors(failed);
      setErrors(beside);
      const placed = Object.keys(beside).length > 0 && Object.keys(beside).every((p) => p.split("/")[0] in (CREDENTIAL_SCHEMAS[type].properties ?? {}));
      setError(placed ? "Please correct the fields marked below." : errorMessage(failed));
      return;
    }
    const answer = data as Record<string, unknown>;
    // What the API generated comes back once: a key-auth key, a JWT or HMAC secret.
    const secrets = Object.fromEntries(["key", "secret"].filter((k) => typeof answer[k] === "string" && value[k] === undefined && !(type === "jwt-auth" && k === "key")).map((k) => [k, String(answer[k])]));
    setShown(Object.keys(secrets).length ? { type, secrets } : null);
    setValue({});
    setErrors({});
    setError(null);
    await onAdded();
  };
  return (
    <Stack gap="sm">
      {shown && (
        <Alert color="blue" title="Shown once: copy it now" role="alert">
          <Stack gap={6}>
            {Object.entries(shown.secrets).map(([name, secret]) => (
              <Group key={name} gap="xs" wrap="nowrap" align="start">
                <Text size="sm" style={{ whiteSpace: "nowrap" }}>
                  {shown.type} {name}
                </Text>
                <Code style={{ flex: 1, minWidth: 0, wordBreak: "break-all" }}>{secret}</Code>
                <CopyButton value={secret}>
                  {({ copied, copy }) => (
                    <Button size="xs" onClick={copy} aria-label={`Copy the ${name}`}>
                      {copied ? "Copied" : "Copy"}
                    </Button>
                  )}
                </CopyButton>
              </Group>
            ))}
          </Stack>
        </Alert>
      )}
      <form onSubmit={add} noValidate>
<Stack gap="xs">
        <Title order={4} size="h5">
          Add a credential
        </Title>
        <Stack gap={4}>
          <Text size="sm" fw={500} id="credential-type">
            Type
          </Text>
          <SegmentedControl aria-labelledby="credential-type" fullWidth data={CREDENTIAL_TYPES} value={type} onChange={choose} />
        </Stack>
        {error && (
          <Alert color="red" role="alert">
            {error}
          </Alert>
        )}
        <SchemaForm key={type} schema={CREDENTIAL_SCHEMAS[type]} value={value} onChange={setValue} errors={errors} ui={CREDENTIAL_UI[type]} />
        <Group>
          <Button type="submit" loading={saving}>
            Add {type} credential
          </Button>
        </Group>
      </Stack>
</form>
    </Stack>
  );
}
