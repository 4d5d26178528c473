import { Alert, Button, Code, Group, Loader, Modal, Select, Stack, Table, Text } from "@mantine/core";
import { useMediaQuery } from "@mantine/hooks";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage, messagesAbout, unwrap } from "../api/client";
import { catalogKeys, published, useAfterWrite } from "../api/queries";
import { type PluginInfo, StickyFooter, usePlugins } from "./CatalogPanel";
import { humanize, pluginFieldErrors, resolveSchema, SchemaForm, type Schema } from "./SchemaForm";
import { ConfirmDialog } from "../components/ConfirmDialog";

type Path = { org_slug: string; cluster_id: string };
type GlobalPlugin = { name: string; config: Record<string, unknown>; revision: number };
const URL = "/api/v1/orgs/{org_slug}/clusters/{cluster_id}/plugins/";

function show(value: unknown): string {
  if (Array.isArray(value)) return value.map(show).join(", ");
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (value && typeof value === "object")
    return Object.entries(value)
      .map(([k, v]) => `${k}: ${show(v)}`)
      .join("; ");
  return String(value);
}

/** A plugin's settings as people read them: each by its title in the plugin's schema, in the
 * schema's order (the database keeps a config's keys in an order of its own). */
export function settingsText(config: Record<string, unknown>, schema?: Schema): string {
  const order = Object.keys(schema?.properties ?? {});
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  const entries = Object.entries(config ?? {}).sort(([a], [b]) => rank(a) - rank(b));
  if (entries.length === 0) return "defaults";
  return entries.map(([name, value]) => `${schema?.properties?.[name]?.title ?? humanize(name)}: ${show(value)}`).join(" · ");
}

/** Plugins for the whole cluster (the least specific scope): listed with what they do and their
 * settings, added, edited through the form their JSON Schema generates (the whole config, as the
 * form holds it, naming the revision it was opened on), and removed with confirmation. */
export function GlobalPluginsPanel({ path, canWrite }: { path: Path; canWrite: boolean }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const phone = useMediaQuery("(max-width: 48em)");
  const list = useQuery({
    queryKey: catalogKeys.globalPlugins(path),
    queryFn: async () => (await unwrap(api.GET(URL as never, { params: { path } } as never))) as Record<string, Record<string, unknown>>,
  });
  const catalog = usePlugins();
  const [editing, setEditing] = useState<GlobalPlugin | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const globalOnes = (catalog.data ?? []).filter((p) => p.scopes.includes("global"));
  const info = (name: string) => globalOnes.find((p) => p.name === name);
  const names = Object.keys(list.data ?? {});
  const open = async (name: string) => {
    try {
      setEditing((await unwrap(api.GET(`${URL}{name}/` as never, { params: { path: { ...path, name } } } as never))) as GlobalPlugin);
    } catch (failed) {
      setError(errorMessage(failed));
    }
  };
  const remove = async () => {
    if (!removing) return;
    const { error: failed } = await api.DELETE(`${URL}{name}/` as never, { params: { path: { ...path, name: removing } } } as never);
    setError(failed ? errorMessage(failed) : null);
    setRemoving(null);
    await afterWrite(...published(path));
  };
  return (
    <Stack>
      <Text size="sm" c="dimmed">
        Plugins set here run for every route of the cluster. The same plugin set on a service, route or consumer replaces this one for its requests.
      </Text>
      {error && <Alert color="red">{error}</Alert>}
      {canWrite && (
        <Group align="end">
          <Select
            label="Add a plugin to the whole cluster"
            placeholder="Choose a plugin"
            searchable
            data={globalOnes.filter((p) => !names.includes(p.name)).map((p) => ({ value: p.name, label: `${p.name}: ${p.description}` }))}
            value={null}
            onChange={(name) => name && setEditing({ name, config: {}, revision: 0 })}
            w={{ base: "100%", sm: 480 }}
          />
        </Group>
      )}
      {list.isLoading && <Loader aria-label="Loading global plugins" />}
      {list.isError && <Alert color="red">{errorMessage(list.error)}</Alert>}
      {list.isSuccess && names.length === 0 && <Text c="dimmed">No global plugins yet.</Text>}
      {names.length > 0 && (
        <Table.ScrollContainer minWidth={600}>
          <Table striped aria-label="Global plugins">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Plugin</Table.Th>
                <Table.Th>What it does</Table.Th>
                <Table.Th>Settings</Table.Th>
                {canWrite && <Table.Th />}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {names.map((name) => (
                <Table.Tr key={name}>
                  <Table.Td>
                    <Code>{name}</Code>
                  </Table.Td>
                  <Table.Td>
                    <Text size="sm">{info(name)?.description ?? ""}</Text>
                  </Table.Td>
                  <Table.Td>
                    <Text size="sm">{settingsText(list.data?.[name] ?? {}, info(name)?.schema)}</Text>
                  </Table.Td>
                  {canWrite && (
                    <Table.Td>
                      <Group gap={4} wrap="nowrap">
                        <Button size="xs" variant="subtle" onClick={() => open(name)} aria-label={`Edit ${name}`}>
                          Edit
                        </Button>
                        <Button size="xs" variant="subtle" color="red" onClick={() => setRemoving(name)} aria-label={`Remove ${name}`}>
                          Remove
                        </Button>
                      </Group>
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      <Modal opened={editing !== null} onClose={() => setEditing(null)} title={editing ? `Global ${editing.name}` : ""} size="lg" fullScreen={phone}>
        {editing && <GlobalPluginForm path={path} plugin={editing} info={info(editing.name)} onDone={() => setEditing(null)} />}
      </Modal>
      <ConfirmDialog opened={removing !== null} title="Remove a global plugin" confirmLabel="Remove" onConfirm={remove} onCancel={() => setRemoving(null)}>
        <Text>Remove {removing} from the whole cluster? Routes keep their own settings of it.</Text>
      </ConfirmDialog>
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
    const { error: failed } = await api.PUT(`${URL}{name}/` as never, { params: { path: { ...path, name: plugin.name } }, headers, body: config } as never);
    if (failed) {
      setMessages(messagesAbout(failed, "config").concat(messagesAbout(failed, "plugins")));
      setError(errorMessage(failed));
      return;
    }
    await afterWrite(...published(path));
    onDone();
  };
  const errors = pluginFieldErrors(plugin.name, messages);
  return (
    <form onSubmit={save} noValidate>
<Stack gap="md">
      {error && (
        <Alert color="red" role="alert">
          {error}
        </Alert>
      )}
      {info && <Text size="sm" c="dimmed">{info.description}</Text>}
      {info && <SchemaForm schema={resolveSchema(info.schema)} value={config} errors={Object.fromEntries(Object.entries(errors).filter(([k]) => k !== ""))} onChange={setConfig} />}
      <StickyFooter>
        <Button variant="default" onClick={onDone}>
          Cancel
        </Button>
        <Button type="submit">Save</Button>
      </StickyFooter>
    </Stack>
</form>
  );
}
