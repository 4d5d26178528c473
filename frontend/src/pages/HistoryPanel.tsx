import { Alert, Badge, Box, Button, Group, Loader, Paper, Stack, Table, Text, Textarea, Title } from "@mantine/core";
import { useMediaQuery } from "@mantine/hooks";
import { useQuery } from "@tanstack/react-query";
import { useRef, useState } from "react";
import { api, errorMessage, unwrap } from "../api/client";
import { catalogKeys, keys, published, useAfterWrite } from "../api/queries";
import { type Column, type PageOf, ServerTable } from "../components/ServerTable";
import { ConfirmDialog } from "../components/ConfirmDialog";

type Path = { org_slug: string; cluster_id: string };
type Snapshot = { version: number; author: string; reason: string; created_at: string };
type Item = Record<string, unknown>;
type Section = { added: Item[]; removed: Item[]; changed: { name?: string; changes: Record<string, { old: unknown; new: unknown }> }[] };
type PlanItem = { action: "create" | "update" | "delete"; kind: string; name: string; fields?: string[] };

const SECTIONS = ["global_plugins", "upstreams", "services", "routes", "consumers", "certificates"];
const SINGULAR: Record<string, string> = { global_plugins: "global plugin", upstreams: "upstream", services: "service", routes: "route", consumers: "consumer", certificates: "certificate" };
const nameOf = (item: Item) => String(item.name ?? item.username ?? item.id);

/** One row of a side-by-side diff: a line on either side, or both. */
export type DiffRow = { left?: string; right?: string; kind: "same" | "changed" | "removed" | "added" };

/** Two texts' lines aligned side by side (longest common subsequence): lines kept face each
 * other, a removed line faces an added one where they replace each other. */
export function sideBySide(before: string, after: string): DiffRow[] {
  const a = before ? before.split("\n") : [];
  const b = after ? after.split("\n") : [];
  if (a.length * b.length > 1_000_000) {
    // Too long to align: each side as it is.
    return Array.from({ length: Math.max(a.length, b.length) }, (_, i) => ({ left: a[i], right: b[i], kind: a[i] === b[i] ? "same" : "changed" }));
  }
  const common: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--) common[i][j] = a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
  const rows: DiffRow[] = [];
  let removed: string[] = [];
  let added: string[] = [];
  const flush = () => {
    for (let k = 0; k < Math.max(removed.length, added.length); k++) {
      const left = removed[k];
      const right = added[k];
      rows.push({ left, right, kind: left !== undefined && right !== undefined ? "changed" : left !== undefined ? "removed" : "added" });
    }
    removed = [];
    added = [];
  };
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      flush();
      rows.push({ left: a[i], right: b[j], kind: "same" });
      i++;
      j++;
    } else if (j < b.length && (i >= a.length || common[i][j + 1] >= common[i + 1][j])) added.push(b[j++]);
    else removed.push(a[i++]);
  }
  flush();
  return rows;
}

const pretty = (value: unknown) => (value === undefined ? "" : JSON.stringify(value, null, 2));
const SHADE: Record<DiffRow["kind"], [string | undefined, string | undefined]> = {
  same: [undefined, undefined],
  changed: ["var(--mantine-color-red-light)", "var(--mantine-color-green-light)"],
  removed: ["var(--mantine-color-red-light)", undefined],
  added: [undefined, "var(--mantine-color-green-light)"],
};
const cell = { fontFamily: "var(--mantine-font-family-monospace)", fontSize: 12, whiteSpace: "pre-wrap" as const, wordBreak: "break-all" as const, verticalAlign: "top", padding: "1px 6px", width: "50%" };

/** An object before and after, side by side, line by line: nothing cut short. */
function ObjectDiff({ before, after, from, to }: { before: unknown; after: unknown; from: string; to: string }) {
  const rows = sideBySide(pretty(before), pretty(after));
  return (
    <Table withColumnBorders layout="fixed" aria-label={`${from} and ${to}`}>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>{from}</Table.Th>
          <Table.Th>{to}</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {rows.map((row, index) => (
          <Table.Tr key={index} data-diff={row.kind}>
            <Table.Td style={{ ...cell, background: SHADE[row.kind][0] }}>{row.left ?? ""}</Table.Td>
            <Table.Td style={{ ...cell, background: SHADE[row.kind][1] }}>{row.right ?? ""}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** What changed in `version`, object by object: each added, removed or changed object with its
 * fields before and after side by side. v1 is all additions. */
function VersionDiff({ path, version }: { path: Path; version: number }) {
  const diff = useQuery({
    queryKey: catalogKeys.diff(path, version),
    staleTime: Infinity, // a published version never changes
    queryFn: async (): Promise<Record<string, Section>> => {
      if (version === 1) {
        const first = (await unwrap(
          api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/snapshots/{version}/" as never, { params: { path: { ...path, version: "1" } } } as never),
        )) as { document?: Record<string, Item[]> };
        const document = first.document ?? {};
        return Object.fromEntries(SECTIONS.filter((s) => (document[s] ?? []).length).map((s) => [s, { added: document[s], removed: [], changed: [] }]));
      }
      const answer = (await unwrap(
        api.GET("/api/v1/orgs/{org_slug}/clusters/{cluster_id}/snapshots/diff/" as never, { params: { path, query: { from: String(version - 1), to: String(version) } } } as never),
      )) as { changes?: Record<string, Section> };
      return answer.changes ?? {};
    },
  });
  const from = version === 1 ? "before" : `v${version - 1}`;
  const to = `v${version}`;
  const changes = diff.data ?? {};
  const sections = SECTIONS.filter((s) => changes[s]).concat(Object.keys(changes).filter((s) => !SECTIONS.includes(s)));
  return (
    <Stack gap="sm">
      <Title order={4} size="h5">
        What changed in v{version}
      </Title>
      {diff.isLoading && <Loader aria-label="Loading the changes" />}
      {diff.isError && <Alert color="red">{errorMessage(diff.error)}</Alert>}
      {diff.isSuccess && sections.length === 0 && <Text c="dimmed">No catalog change (a republish of the same configuration).</Text>}
      {sections.map((section) => {
        const change = changes[section];
        const what = SINGULAR[section] ?? section;
        const objects: { key: string; state: "added" | "removed" | "changed"; name: string; before: unknown; after: unknown }[] = [
          ...change.removed.map((item) => ({ key: `r${nameOf(item)}`, state: "removed" as const, name: nameOf(item), before: item, after: undefined })),
          ...change.added.map((item) => ({ key: `a${nameOf(item)}`, state: "added" as const, name: nameOf(item), before: undefined, after: item })),
          ...change.changed.map((item) => ({
            key: `c${item.name}`,
            state: "changed" as const,
            name: String(item.name ?? ""),
            before: Object.fromEntries(Object.entries(item.changes).map(([field, values]) => [field, values.old])),
            after: Object.fromEntries(Object.entries(item.changes).map(([field, values]) => [field, values.new])),
          })),
        ];
        return objects.map((object) => (
          <Paper key={`${section}${object.key}`} withBorder p="xs" component="section" aria-label={`${what} ${object.name} ${object.state}`}>
            <Group gap="xs" mb={4}>
              <Badge color={object.state === "added" ? "teal" : object.state === "removed" ? "red" : "blue"} variant="light">
                {object.state}
              </Badge>
              <Text fw={600} size="sm">
                {what} {object.name}
              </Text>
              {object.state === "changed" && (
                <Text size="xs" c="dimmed">
                  changed fields only
                </Text>
              )}
            </Group>
            <Table.ScrollContainer minWidth={300}>
              <ObjectDiff before={object.before} after={object.after} from={from} to={to} />
            </Table.ScrollContainer>
          </Paper>
        ));
      })}
    </Stack>
  );
}

/** Snapshot history: the versions (searched, sorted and paged by the API) beside what the chosen
 * one changed, with rollback; declarative export and apply, the dry-run plan shown before
 * anything changes. */
export function HistoryPanel({ path, canWrite }: { path: Path; canWrite: boolean }) {
  const afterWrite = useAfterWrite(path.org_slug);
  const wide = useMediaQuery("(min-width: 62em)");
  const url = "/api/v1/orgs/{org_slug}/clusters/{cluster_id}/snapshots/";
  // The latest version: shown until the user picks another.
  const latest = useQuery({
    queryKey: [...keys.snapshots(path), "latest"],
    queryFn: async () => ((await unwrap(api.GET(url as never, { params: { path, query: { page_size: 1 } } } as never))) as PageOf<Snapshot>).results[0] ?? null,
  });
  const [picked, setPicked] = useState<number | null>(null);
  const [confirm, setConfirm] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const selected = picked ?? latest.data?.version ?? null;
  const diffBox = useRef<HTMLDivElement>(null);
  const pick = (version: number) => {
    setPicked(version);
    // Below the list on a narrow screen: brought into sight.
    if (!wide) setTimeout(() => diffBox.current?.scrollIntoView({ behavior: "smooth", block: "start" }), 0);
  };
  const rollBack = async () => {
    const { error: failed } = await api.POST(`${url}{version}/rollback/` as never, { params: { path: { ...path, version: String(confirm) } } } as never);
    setError(failed ? errorMessage(failed) : null);
    setConfirm(null);
    setPicked(null); // the new version is the latest: its changes are shown
    await afterWrite(...published(path));
  };
  const columns: Column<Snapshot>[] = [
    {
      key: "version",
      header: "Version",
      sort: "version",
      render: (row) => (
        // A button, so the keyboard reaches each version's changes too.
        <Button size="compact-sm" variant={selected === row.version ? "filled" : "light"} aria-label={`What changed in v${row.version}`} aria-pressed={selected === row.version} onClick={() => pick(row.version)}>
          v{row.version}
        </Button>
      ),
    },
    {
      key: "created_at",
      header: "Change",
      sort: "created_at",
      render: (row) => (
        <Stack gap={0}>
          <Text size="sm">{row.reason}</Text>
          <Text size="xs" c="dimmed">
            {row.author} · {new Date(row.created_at).toLocaleString()}
          </Text>
        </Stack>
      ),
    },
  ];
  if (canWrite)
    columns.push({
      key: "rollback",
      header: "",
      render: (row) =>
        row.version !== latest.data?.version && (
          <Button size="xs" variant="subtle" onClick={() => setConfirm(row.version)}>
            Roll back to v{row.version}
          </Button>
        ),
    });
  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      {latest.isSuccess && latest.data === null && <Text c="dimmed">Nothing published yet.</Text>}
      <Box style={{ display: "grid", gap: "var(--mantine-spacing-md)", gridTemplateColumns: wide ? "minmax(0, 5fr) minmax(0, 7fr)" : "minmax(0, 1fr)", alignItems: "start" }}>
        <ServerTable<Snapshot>
          label="Versions"
          queryKey={[...keys.snapshots(path), "pages"]}
          fetchPage={(query) => unwrap(api.GET(url as never, { params: { path, query } } as never)) as Promise<PageOf<Snapshot>>}
          columns={columns}
          rowKey={(row) => row.version}
          defaultOrdering="-version"
          searchPlaceholder="Author or change"
          minWidth={360}
          pageSize={20}
        />
        {/* Beside the list on a wide screen, in sight while scrolling it. */}
        <Box ref={diffBox} style={wide ? { position: "sticky", top: 70, maxHeight: "calc(100vh - 90px)", overflowY: "auto" } : undefined} aria-live="polite">
          {selected !== null && <VersionDiff path={path} version={selected} />}
        </Box>
      </Box>
      {canWrite && <Declarative path={path} />}
      <ConfirmDialog opened={confirm !== null} title="Roll back" confirmLabel="Roll back" onConfirm={rollBack} onCancel={() => setConfirm(null)}>
        <Text>Restore the catalog as it was at v{confirm}? This publishes a new version to every gateway.</Text>
      </ConfirmDialog>
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
