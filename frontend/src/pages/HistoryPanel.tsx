import { Alert, Badge, Button, Code, Group, Loader, Modal, Stack, Table, Text, Textarea, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage, unwrap } from "../api/client";
import { keys, published, useAfterWrite } from "../api/queries";

type Path = { org_slug: string; cluster_id: string };
type Snapshot = { version: number; author: string; reason: string; created_at: string };
type Section = { added: Record<string, unknown>[]; removed: Record<string, unknown>[]; changed: { name: string; changes: Record<string, { old: unknown; new: unknown }> }[] };
type PlanItem = { action: "create" | "update" | "delete"; kind: string; name: string; fields?: string[] };

const nameOf = (item: Record<string, unknown>) => String(item.name ?? item.username ?? item.id);
const short = (value: unknown) => {
  const text = JSON.stringify(value);
  return text && text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/** Snapshot history with a readable diff and rollback; declarative export and apply, the dry-run
 * plan shown before anything changes. */
export function HistoryPanel({ path, canWrite }: { path: Path; canWrite: boolean }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const snapshots = useQuery({
    queryKey: keys.snapshots(path),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/snapshots/", { params: { path } })),
  });
  const rows = ((snapshots.data as { results?: Snapshot[] } | undefined)?.results ?? []) as Snapshot[];
  const [selected, setSelected] = useState<number | null>(null);
  const [confirm, setConfirm] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const diff = useQuery({
    queryKey: ["diff", path, selected],
    enabled: selected !== null && selected > 1,
    queryFn: () =>
      unwrap(
        api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/snapshots/diff/" as never, {
          params: { path, query: { from: String((selected ?? 2) - 1), to: String(selected) } },
        } as never),
      ),
  });
  const rollBack = async () => {
    const { error: failed } = await api.POST(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/snapshots/{version}/rollback/` as never, {
      params: { path: { ...path, version: String(confirm) } },
    } as never);
    setError(failed ? errorMessage(failed) : null);
    setConfirm(null);
    await afterWrite(...published(path));
  };
  const changes = ((diff.data as { changes?: Record<string, Section> } | undefined)?.changes ?? {}) as Record<string, Section>;
  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      {snapshots.isLoading && <Loader aria-label="Loading snapshots" />}
      {snapshots.isSuccess && rows.length === 0 && <Text c="dimmed">Nothing published yet.</Text>}
      <Table.ScrollContainer minWidth={560}><Table highlightOnHover>
        <Table.Tbody>
          {rows.map((row) => (
            <Table.Tr key={row.version} onClick={() => setSelected(row.version)} style={{ cursor: "pointer" }} bg={selected === row.version ? "var(--mantine-color-blue-light)" : undefined}>
              <Table.Td>
                {/* A button, so the keyboard reaches each version's changes too. */}
                <Button size="compact-sm" variant="light" aria-label={`What changed in v${row.version}`} onClick={(e) => { e.stopPropagation(); setSelected(row.version); }}>
                  v{row.version}
                </Button>
              </Table.Td>
              <Table.Td>{row.reason}</Table.Td>
              <Table.Td>{row.author}</Table.Td>
              <Table.Td>{new Date(row.created_at).toLocaleString()}</Table.Td>
              <Table.Td>
                {canWrite && row.version !== rows[0]?.version && (
                  <Button size="xs" variant="subtle" onClick={(e) => { e.stopPropagation(); setConfirm(row.version); }}>
                    Roll back to v{row.version}
                  </Button>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table></Table.ScrollContainer>
      {selected !== null && (
        <Stack gap="xs">
          <Title order={5}>What changed in v{selected}</Title>
          {selected === 1 && <Text c="dimmed">The first version.</Text>}
          {diff.isSuccess && Object.keys(changes).length === 0 && selected > 1 && <Text c="dimmed">No catalog change.</Text>}
          {Object.entries(changes).map(([section, change]) => (
            <Stack key={section} gap={2}>
              <Text fw={600}>{section}</Text>
              {change.added.map((item) => <Text key={`a${nameOf(item)}`} c="teal">+ {nameOf(item)}</Text>)}
              {change.removed.map((item) => <Text key={`r${nameOf(item)}`} c="red">− {nameOf(item)}</Text>)}
              {change.changed.map((item) => (
                <Stack key={`c${item.name}`} gap={0}>
                  <Text>~ {item.name}</Text>
                  {Object.entries(item.changes).map(([field, values]) => (
                    <Text key={field} size="sm" ml="md">
                      {field}: <Code>{short(values.old)}</Code> → <Code>{short(values.new)}</Code>
                    </Text>
                  ))}
                </Stack>
              ))}
            </Stack>
          ))}
        </Stack>
      )}
      {canWrite && <Declarative path={path} />}
      <Modal opened={confirm !== null} onClose={() => setConfirm(null)} title="Roll back">
        <Stack>
          <Text>Restore the catalog as it was at v{confirm}? This publishes a new version to every gateway.</Text>
          <Group justify="end">
            <Button variant="default" onClick={() => setConfirm(null)}>
              Cancel
            </Button>
            <Button color="red" onClick={rollBack}>
              Roll back
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}

function Declarative({ path }: { path: Path }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const [text, setText] = useState("");
  const [plan, setPlan] = useState<PlanItem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const exportConfig = async () => {
    const data = await unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/config/" as never, { params: { path, query: { format: "json" } } } as never));
    setText(JSON.stringify(data, null, 2));
    setPlan(null);
  };
  const submit = async (dryRun: boolean) => {
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      setError("The document is not valid JSON.");
      return;
    }
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/config/" as never, {
      params: { path, query: { dry_run: String(dryRun) } },
      body: document,
    } as never);
    if (failed) {
      setError(errorMessage(failed));
      return;
    }
    setError(null);
    setPlan(((data as { plan?: PlanItem[] }).plan ?? []) as PlanItem[]);
    if (!dryRun) {
      setPlan(null);
      await afterWrite(...published(path));
    }
  };
  return (
    <Stack>
      <Title order={4}>Declarative configuration</Title>
      <Group>
        <Button variant="light" onClick={exportConfig}>
          Export
        </Button>
      </Group>
      <Textarea label="Document (JSON)" autosize minRows={6} maxRows={20} value={text} onChange={(e) => { setText(e.currentTarget.value); setPlan(null); }} />
      {error && <Alert color="red">{error}</Alert>}
      <Group>
        <Button variant="default" onClick={() => submit(true)} disabled={!text}>
          Preview changes
        </Button>
        <Button onClick={() => submit(false)} disabled={plan === null || plan.length === 0}>
          Apply
        </Button>
      </Group>
      {plan !== null && plan.length === 0 && <Text c="dimmed">Nothing would change.</Text>}
      {plan !== null &&
        plan.map((item) => (
          <Text key={`${item.action}${item.kind}${item.name}`} size="sm">
            <Badge color={item.action === "create" ? "teal" : item.action === "delete" ? "red" : "blue"} mr="xs">
              {item.action}
            </Badge>
            {item.kind} {item.name}
            {item.fields ? `: ${item.fields.join(", ")}` : ""}
          </Text>
        ))}
    </Stack>
  );
}
