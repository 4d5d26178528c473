import { Alert, Button, Code, Group, Loader, Modal, MultiSelect, Select, Stack, Table, Tabs, Text, TextInput, Textarea } from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { SchemaForm, type Schema } from "./SchemaForm";

type Path = { org_slug: string; cluster_id: string };
type Row = Record<string, unknown> & { id: number; name?: string; username?: string };
type Kind = "routes" | "services" | "upstreams" | "consumers";
type PluginInfo = { name: string; description: string; scopes: string[]; schema: Schema };

const SCOPE: Record<Kind, string> = { routes: "route", services: "service", upstreams: "", consumers: "consumer" };
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

function useRows(path: Path, kind: Kind) {
  return useQuery({
    queryKey: ["catalog", path, kind],
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
        {(["routes", "services", "upstreams", "consumers"] as Kind[]).map((kind) => (
          <Tabs.Tab key={kind} value={kind}>
            {kind[0].toUpperCase() + kind.slice(1)}
          </Tabs.Tab>
        ))}
      </Tabs.List>
      {(["routes", "services", "upstreams", "consumers"] as Kind[]).map((kind) => (
        <Tabs.Panel key={kind} value={kind} pt="md">
          <Entities path={path} kind={kind} canWrite={canWrite} />
        </Tabs.Panel>
      ))}
    </Tabs>
  );
}

function summary(kind: Kind, row: Row): string {
  if (kind === "routes") return `${((row.paths as { value: string }[]) ?? []).map((p) => p.value).join(", ")} → ${row.service}`;
  if (kind === "services") return `→ ${row.upstream}`;
  if (kind === "upstreams") return ((row.targets as { host: string; port: number }[]) ?? []).map((t) => `${t.host}:${t.port}`).join(", ");
  return "";
}

function Entities({ path, kind, canWrite }: { path: Path; kind: Kind; canWrite: boolean }) {
  const queries = useQueryClient();
  const rows = useRows(path, kind);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<Row | null>(null);
  const [error, setError] = useState<string | null>(null);
  const label = (row: Row) => String(row.name ?? row.username ?? row.id);
  const remove = async () => {
    if (!deleting) return;
    const { error: failed } = await api.DELETE(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/{id}/` as never, {
      params: { path: { ...path, id: deleting.id } },
    } as never);
    setError(failed ? errorMessage(failed) : null);
    setDeleting(null);
    await queries.invalidateQueries({ queryKey: ["catalog", path] });
    await queries.invalidateQueries({ queryKey: ["snapshots", path] });
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
        <Table striped>
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
                  {canWrite && (
                    <Button size="xs" color="red" variant="subtle" onClick={() => setDeleting(row)}>
                      Delete
                    </Button>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      )}
      <Modal opened={creating} onClose={() => setCreating(false)} title={`New ${kind.slice(0, -1)}`} size="lg">
        <CreateForm path={path} kind={kind} onDone={() => setCreating(false)} />
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

function CreateForm({ path, kind, onDone }: { path: Path; kind: Kind; onDone: () => void }) {
  const queries = useQueryClient();
  const services = useRows(path, "services");
  const upstreams = useRows(path, "upstreams");
  const [name, setName] = useState("");
  const [parent, setParent] = useState<string | null>(null);
  const [paths, setPaths] = useState("/");
  const [methods, setMethods] = useState<string[]>([]);
  const [targets, setTargets] = useState("");
  const [plugins, setPlugins] = useState<Record<string, Record<string, unknown>>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const body = (): Record<string, unknown> => {
    if (kind === "upstreams") {
      return {
        name,
        targets: targets
          .split(/[\s,]+/)
          .filter(Boolean)
          .map((t) => ({ host: t.split(":")[0], port: Number(t.split(":")[1] ?? 80) })),
      };
    }
    if (kind === "services") return { name, upstream: parent, plugins };
    if (kind === "routes") return { name, service: parent, paths: paths.split(/[\s,]+/).filter(Boolean).map((value) => ({ value })), methods, plugins };
    return { username: name, plugins };
  };
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    const { error: failed } = await api.POST(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/` as never, { params: { path }, body: body() } as never);
    if (failed) {
      setErrors(fieldErrors(failed));
      setError(errorMessage(failed));
      return;
    }
    await queries.invalidateQueries({ queryKey: ["catalog", path] });
    await queries.invalidateQueries({ queryKey: ["snapshots", path] });  // a change publishes a version
    onDone();
  };
  const nameField = kind === "consumers" ? "username" : "name";
  return (
    <Stack component="form" onSubmit={submit}>
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
          <TextInput label="Paths" description="Path prefixes, comma-separated" required value={paths} error={errors.paths} onChange={(e) => setPaths(e.currentTarget.value)} />
          <MultiSelect label="Methods" description="None: every method" data={METHODS} value={methods} onChange={setMethods} />
        </>
      )}
      {SCOPE[kind] && <PluginEditor scope={SCOPE[kind]} value={plugins} onChange={setPlugins} error={errors.plugins} />}
      <Button type="submit">Create</Button>
    </Stack>
  );
}

function PluginEditor({ scope, value, onChange, error }: { scope: string; value: Record<string, Record<string, unknown>>; onChange: (v: Record<string, Record<string, unknown>>) => void; error?: string }) {
  const catalog = useQuery({
    queryKey: ["plugins"],
    queryFn: async () => ((await unwrap(api.GET("/api/v1/plugins/"))) as unknown as { plugins: PluginInfo[] }).plugins,
  });
  const available = (catalog.data ?? []).filter((p) => p.scopes.includes(scope));
  return (
    <Stack gap="xs">
      <MultiSelect
        label="Plugins"
        data={available.map((p) => ({ value: p.name, label: p.name }))}
        value={Object.keys(value)}
        error={error}
        onChange={(names) => onChange(Object.fromEntries(names.map((n) => [n, value[n] ?? {}])))}
      />
      {Object.keys(value).map((name) => {
        const plugin = available.find((p) => p.name === name);
        return plugin ? (
          <Stack key={name} gap={4}>
            <Text fw={600}>{name}</Text>
            <Text size="xs" c="dimmed">
              {plugin.description}
            </Text>
            <SchemaForm schema={plugin.schema} value={value[name]} onChange={(config) => onChange({ ...value, [name]: config })} />
          </Stack>
        ) : null;
      })}
    </Stack>
  );
}
