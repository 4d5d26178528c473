import { Alert, Button, Code, CopyButton, Group, Loader, Modal, MultiSelect, Select, Stack, Table, Tabs, Text, TextInput, Textarea } from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage, fieldErrors, messagesAbout, unwrap } from "../api/client";
import { keys, published, useAfterWrite } from "../api/queries";
import { isAboutPlugin, pluginFieldErrors, SchemaForm, type Schema } from "./SchemaForm";

type Path = { org_slug: string; cluster_id: string };
type Row = Record<string, unknown> & { id: number; name?: string; username?: string };
type Kind = "routes" | "services" | "upstreams" | "consumers" | "certificates";
const KINDS: Kind[] = ["routes", "services", "upstreams", "consumers", "certificates"];
type PluginInfo = { name: string; description: string; scopes: string[]; schema: Schema };

const SCOPE: Record<Kind, string> = { routes: "route", services: "service", upstreams: "", consumers: "consumer", certificates: "" };
const FORM_FIELDS = ["name", "username", "targets", "upstream", "service", "paths", "methods", "certificate", "private_key", "plugins"];
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/** A cluster's catalog entries of one kind (routes, services...), shared with other panels. */
export function useRows(path: Path, kind: Kind) {
  return useQuery({
    queryKey: [...keys.catalog(path), kind],
    queryFn: async () => {
      const answer = await unwrap(api.GET(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/` as never, { params: { path } } as never));
      return ((answer as { results?: Row[] }).results ?? []) as Row[];
    },
  });
}

/** The cluster's catalog: routes, services, upstreams and consumers, created and deleted here;
 * plugin settings as forms generated from each plugin's JSON Schema. */
export function CatalogPanel({ path, canWrite }: { path: Path; canWrite: boolean }) {
  return (
    <Tabs defaultValue="routes" variant="pills">
      <Tabs.List>
        {KINDS.map((kind) => (
          <Tabs.Tab key={kind} value={kind}>
            {kind[0].toUpperCase() + kind.slice(1)}
          </Tabs.Tab>
        ))}
        <Tabs.Tab value="global-plugins">Global plugins</Tabs.Tab>
      </Tabs.List>
      {KINDS.map((kind) => (
        <Tabs.Panel key={kind} value={kind} pt="md">
          <Entities path={path} kind={kind} canWrite={canWrite} />
        </Tabs.Panel>
      ))}
      <Tabs.Panel value="global-plugins" pt="md">
        <GlobalPlugins path={path} canWrite={canWrite} />
      </Tabs.Panel>
    </Tabs>
  );
}

function summary(kind: Kind, row: Row): string {
  if (kind === "routes") return `${((row.paths as { value: string }[]) ?? []).map((p) => p.value).join(", ")} → ${row.service}`;
  if (kind === "services") return `→ ${row.upstream}`;
  if (kind === "upstreams") return ((row.targets as { host: string; port: number }[]) ?? []).map((t) => `${t.host}:${t.port}`).join(", ");
  if (kind === "certificates") return `${((row.snis as string[]) ?? []).join(", ")}; expires ${String(row.not_after ?? "").slice(0, 10)}`;
  return "";
}

function Entities({ path, kind, canWrite }: { path: Path; kind: Kind; canWrite: boolean }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const rows = useRows(path, kind);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Row | null>(null);
  const [credentialsOf, setCredentialsOf] = useState<Row | null>(null);
  const [editing, setEditing] = useState<Row | null>(null);
  const [error, setError] = useState<string | null>(null);
  const label = (row: Row) => String(row.name ?? row.username ?? row.id);
  const remove = async () => {
    if (!deleting) return;
    const { error: failed } = await api.DELETE(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/{id}/` as never, {
      params: { path: { ...path, id: deleting.id } },
    } as never);
    setError(failed ? errorMessage(failed) : null);
    setDeleting(null);
    await afterWrite(...published(path));
  };
  return (
    <Stack>
      {canWrite && (
        <Group>
          <Button onClick={() => setCreating(true)}>New {kind.slice(0, -1)}</Button>
        </Group>
      )}
      {error && <Alert color="red">{error}</Alert>}
      {rows.isLoading && <Loader aria-label={`Loading ${kind}`} />}
      {rows.isError && <Alert color="red">{errorMessage(rows.error)}</Alert>}
      {rows.isSuccess && rows.data.length === 0 && <Text c="dimmed">No {kind} yet.</Text>}
      {rows.isSuccess && rows.data.length > 0 && (
        <Table.ScrollContainer minWidth={560}><Table striped>
          <Table.Tbody>
            {rows.data.map((row) => (
              <Table.Tr key={row.id}>
                <Table.Td>{label(row)}</Table.Td>
                <Table.Td>{summary(kind, row)}</Table.Td>
                <Table.Td>
                  {Object.keys((row.plugins as object) ?? {}).map((name) => (
                    <Code key={name} mr={4}>
                      {name}
                    </Code>
                  ))}
                </Table.Td>
                <Table.Td>
                  {canWrite && kind !== "certificates" && (
                    <Button size="xs" variant="subtle" onClick={() => setEditing(row)}>
                      Edit
                    </Button>
                  )}
                  {canWrite && kind === "consumers" && (
                    <Button size="xs" variant="subtle" onClick={() => setCredentialsOf(row)}>
                      Credentials
                    </Button>
                  )}
                  {canWrite && (
                    <Button size="xs" color="red" variant="subtle" onClick={() => setDeleting(row)}>
                      Delete
                    </Button>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table></Table.ScrollContainer>
      )}
      <Modal opened={creating} onClose={() => setCreating(false)} title={`New ${kind.slice(0, -1)}`} size="lg">
        <CreateForm path={path} kind={kind} onDone={() => setCreating(false)} />
      </Modal>
      <Modal opened={editing !== null} onClose={() => setEditing(null)} title={`Edit ${editing ? label(editing) : ""}`} size="lg">
        {editing && <CreateForm path={path} kind={kind} initial={editing} onDone={() => setEditing(null)} />}
      </Modal>
      <Modal opened={credentialsOf !== null} onClose={() => setCredentialsOf(null)} title={`Credentials of ${credentialsOf ? label(credentialsOf) : ""}`} size="lg">
        {credentialsOf && <Credentials path={path} consumerId={credentialsOf.id} />}
      </Modal>
      <Modal opened={deleting !== null} onClose={() => setDeleting(null)} title="Delete">
        <Stack>
          <Text>
            Delete {deleting ? label(deleting) : ""}? The gateways stop serving it with the next snapshot.
          </Text>
          <Group justify="end">
            <Button variant="default" onClick={() => setDeleting(null)}>
              Cancel
            </Button>
            <Button color="red" onClick={remove}>
              Delete
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}

type Target = { host: string; port: number; weight?: number };
type PathMatch = { type?: string; value: string };

/** Creates an entry, or with `initial` edits it in place: PATCH with only the fields the user
 * changed, naming the revision the form was opened on (If-Match), so neither what the form does
 * not show nor a colleague's change made meanwhile is overwritten. */
function CreateForm({ path, kind, onDone, initial }: { path: Path; kind: Kind; onDone: () => void; initial?: Row }) {
  const queries = useQueryClient();
  const afterWrite = useAfterWrite(path.org_slug);
  const services = useRows(path, "services");
  const upstreams = useRows(path, "upstreams");
  const initialPaths = (initial?.paths as PathMatch[]) ?? [];
  const initialTargets = (initial?.targets as Target[]) ?? [];
  const [name, setName] = useState(String(initial?.name ?? initial?.username ?? ""));
  const [parent, setParent] = useState<string | null>((initial?.service ?? initial?.upstream ?? null) as string | null);
  const [paths, setPaths] = useState(initial ? initialPaths.map((p) => p.value).join(", ") : "/");
  const [methods, setMethods] = useState<string[]>((initial?.methods as string[]) ?? []);
  const [targets, setTargets] = useState(initial ? initialTargets.map((t) => `${t.host}:${t.port}`).join("\n") : "");
  const [plugins, setPlugins] = useState<Record<string, Record<string, unknown>>>((initial?.plugins as Record<string, Record<string, unknown>>) ?? {});
  const [certificate, setCertificate] = useState("");
  const [privateKey, setPrivateKey] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [pluginErrors, setPluginErrors] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [stale, setStale] = useState<string | null>(null);
  const [opened] = useState(() => ({ name, parent, paths, methods, targets, plugins }));
  // A path or target the user kept keeps its type or weight; a new one is a prefix, weight 100.
  const pathList = () =>
    paths.split(/[\s,]+/).filter(Boolean).map((value) => initialPaths.find((p) => p.value === value) ?? { value });
  const targetList = () =>
    targets
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((t) => ({ host: t.split(":")[0], port: Number(t.split(":")[1] ?? 80) }))
      .map((t) => initialTargets.find((o) => o.host === t.host && o.port === t.port) ?? t);
  const body = (): Record<string, unknown> => {
    if (kind === "upstreams") return { name, targets: targetList() };
    if (kind === "services") return { name, upstream: parent, plugins };
    if (kind === "routes") return { name, service: parent, paths: pathList(), methods, plugins };
    if (kind === "certificates") return { name, certificate, private_key: privateKey };
    return { username: name, plugins };
  };
  /** The fields the user changed since the form opened, by their API names. */
  const changes = (): Record<string, unknown> => {
    const all = body();
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const changed: Record<string, unknown> = {};
    if (name !== opened.name) changed[kind === "consumers" ? "username" : "name"] = name;
    if (parent !== opened.parent) changed[kind === "routes" ? "service" : "upstream"] = parent;
    if (paths !== opened.paths) changed.paths = all.paths;
    if (!same(methods, opened.methods)) changed.methods = methods;
    if (targets !== opened.targets) changed.targets = all.targets;
    if (!same(plugins, opened.plugins)) changed.plugins = plugins;
    if (kind === "certificates") return all;  // a certificate is replaced whole, key and all
    return changed;
  };
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const url = `/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/`;
    let failed: unknown;
    if (initial) {
      const changed = changes();
      if (Object.keys(changed).length === 0) return onDone();
      const ifMatch = { "If-Match": `"${String(initial.revision ?? "")}"` };
      ({ error: failed } = await api.PATCH(`${url}{id}/` as never, { params: { path: { ...path, id: initial.id } }, headers: ifMatch, body: changed } as never));
    } else {
      ({ error: failed } = await api.POST(url as never, { params: { path }, body: body() } as never));
    }
    if ((failed as { current_revision?: number } | undefined)?.current_revision !== undefined) {
      setStale(errorMessage(failed));
      return;
    }
    if (failed) {
      const errors = fieldErrors(failed);
      setErrors(errors);
      setPluginErrors(messagesAbout(failed, "plugins"));
      // Messages beside their fields need no repeating; one about a field the form lacks does.
      const placed = Object.keys(errors).length > 0 && Object.keys(errors).every((field) => FORM_FIELDS.includes(field));
      setError(placed ? "Please correct the fields marked below." : errorMessage(failed));
      return;
    }
    await afterWrite(...published(path));  // a change publishes a version and is audited
    onDone();
  };
  const reload = async () => {
    await queries.invalidateQueries({ queryKey: keys.catalog(path) });  // nothing was written
    onDone();
  };
  const nameField = kind === "consumers" ? "username" : "name";
  return (
    <Stack component="form" onSubmit={submit}>
      {stale && (
        <Alert color="orange" title="Changed by someone else" role="alert">
          <Stack gap="xs">
            <Text size="sm">{stale}</Text>
            <Group>
              <Button size="xs" onClick={reload}>
                Reload
              </Button>
            </Group>
          </Stack>
        </Alert>
      )}
      {error && <Alert color="red">{error}</Alert>}
      <TextInput label={kind === "consumers" ? "Username" : "Name"} required value={name} error={errors[nameField]} onChange={(e) => setName(e.currentTarget.value)} />
      {kind === "upstreams" && (
        <Textarea label="Targets" description="host:port, one per line" required value={targets} error={errors.targets} onChange={(e) => setTargets(e.currentTarget.value)} />
      )}
      {kind === "services" && (
        <Select label="Upstream" required data={(upstreams.data ?? []).map((u) => String(u.name))} value={parent} error={errors.upstream} onChange={setParent} />
      )}
      {kind === "routes" && (
        <>
          <Select label="Service" required data={(services.data ?? []).map((s) => String(s.name))} value={parent} error={errors.service} onChange={setParent} />
          <TextInput label="Paths" description="Comma-separated; each path keeps its match type (a new one matches as a prefix)" required value={paths} error={errors.paths} onChange={(e) => setPaths(e.currentTarget.value)} />
          <MultiSelect label="Methods" description="None: every method" data={METHODS} value={methods} onChange={setMethods} />
        </>
      )}
      {kind === "certificates" && (
        <>
          <Textarea label="Certificate (PEM, with its chain)" required autosize minRows={3} value={certificate} error={errors.certificate} onChange={(e) => setCertificate(e.currentTarget.value)} />
          <Textarea label="Private key (PEM)" description="Stored encrypted; never shown again" required autosize minRows={3} value={privateKey} error={errors.private_key} onChange={(e) => setPrivateKey(e.currentTarget.value)} />
        </>
      )}
      {SCOPE[kind] && <PluginEditor scope={SCOPE[kind]} value={plugins} onChange={setPlugins} messages={pluginErrors} />}
      <Button type="submit">{initial ? "Save" : "Create"}</Button>
    </Stack>
  );
}

/** Plugins chosen from those the scope admits, each set through the form its JSON Schema
 * generates; the API's messages about a plugin show beside its fields. */
function PluginEditor({ scope, value, onChange, messages = [] }: { scope: string; value: Record<string, Record<string, unknown>>; onChange: (v: Record<string, Record<string, unknown>>) => void; messages?: string[] }) {
  const catalog = useQuery({
    queryKey: ["plugins"],
    queryFn: async () => ((await unwrap(api.GET("/api/v1/plugins/"))) as unknown as { plugins: PluginInfo[] }).plugins,
  });
  const available = (catalog.data ?? []).filter((p) => p.scopes.includes(scope));
  // Messages about no chosen plugin's fields (an unknown plugin, a wrong scope) go by the list.
  const unplaced = messages.filter((message) => !Object.keys(value).some((name) => isAboutPlugin(message, name)));
  return (
    <Stack gap="xs">
      <MultiSelect
        label="Plugins"
        data={available.map((p) => ({ value: p.name, label: p.name }))}
        value={Object.keys(value)}
        error={unplaced.join(" ") || undefined}
        onChange={(names) => onChange(Object.fromEntries(names.map((n) => [n, value[n] ?? {}])))}
      />
      {Object.keys(value).map((name) => {
        const plugin = available.find((p) => p.name === name);
        const errors = pluginFieldErrors(name, messages);
        return plugin ? (
          <Stack key={name} gap={4}>
            <Text fw={600}>{name}</Text>
            <Text size="xs" c="dimmed">
              {plugin.description}
            </Text>
            {errors[""] && (
              <Text c="red" size="sm">
                {errors[""]}
              </Text>
            )}
            <SchemaForm schema={plugin.schema} value={value[name]} errors={errors} onChange={(config) => onChange({ ...value, [name]: config })} />
          </Stack>
        ) : null;
      })}
    </Stack>
  );
}

type GlobalPlugin = { name: string; config: Record<string, unknown>; revision: number };

/** Plugins for the whole cluster (the least specific scope): listed, added, edited through the
 * form their JSON Schema generates (the whole config, as the form holds it, naming the revision it
 * was opened on), and removed. */
function GlobalPlugins({ path, canWrite }: { path: Path; canWrite: boolean }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const url = "/api/v1/orgs/{org_slug}/clusters/{cluster_id}/plugins/";
  const list = useQuery({
    queryKey: [...keys.catalog(path), "global-plugins"],
    queryFn: async () => (await unwrap(api.GET(url as never, { params: { path } } as never))) as Record<string, Record<string, unknown>>,
  });
  const catalog = useQuery({
    queryKey: ["plugins"],
    queryFn: async () => ((await unwrap(api.GET("/api/v1/plugins/"))) as unknown as { plugins: PluginInfo[] }).plugins,
  });
  const [editing, setEditing] = useState<GlobalPlugin | null>(null);
  const [adding, setAdding] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const open = async (name: string) => {
    const plugin = (await unwrap(api.GET(`${url}{name}/` as never, { params: { path: { ...path, name } } } as never))) as GlobalPlugin;
    setEditing(plugin);
  };
  const remove = async (name: string) => {
    if (!window.confirm(`Remove ${name} from the whole cluster?`)) return;
    const { error: failed } = await api.DELETE(`${url}{name}/` as never, { params: { path: { ...path, name } } } as never);
    setError(failed ? errorMessage(failed) : null);
    await afterWrite(...published(path));
  };
  const globalOnes = (catalog.data ?? []).filter((p) => p.scopes.includes("global"));
  const names = Object.keys(list.data ?? {});
  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      {canWrite && (
        <Group align="end">
          <Select
            label="Add a plugin to every route"
            placeholder="Choose a plugin"
            data={globalOnes.filter((p) => !names.includes(p.name)).map((p) => p.name)}
            value={adding}
            onChange={(name) => {
              setAdding(null);
              if (name) setEditing({ name, config: {}, revision: 0 });
            }}
          />
        </Group>
      )}
      {list.isSuccess && names.length === 0 && <Text c="dimmed">No global plugins yet.</Text>}
      {names.length > 0 && (
        <Table striped>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Plugin</Table.Th>
              <Table.Th>Settings</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {names.map((name) => (
              <Table.Tr key={name}>
                <Table.Td>
                  <Code>{name}</Code>
                </Table.Td>
                <Table.Td>
                  <Text size="sm" lineClamp={2}>
                    {JSON.stringify(list.data?.[name])}
                  </Text>
                </Table.Td>
                <Table.Td>
                  {canWrite && (
                    <Group gap={4}>
                      <Button size="xs" variant="subtle" onClick={() => open(name)}>
                        Edit
                      </Button>
                      <Button size="xs" variant="subtle" color="red" onClick={() => remove(name)}>
                        Remove
                      </Button>
                    </Group>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Modal opened={editing !== null} onClose={() => setEditing(null)} title={editing ? `Global ${editing.name}` : ""} size="lg">
        {editing && (
          <GlobalPluginForm path={path} plugin={editing} info={globalOnes.find((p) => p.name === editing.name)} onDone={() => setEditing(null)} />
        )}
      </Modal>
    </Stack>
  );
}

function GlobalPluginForm({ path, plugin, info, onDone }: { path: Path; plugin: GlobalPlugin; info?: PluginInfo; onDone: () => void }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const [config, setConfig] = useState<Record<string, unknown>>(plugin.config);
  const [messages, setMessages] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    const headers = plugin.revision ? { "If-Match": `"${plugin.revision}"` } : {};
    const { error: failed } = await api.PUT("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/plugins/{name}/" as never, {
      params: { path: { ...path, name: plugin.name } },
      headers,
      body: config,
    } as never);
    if (failed) {
      setMessages(messagesAbout(failed, "config"));
      setError(errorMessage(failed));
      return;
    }
    await afterWrite(...published(path));
    onDone();
  };
  return (
    <Stack component="form" onSubmit={save}>
      {error && (
        <Alert color="red" role="alert">
          {error}
        </Alert>
      )}
      {info && <Text size="sm" c="dimmed">{info.description}</Text>}
      {info && <SchemaForm schema={info.schema} value={config} errors={pluginFieldErrors(plugin.name, messages)} onChange={setConfig} />}
      <Button type="submit">Save</Button>
    </Stack>
  );
}

type Credential = { id: number; type: string; key_prefix?: string; username?: string; key?: string };
const CREDENTIAL_TYPES = ["key-auth", "basic-auth", "jwt-auth", "hmac-auth"];

/** A consumer's credentials: listed by type and prefix (secrets are never shown again), added
 * with a generated key or secret shown once, deleted. */
function Credentials({ path, consumerId }: { path: Path; consumerId: number }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const url = "/api/v1/orgs/{org_slug}/clusters/{cluster_id}/consumers/{consumer_id}/credentials/";
  const params = { path: { ...path, consumer_id: String(consumerId) } };
  const credentials = useQuery({
    queryKey: keys.credentials(path, consumerId),
    queryFn: async () => {
      const data = await unwrap(api.GET(url as never, { params } as never));
      return ((data as { results?: Credential[] }).results ?? (data as Credential[])) as Credential[];
    },
  });
  const [type, setType] = useState<string | null>("key-auth");
  const [extra, setExtra] = useState("");
  const [shown, setShown] = useState<Record<string, string> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const add = async (event: React.FormEvent) => {
    event.preventDefault();
    let fields: Record<string, unknown> = {};
    try {
      fields = extra.trim() ? JSON.parse(extra) : {};
    } catch {
      setError("The extra fields are not valid JSON.");
      return;
    }
    const { data, error: failed } = await api.POST(url as never, { params, body: { type, ...fields } } as never);
    if (failed) {
      setError(errorMessage(failed));
      return;
    }
    setError(null);
    const answer = data as Record<string, unknown>;
    const secrets = Object.fromEntries(["key", "secret", "password"].filter((k) => typeof answer[k] === "string").map((k) => [k, String(answer[k])]));
    setShown(Object.keys(secrets).length ? secrets : null);
    setExtra("");
    await afterWrite(keys.credentials(path, consumerId), ...published(path));
  };
  const remove = async (credential: Credential) => {
    if (!window.confirm(`Delete this ${credential.type} credential? Clients using it are refused at once.`)) return;
    await api.DELETE(`${url}{id}/` as never, { params: { path: { ...params.path, id: credential.id } } } as never);
    await afterWrite(keys.credentials(path, consumerId), ...published(path));
  };
  return (
    <Stack>
      {credentials.isLoading && <Loader aria-label="Loading credentials" />}
      {(credentials.data ?? []).map((credential) => (
        <Group key={credential.id} justify="space-between">
          <Text>
            <Code>{credential.type}</Code> {credential.key_prefix ? `${credential.key_prefix}…` : credential.username ?? credential.key ?? ""}
          </Text>
          <Button size="xs" color="red" variant="subtle" onClick={() => remove(credential)}>
            Delete
          </Button>
        </Group>
      ))}
      {credentials.isSuccess && (credentials.data ?? []).length === 0 && <Text c="dimmed">No credentials yet.</Text>}
      {shown && (
        <Alert color="blue" title="Shown once: copy it now">
          {Object.entries(shown).map(([name, value]) => (
            <Group key={name}>
              <Text size="sm">{name}</Text>
              <Code>{value}</Code>
              <CopyButton value={value}>{({ copied, copy }) => <Button size="xs" onClick={copy}>{copied ? "Copied" : "Copy"}</Button>}</CopyButton>
            </Group>
          ))}
        </Alert>
      )}
      {error && <Alert color="red">{error}</Alert>}
      <Stack component="form" onSubmit={add} gap="xs">
        <Select label="Type" data={CREDENTIAL_TYPES} value={type} onChange={setType} />
        <Textarea
          label="Other fields (JSON, optional)"
          description='For example {"username": "app", "password": "..."} for basic-auth, or {"key": "app-jwt", "algorithm": "HS256"} for jwt-auth; key-auth keys are generated when left out.'
          autosize
          minRows={2}
          value={extra}
          onChange={(e) => setExtra(e.currentTarget.value)}
        />
        <Button type="submit">Add credential</Button>
      </Stack>
    </Stack>
  );
}
