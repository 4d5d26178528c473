import { Alert, Badge, Box, Button, Code, Collapse, Group, Loader, Modal, MultiSelect, Select, Stack, Tabs, Text, Title } from "@mantine/core";
import { useMediaQuery } from "@mantine/hooks";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { type ReactNode, useMemo, useState } from "react";
import { api, errorMessage, messagesAbout, unwrap } from "../api/client";
import { catalogKeys, keys, published, useAfterWrite } from "../api/queries";
import { type Column, type PageOf, ServerTable } from "../components/ServerTable";
import { CredentialsPanel } from "./CredentialForms";
import { GlobalPluginsPanel } from "./GlobalPluginsPanel";
import { apiFieldErrors, type CustomFieldProps, emptyValue, type FieldErrors, isAboutPlugin, pluginFieldErrors, resolveSchema, same, SchemaForm, type Schema, type SchemaRoot, type Ui } from "./SchemaForm";
import { ConfirmDialog } from "../components/ConfirmDialog";

type Path = { org_slug: string; cluster_id: string };
export type Row = Record<string, unknown> & { id: number; name?: string; username?: string; revision?: number };
type Kind = "routes" | "services" | "upstreams" | "consumers" | "certificates";
const KINDS: Kind[] = ["routes", "services", "upstreams", "consumers", "certificates"];
export type PluginInfo = { name: string; description: string; scopes: string[]; schema: Schema };
type Shadow = { path: string; path_type: string; route_id: number; route: string; priority: number; by_path: string; by_path_type: string };

/** The OpenAPI document the API serves: the catalog's forms are generated from its schemas, so
 * a field added to the API appears in them without console work. Read once a session. */
export function useOpenApi() {
  return useQuery({
    queryKey: catalogKeys.openapi(),
    queryFn: async (): Promise<SchemaRoot> => {
      const answer = await globalThis.fetch(new Request(new URL("/api/schema/?format=json", window.location.origin), { credentials: "same-origin", headers: { Accept: "application/json" } }));
      if (!answer.ok) throw { detail: `The API's schema could not be read (${answer.status}).` };
      return (await answer.json()) as SchemaRoot;
    },
    staleTime: Infinity,
  });
}

/** Every plugin with its JSON Schema and the scopes it attaches to (GET /api/v1/plugins/). */
export function usePlugins() {
  return useQuery({
    queryKey: catalogKeys.plugins(),
    queryFn: async () => ((await unwrap(api.GET("/api/v1/plugins/"))) as unknown as { plugins: PluginInfo[] }).plugins,
    staleTime: Infinity,
  });
}

/** A cluster's catalog entries of one kind (routes, services...): the first 200, for choices
 * (a route's service) and names (traffic by route); the tables page through the rest. */
export function useRows(path: Path, kind: Kind) {
  return useQuery({
    queryKey: [...keys.catalog(path), kind],
    queryFn: async () => {
      const answer = await unwrap(api.GET(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/` as never, { params: { path, query: { page_size: 200 } } } as never));
      return ((answer as { results?: Row[] }).results ?? []) as Row[];
    },
  });
}

const METHOD_HELP = "None chosen: every method.";

// What the schemas cannot say about each field: its label, section and help text, and the
// controls of their own (a choice among the cluster's services). A field the API adds later, not
// named here, shows under Advanced with its schema's title and description.
const PLUGINS_FIELD = { group: "plugins" };
const ENTITIES: Record<Kind, { one: string; component: string; nameField: string; scope?: string; search: string; ui: Ui }> = {
  routes: {
    one: "route",
    component: "RouteSpec",
    nameField: "name",
    scope: "route",
    search: "Name, service, path or host",
    ui: {
      name: { group: "basic", label: "Name" },
      service: { group: "basic", label: "Service", description: "The service whose upstream and plugins serve the route." },
      paths: {
        group: "matching",
        label: "Paths",
        itemLabel: "Path",
        description: "A request matches when its path matches one of these: a prefix matches every path that starts with it, exact only itself, regex a regular expression (PCRE).",
        fields: { type: { label: "Match" }, value: { label: "Path" } },
      },
      hosts: { group: "matching", label: "Hosts", description: "Host names the route answers for; a leading *. matches any subdomain. None: every host." },
      methods: { group: "matching", label: "Methods", description: METHOD_HELP },
      headers: {
        group: "matching",
        label: "Headers",
        itemLabel: "Header",
        description: "Every request must carry these headers with this exact value, or a value matching the regular expression.",
        fields: { name: { label: "Header name" }, value: { label: "Value" }, type: { label: "Match" } },
      },
      priority: { group: "matching", label: "Priority", description: "Routes with a higher priority are tried first (-10000 to 10000; default 0)." },
      strip_path_prefix: { group: "advanced", label: "Strip path prefix", description: "Removed from the start of the path before the request goes upstream, such as /orders." },
      plugins: PLUGINS_FIELD,
    },
  },
  services: {
    one: "service",
    component: "ServiceSpec",
    nameField: "name",
    scope: "service",
    search: "Name, description or upstream",
    ui: {
      name: { group: "basic", label: "Name" },
      upstream: { group: "basic", label: "Upstream", description: "Where the service's routes send requests." },
      description: { group: "basic", label: "Description", description: "For people: what the service is." },
      plugins: PLUGINS_FIELD,
    },
  },
  upstreams: {
    one: "upstream",
    component: "UpstreamSpec",
    nameField: "name",
    search: "Name",
    ui: {
      name: { group: "basic", label: "Name" },
      targets: {
        group: "basic",
        label: "Targets",
        itemLabel: "Target",
        description: "The servers requests are balanced between: a host name or IP address, a port, and a weight (0 to 256, default 100; 0 takes no requests).",
        fields: { host: { label: "Host" }, port: { label: "Port" }, weight: { label: "Weight" } },
      },
      load_balancing: {
        group: "basic",
        label: "Load balancing",
        description: "roundrobin: in turn, by weight; leastconn: the target with the fewest connections; hash_header, hash_client_ip, hash_uri: the same header value, client or path always goes to the same target.",
      },
      hash_header: { group: "basic", label: "Hash header", description: "The request header whose value chooses the target.", hidden: (v) => v.load_balancing !== "hash_header" },
      scheme: { group: "advanced", label: "Scheme", description: "https: connect to the targets over TLS." },
      tls_sni: { group: "advanced", label: "TLS server name (SNI)", description: "Sent in the TLS handshake; none: no SNI.", hidden: (v) => v.scheme !== "https" },
      tls_verify: { group: "advanced", label: "Verify the targets' certificates", hidden: (v) => v.scheme !== "https" },
      tls_ca_pem: { group: "advanced", label: "CA certificates (PEM)", description: "What the targets' certificates are verified against.", multiline: true, hidden: (v) => v.scheme !== "https" },
      timeouts: {
        group: "advanced",
        label: "Timeouts",
        fields: { connect_s: { label: "Connect (s)" }, send_s: { label: "Send (s)" }, read_s: { label: "Read (s)" } },
      },
      retries: { group: "advanced", label: "Retries", description: "Further attempts when a connection to a target fails (0 to 10)." },
      active_health_check: {
        group: "advanced",
        label: "Active health checks",
        switchLabel: "Check the targets",
        description: "The gateways request a path of each target at an interval, and stop sending to a target that fails.",
        fields: {
          path: { label: "Check path" },
          interval_s: { label: "Interval (s)" },
          healthy_threshold: { label: "Healthy after" },
          unhealthy_threshold: { label: "Unhealthy after" },
        },
      },
      passive_health_check: {
        group: "advanced",
        label: "Passive health checks",
        switchLabel: "Watch answers",
        description: "A target whose answers fail this many times in a row is taken out, and tried again after the fail timeout.",
        fields: { max_fails: { label: "Failures" }, fail_timeout_s: { label: "Fail timeout (s)" } },
      },
    },
  },
  consumers: {
    one: "consumer",
    component: "ConsumerSpec",
    nameField: "username",
    scope: "consumer",
    search: "Username",
    ui: {
      username: { group: "basic", label: "Username", description: "Sent upstream as X-Consumer-Username once authenticated." },
      labels: { group: "advanced", label: "Labels", description: "Names and values of your own, such as team: mobile." },
      plugins: PLUGINS_FIELD,
    },
  },
  certificates: {
    one: "certificate",
    component: "CertificateSpec",
    nameField: "name",
    search: "Name or SNI",
    ui: {
      name: { group: "basic", label: "Name" },
      certificate: { group: "basic", label: "Certificate (PEM, with its chain)", multiline: true, description: "Its names (SNIs) and expiry are read from it." },
      private_key: { group: "basic", label: "Private key (PEM)", multiline: true, description: "Stored encrypted; never shown again." },
    },
  },
};
const GROUPS = [
  { key: "basic", title: "" },
  { key: "matching", title: "Matching" },
  { key: "advanced", title: "Advanced" },
  { key: "plugins", title: "Plugins" },
];

/** The cluster's catalog: routes, services, upstreams, consumers and certificates in tables
 * (sorted, searched and paged by the API), created and edited through forms generated from the
 * API's schemas; global plugins; consumers' credentials. */
export function CatalogPanel({ path, canWrite }: { path: Path; canWrite: boolean }) {
  useOpenApi(); // read ahead: the first form opens at once
  return (
    <Tabs defaultValue="routes" variant="pills" keepMounted={false}>
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
        <GlobalPluginsPanel path={path} canWrite={canWrite} />
      </Tabs.Panel>
    </Tabs>
  );
}

const PATH_MARK: Record<string, string> = { prefix: "", exact: "= ", regex: "~ " };
const list = (items: unknown, none = "") => ((items as unknown[]) ?? []).map(String).join(", ") || none;

function PluginNames({ row }: { row: Row }) {
  return (
    <>
      {Object.keys((row.plugins as object) ?? {}).map((name) => (
        <Code key={name} mr={4}>
          {name}
        </Code>
      ))}
    </>
  );
}

/** The warning for a route's paths no request reaches (the API's `shadowed_by`). */
export function shadowText(shadow: Shadow): string {
  const by = `${shadow.by_path_type === "exact" ? "" : "prefix "}${shadow.by_path}`;
  return `${shadow.path} is never reached: route ${shadow.route} (priority ${shadow.priority}) matches it first by ${by}, with the same or wider hosts, methods and headers.`;
}

function columns(kind: Kind): Column<Row>[] {
  const name = (header: string, field = "name"): Column<Row> => ({ key: field, header, sort: field, render: (row) => <Text fw={500}>{String(row[field] ?? "")}</Text> });
  if (kind === "routes")
    return [
      {
        key: "name",
        header: "Name",
        sort: "name",
        render: (row) => {
          const shadows = (row.shadowed_by as Shadow[] | undefined) ?? [];
          return (
            <Stack gap={2}>
              <Text fw={500}>{String(row.name)}</Text>
              {shadows.length > 0 && (
                <Badge color="orange" variant="light" title={shadows.map(shadowText).join("\n")}>
                  Shadowed
                </Badge>
              )}
            </Stack>
          );
        },
      },
      {
        key: "paths",
        header: "Paths",
        render: (row) => (
          <Stack gap={0}>
            {((row.paths as { type?: string; value: string }[]) ?? []).map((p) => (
              <Text key={`${p.type}${p.value}`} size="sm" ff="monospace">
                {PATH_MARK[p.type ?? "prefix"]}
                {p.value}
              </Text>
            ))}
          </Stack>
        ),
      },
      { key: "hosts", header: "Hosts", render: (row) => <Text size="sm">{list(row.hosts, "any")}</Text> },
      { key: "methods", header: "Methods", render: (row) => <Text size="sm">{list(row.methods, "any")}</Text> },
      { key: "service", header: "Service", sort: "service", render: (row) => String(row.service ?? "") },
      { key: "priority", header: "Priority", sort: "priority", render: (row) => String(row.priority ?? 0) },
      { key: "plugins", header: "Plugins", render: (row) => <PluginNames row={row} /> },
    ];
  if (kind === "services")
    return [
      name("Name"),
      { key: "upstream", header: "Upstream", sort: "upstream", render: (row) => String(row.upstream ?? "") },
      { key: "description", header: "Description", render: (row) => <Text size="sm" lineClamp={2}>{String(row.description ?? "")}</Text> },
      { key: "plugins", header: "Plugins", render: (row) => <PluginNames row={row} /> },
    ];
  if (kind === "upstreams")
    return [
      name("Name"),
      {
        key: "targets",
        header: "Targets",
        render: (row) => (
          <Stack gap={0}>
            {((row.targets as { host: string; port: number; weight?: number }[]) ?? []).map((t) => (
              <Text key={`${t.host}:${t.port}`} size="sm" ff="monospace">
                {t.host}:{t.port}
                {t.weight !== undefined && t.weight !== 100 ? ` (weight ${t.weight})` : ""}
              </Text>
            ))}
          </Stack>
        ),
      },
      { key: "load_balancing", header: "Load balancing", render: (row) => String(row.load_balancing ?? "") },
      { key: "scheme", header: "Scheme", render: (row) => String(row.scheme ?? "") },
      {
        key: "health",
        header: "Health checks",
        render: (row) => [row.active_health_check ? "active" : "", row.passive_health_check ? "passive" : ""].filter(Boolean).join(", ") || "none",
      },
    ];
  if (kind === "consumers")
    return [
      name("Username", "username"),
      { key: "credentials", header: "Credentials", render: (row) => list(((row.credentials as { type: string }[]) ?? []).map((c) => c.type), "none") },
      {
        key: "labels",
        header: "Labels",
        render: (row) => (
          <Text size="sm">
            {Object.entries((row.labels as Record<string, string>) ?? {})
              .map(([k, v]) => `${k}: ${v}`)
              .join(", ")}
          </Text>
        ),
      },
      { key: "plugins", header: "Plugins", render: (row) => <PluginNames row={row} /> },
    ];
  return [
    name("Name"),
    { key: "snis", header: "Names (SNI)", render: (row) => list(row.snis) },
    { key: "not_after", header: "Expires", sort: "not_after", render: (row) => String(row.not_after ?? "").slice(0, 10) },
  ];
}

async function deleteRow(path: Path, kind: Kind, row: Row) {
  const headers = row.revision !== undefined ? { "If-Match": `"${row.revision}"` } : {};
  await unwrap(api.DELETE(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/{id}/` as never, { params: { path: { ...path, id: row.id } }, headers } as never));
}

function Entities({ path, kind, canWrite }: { path: Path; kind: Kind; canWrite: boolean }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const entity = ENTITIES[kind];
  const phone = useMediaQuery("(max-width: 48em)");
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Row | null>(null);
  const [credentialsOf, setCredentialsOf] = useState<Row | null>(null);
  const [editing, setEditing] = useState<Row | null>(null);
  const [error, setError] = useState<string | null>(null);
  const label = (row: Row) => String(row[entity.nameField] ?? row.id);
  const remove = async () => {
    if (!deleting) return;
    try {
      await deleteRow(path, kind, deleting);
      setError(null);
    } catch (failed) {
      setError(errorMessage(failed));
    }
    setDeleting(null);
    await afterWrite(...published(path));
  };
  const actions: Column<Row> = {
    key: "actions",
    header: "",
    render: (row) => (
      <Group gap={4} wrap="nowrap">
        {kind !== "certificates" && (
          <Button size="xs" variant="subtle" onClick={() => setEditing(row)} aria-label={`Edit ${label(row)}`}>
            Edit
          </Button>
        )}
        {kind === "consumers" && (
          <Button size="xs" variant="subtle" onClick={() => setCredentialsOf(row)} aria-label={`Credentials of ${label(row)}`}>
            Credentials
          </Button>
        )}
        <Button size="xs" color="red" variant="subtle" onClick={() => setDeleting(row)} aria-label={`Delete ${label(row)}`}>
          Delete
        </Button>
      </Group>
    ),
  };
  const title = kind[0].toUpperCase() + kind.slice(1);
  return (
    <Stack>
      {canWrite && (
        <Group>
          <Button onClick={() => setCreating(true)}>New {entity.one}</Button>
        </Group>
      )}
      {error && <Alert color="red">{error}</Alert>}
      <ServerTable<Row>
        label={title}
        queryKey={[...keys.catalog(path), kind, "pages"]}
        fetchPage={(query) =>
          unwrap(api.GET(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/` as never, { params: { path, query } } as never)) as Promise<PageOf<Row>>
        }
        columns={canWrite ? [...columns(kind), actions] : columns(kind)}
        rowKey={(row) => row.id}
        rowName={label}
        defaultOrdering="id"
        searchPlaceholder={entity.search}
        empty={`No ${kind} yet.`}
        minWidth={kind === "routes" ? 900 : 640}
        bulk={
          canWrite
            ? {
                verb: "Delete",
                noun: kind,
                run: async (rows) => {
                  try {
                    for (const row of rows) await deleteRow(path, kind, row);
                  } finally {
                    await afterWrite(...published(path));
                  }
                },
              }
            : undefined
        }
      />
      <Modal opened={creating} onClose={() => setCreating(false)} title={`New ${entity.one}`} size="xl" fullScreen={phone}>
        {creating && <EntityForm path={path} kind={kind} onDone={() => setCreating(false)} />}
      </Modal>
      <Modal opened={editing !== null} onClose={() => setEditing(null)} title={`Edit ${editing ? label(editing) : ""}`} size="xl" fullScreen={phone}>
        {editing && <EntityForm path={path} kind={kind} initial={editing} onDone={() => setEditing(null)} />}
      </Modal>
      <Modal opened={credentialsOf !== null} onClose={() => setCredentialsOf(null)} title={`Credentials of ${credentialsOf ? label(credentialsOf) : ""}`} size="xl" fullScreen={phone}>
        {credentialsOf && <CredentialsPanel path={path} consumerId={credentialsOf.id} canWrite={canWrite} />}
      </Modal>
      <ConfirmDialog opened={deleting !== null} title="Delete" confirmLabel="Delete" onConfirm={remove} onCancel={() => setDeleting(null)}>
        <Text>Delete {deleting ? label(deleting) : ""}? The gateways stop serving it with the next snapshot.</Text>
      </ConfirmDialog>
    </Stack>
  );
}

/** Save and Cancel at the foot of a dialog, in sight however long the form (sticky). */
export function StickyFooter({ children }: { children: ReactNode }) {
  return (
    <Box pos="sticky" bottom={0} py="sm" mt="xs" style={{ zIndex: 2, background: "var(--mantine-color-body)", borderTop: "1px solid var(--mantine-color-default-border)" }}>
      <Group justify="end">{children}</Group>
    </Box>
  );
}

/** The form of one kind of entry, generated from its schema in the API's OpenAPI document. */
function EntityForm({ path, kind, onDone, initial }: { path: Path; kind: Kind; onDone: () => void; initial?: Row }) {
  const openapi = useOpenApi();
  const component = ENTITIES[kind].component;
  const schema = useMemo(() => {
    const schemas = openapi.data?.components?.schemas ?? {};
    const found = schemas[`${component}Request`] ?? schemas[component];
    return found ? resolveSchema(found, openapi.data) : null;
  }, [openapi.data, component]);
  if (openapi.isLoading) return <Loader aria-label="Loading the form" />;
  if (openapi.isError) return <Alert color="red">{errorMessage(openapi.error)}</Alert>;
  if (!schema) return <Alert color="red">The API describes no {ENTITIES[kind].one}.</Alert>;
  return <EntityFormBody path={path} kind={kind} schema={schema} initial={initial} onDone={onDone} />;
}

/** What a new entry's form starts with: a first row for each list that needs one (a path, a
 * target). */
function startValue(schema: Schema): Record<string, unknown> {
  const value: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    if ((schema.required ?? []).includes(name) && field.items?.properties && (field.minItems ?? 0) > 0) value[name] = [{}];
  }
  return value;
}

/** Creates an entry, or with `initial` edits it in place: PATCH with only the fields the user
 * changed, naming the revision the form was opened on (If-Match), so neither what the form does
 * not show nor a colleague's change made meanwhile is overwritten. */
function EntityFormBody({ path, kind, schema, onDone, initial }: { path: Path; kind: Kind; schema: Schema; onDone: () => void; initial?: Row }) {
  const queries = useQueryClient();
  const afterWrite = useAfterWrite(path.org_slug);
  const entity = ENTITIES[kind];
  const properties = schema.properties ?? {};
  const [opened] = useState<Record<string, unknown>>(() =>
    initial ? Object.fromEntries(Object.keys(properties).filter((name) => initial[name] !== undefined).map((name) => [name, initial[name]])) : startValue(schema),
  );
  const [value, setValue] = useState<Record<string, unknown>>(opened);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [pluginMessages, setPluginMessages] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [stale, setStale] = useState<string | null>(null);
  const [advanced, setAdvanced] = useState(false);
  const [saving, setSaving] = useState(false);

  const ui: Ui = { ...entity.ui };
  if (ui.service) ui.service = { ...ui.service, render: (p) => <Reference path={path} kind="services" {...p} /> };
  if (ui.upstream) ui.upstream = { ...ui.upstream, render: (p) => <Reference path={path} kind="upstreams" {...p} /> };
  if (entity.scope && properties.plugins) ui.plugins = { group: "plugins", render: (p) => <PluginEditor scope={entity.scope ?? ""} value={(p.value as Plugins) ?? {}} onChange={p.onChange} messages={pluginMessages} /> };
  const groupOf = (name: string) => ui[name]?.group ?? "advanced";
  const sections = GROUPS.map((group) => ({ ...group, fields: Object.keys(properties).filter((name) => groupOf(name) === group.key) })).filter((s) => s.fields.length > 0);
  const advancedFields = sections.find((s) => s.key === "advanced")?.fields ?? [];
  const advancedErrors = Object.keys(errors).some((p) => advancedFields.includes(p.split("/")[0]));

  /** The fields the user changed since the form opened; one emptied is sent as its empty value. */
  const changes = (): Record<string, unknown> => {
    if (kind === "certificates") return value; // a certificate is replaced whole, key and all
    const changed: Record<string, unknown> = {};
    for (const name of Object.keys(properties)) {
      if (!same(opened[name], value[name])) changed[name] = value[name] === undefined ? emptyValue(properties[name]) : value[name];
    }
    return changed;
  };
  // A consumer the developer portal keeps (an application's, saas/portal/enforcement.py): saving
  // it by hand asks first, as the portal rewrites it.
  const managed = kind === "consumers" && (initial?.labels as Record<string, string> | undefined)?.["managed-by"] === "portal";
  const [confirming, setConfirming] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (managed) setConfirming(true);
    else await save();
  };
  const save = async () => {
    const url = `/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/`;
    let failed: unknown;
    setSaving(true);
    if (initial) {
      const changed = changes();
      if (Object.keys(changed).length === 0) return onDone();
      const ifMatch = { "If-Match": `"${String(initial.revision ?? "")}"` };
      ({ error: failed } = await api.PATCH(`${url}{id}/` as never, { params: { path: { ...path, id: initial.id } }, headers: ifMatch, body: changed } as never));
    } else {
      ({ error: failed } = await api.POST(url as never, { params: { path }, body: value } as never));
    }
    setSaving(false);
    if ((failed as { current_revision?: number } | undefined)?.current_revision !== undefined) {
      setStale(errorMessage(failed));
      return;
    }
    if (failed) {
      const all = apiFieldErrors(failed);
      const beside = Object.fromEntries(Object.entries(all).filter(([p]) => p.split("/")[0] !== "plugins"));
      setErrors(beside);
      setPluginMessages(messagesAbout(failed, "plugins"));
      if (Object.keys(beside).some((p) => advancedFields.includes(p.split("/")[0]))) setAdvanced(true);
      // Messages beside their fields need no repeating; one about a field the form lacks does.
      const placed = Object.keys(all).length > 0 && Object.keys(all).every((p) => p.split("/")[0] in properties);
      setError(placed ? "Please correct the fields marked below." : errorMessage(failed));
      return;
    }
    await afterWrite(...published(path)); // a change publishes a version and is audited
    onDone();
  };
  const reload = async () => {
    await queries.invalidateQueries({ queryKey: keys.catalog(path) }); // nothing was written
    onDone();
  };
  const shadows = (initial?.shadowed_by as Shadow[] | undefined) ?? [];
  const part = (fields: string[]) => <SchemaForm schema={schema} value={value} onChange={setValue} errors={errors} ui={ui} fields={fields} />;
  return (
    <>
    <form onSubmit={submit} noValidate>
<Stack gap="md">
      {managed && (
        <Alert color="orange" title="Managed by the developer portal">
          The developer portal manages this consumer for an application: it rewrites its labels, credentials and plugins whenever the application, its subscriptions or its plan change, so
          edits made here are overwritten. Change the application in the Developer portal instead.
        </Alert>
      )}
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
      {error && (
        <Alert color="red" role="alert">
          {error}
        </Alert>
      )}
      {shadows.length > 0 && (
        <Alert color="orange" title="Shadowed by another route">
          {shadows.map((s) => (
            <Text key={s.path} size="sm">
              {shadowText(s)}
            </Text>
          ))}
        </Alert>
      )}
      {sections.map((section) =>
        section.key === "advanced" ? (
          <Stack key={section.key} gap="xs">
            <Group>
              <Button variant="subtle" size="compact-sm" px={0} aria-expanded={advanced || advancedErrors} onClick={() => setAdvanced(!advanced)}>
                {advanced || advancedErrors ? "▾" : "▸"} Advanced settings
              </Button>
            </Group>
            <Collapse in={advanced || advancedErrors}>{part(section.fields)}</Collapse>
          </Stack>
        ) : (
          <Stack key={section.key} gap="xs">
            {section.title && (
              <Title order={4} size="h5">
                {section.title}
              </Title>
            )}
            {part(section.fields)}
          </Stack>
        ),
      )}
      <StickyFooter>
        <Button variant="default" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit" loading={saving}>
          {initial ? "Save" : "Create"}
        </Button>
      </StickyFooter>
    </Stack>
</form>
      <ConfirmDialog
        opened={confirming}
        title="Save a consumer the portal manages?"
        confirmLabel="Save anyway"
        onConfirm={() => {
          setConfirming(false);
          void save();
        }}
        onCancel={() => setConfirming(false)}
      >
        <Text>The developer portal overwrites these edits the next time the application, its subscriptions or its plan change.</Text>
      </ConfirmDialog>
    </>
  );
}

/** A choice among the cluster's entries of a kind, by name (a route's service). */
function Reference({ path, kind, label, description, required, value, onChange, error }: CustomFieldProps & { path: Path; kind: Kind }) {
  const rows = useRows(path, kind);
  const names = (rows.data ?? []).map((row) => String(row.name));
  return (
    <Select
      label={label}
      description={description}
      required={required}
      searchable
      nothingFoundMessage={`No ${kind} yet`}
      data={names}
      value={(value as string) ?? null}
      error={error}
      onChange={(v) => onChange(v ?? undefined)}
    />
  );
}

type Plugins = Record<string, Record<string, unknown>>;

/** Plugins chosen from those the scope admits, each set through the form its JSON Schema
 * generates (titles and descriptions from it); the API's messages about a plugin show beside its
 * fields. */
export function PluginEditor({ scope, value, onChange, messages = [] }: { scope: string; value: Plugins; onChange: (v: Plugins) => void; messages?: string[] }) {
  const catalog = usePlugins();
  const available = (catalog.data ?? []).filter((p) => p.scopes.includes(scope));
  // Messages about no chosen plugin's fields (an unknown plugin, a wrong scope) go by the list.
  const unplaced = messages.filter((message) => !Object.keys(value).some((name) => isAboutPlugin(message, name)));
  return (
    <Stack gap="xs">
      <MultiSelect
        label="Plugins"
        description="Set here, a plugin overrides the same plugin set on the service or cluster."
        searchable
        data={available.map((p) => ({ value: p.name, label: p.name }))}
        value={Object.keys(value)}
        error={unplaced.join(" ") || undefined}
        onChange={(names) => onChange(Object.fromEntries(names.map((n) => [n, value[n] ?? {}])))}
      />
      {Object.keys(value).map((name) => {
        const plugin = available.find((p) => p.name === name);
        const errors = pluginFieldErrors(name, messages);
        return plugin ? (
          <Box key={name} p="sm" style={{ border: "1px solid var(--mantine-color-default-border)", borderRadius: "var(--mantine-radius-sm)" }}>
            <Stack gap={4}>
              <Text fw={600}>
                <Code>{name}</Code>
              </Text>
              <Text size="xs" c="dimmed">
                {plugin.description}
              </Text>
              {errors[""] && (
                <Text c="red" size="sm">
                  {errors[""]}
                </Text>
              )}
              <SchemaForm schema={resolveSchema(plugin.schema)} value={value[name] ?? {}} errors={Object.fromEntries(Object.entries(errors).filter(([k]) => k !== ""))} onChange={(config) => onChange({ ...value, [name]: config })} />
            </Stack>
          </Box>
        ) : null;
      })}
    </Stack>
  );
}
