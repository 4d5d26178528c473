import { Alert, Badge, Button, Code, CopyButton, Group, Select, Stack, Tabs, Text, TextInput, Title } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { useQuery } from "@tanstack/react-query";
import { lazy, Suspense, useState } from "react";
import { useParams } from "react-router-dom";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { keys, useAfterWrite } from "../api/queries";
import type { components } from "../api/schema";
import { ago, day, startOfDay, when } from "../components/format";
import { type PageOf, ServerTable } from "../components/ServerTable";
import { useMe } from "../session";
import { ConfirmDialog } from "../components/ConfirmDialog";

// Single sign-on, for owners: loaded when its tab is first opened.
const OrganizationSso = lazy(() => import("./OrganizationSso").then((m) => ({ default: m.OrganizationSso })));
// The owner's "Require two-factor sign-in" switch, above the members.
const MfaRequirement = lazy(() => import("./MfaOrganization").then((m) => ({ default: m.MfaRequirement })));

const ROLES = ["owner", "admin", "developer", "viewer", "billing"];
const MANAGERS = ["owner", "admin"];
// The role ceilings a member may give a token: at most what their own role may do (tenants/roles.py:
// billing is beside the others, not below them).
const CEILINGS: Record<string, string[]> = {
  owner: ["owner", "admin", "developer", "viewer", "billing"],
  admin: ["admin", "developer", "viewer"],
  developer: ["developer", "viewer"],
  viewer: ["viewer"],
  billing: ["billing"],
};

type Member = components["schemas"]["MembershipOutput"];
type Invitation = { id: number; email: string; role: string; status: string; expires_at: string };
type Token = components["schemas"]["ApiTokenOutput"];
type Entry = components["schemas"]["AuditEntryOutput"];

function results<T>(data: unknown): T[] {
  return ((data as { results?: T[] } | undefined)?.results ?? []) as T[];
}

/** The organization: members and their roles, invitations, API tokens and the audit log. */
export function OrganizationPage() {
  const { slug = "" } = useParams();
  const me = useMe();
  const role = me.data?.organizations.find((o) => o.slug === slug)?.role ?? "";
  const manager = MANAGERS.includes(role);
  return (
    <Stack>
      <Title order={2}>Organization</Title>
      <Tabs defaultValue="members">
        <Tabs.List>
          <Tabs.Tab value="members">Members</Tabs.Tab>
          <Tabs.Tab value="tokens">API tokens</Tabs.Tab>
          {manager && <Tabs.Tab value="audit">Audit log</Tabs.Tab>}
          {role === "owner" && <Tabs.Tab value="sso">Single sign-on</Tabs.Tab>}
        </Tabs.List>
        <Tabs.Panel value="members" pt="md">
          {role === "owner" && (
            <Suspense fallback={null}>
              <MfaRequirement slug={slug} />
            </Suspense>
          )}
          <Members slug={slug} manager={manager} />
        </Tabs.Panel>
        <Tabs.Panel value="tokens" pt="md">
          <Tokens slug={slug} role={role} />
        </Tabs.Panel>
        {manager && (
          <Tabs.Panel value="audit" pt="md">
            <Audit slug={slug} />
          </Tabs.Panel>
        )}
        {role === "owner" && (
          <Tabs.Panel value="sso" pt="md">
            <Suspense fallback={null}>
              <OrganizationSso slug={slug} />
            </Suspense>
          </Tabs.Panel>
        )}
      </Tabs>
    </Stack>
  );
}

function Members({ slug, manager }: { slug: string; manager: boolean }) {
  const afterWrite = useAfterWrite(slug);
  const path = { org_slug: slug };
  const invitations = useQuery({
    queryKey: keys.invitations(slug),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/invitations/", { params: { path } })),
    enabled: manager,
  });
  const [email, setEmail] = useState("");
  const [inviteRole, setInviteRole] = useState<string | null>("developer");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [removing, setRemoving] = useState<Member | null>(null);
  const invite = async (event: React.FormEvent) => {
    event.preventDefault();
    const { error: failed } = await api.POST("/api/v1/orgs/{org_slug}/invitations/", {
      params: { path },
      body: { email, role: inviteRole } as never,
    });
    setErrors(failed ? fieldErrors(failed) : {});
    setError(failed ? errorMessage(failed) : null);
    if (!failed) {
      setEmail("");
      await afterWrite(keys.invitations(slug));
    }
  };
  const changeRole = async (member: Member, newRole: string | null) => {
    if (!newRole) return;
    const { error: failed } = await api.PATCH("/api/v1/orgs/{org_slug}/members/{id}/", {
      params: { path: { org_slug: slug, id: String(member.id) } as never },
      body: { role: newRole } as never,
    });
    setError(failed ? errorMessage(failed) : null);
    // A role is also in my own organizations (the session), when the member is me.
    await afterWrite(keys.members(slug), keys.me());
  };
  const remove = async () => {
    if (!removing) return;
    const { error: failed } = await api.DELETE("/api/v1/orgs/{org_slug}/members/{id}/", {
      params: { path: { org_slug: slug, id: String(removing.id) } as never },
    });
    setError(failed ? errorMessage(failed) : null);
    setRemoving(null);
    await afterWrite(keys.members(slug), keys.me());
  };
  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      <ServerTable<Member>
        label="Members"
        queryKey={keys.members(slug)}
        fetchPage={(query) => unwrap(api.GET("/api/v1/orgs/{org_slug}/members/", { params: { path, query: query as never } })) as Promise<PageOf<Member>>}
        rowKey={(member) => member.id}
        defaultOrdering="id"
        searchPlaceholder="Email or name"
        minWidth={640}
        columns={[
          { key: "email", header: "Email", sort: "email", render: (member) => member.email },
          { key: "name", header: "Name", sort: "name", render: (member) => member.name },
          {
            key: "role",
            header: "Role",
            sort: "role",
            render: (member) =>
              manager ? (
                <Select aria-label={`Role of ${member.email}`} data={ROLES} value={member.role} allowDeselect={false} w={140} onChange={(value) => changeRole(member, value)} />
              ) : (
                <Badge variant="light">{member.role}</Badge>
              ),
          },
          { key: "joined", header: "Joined", sort: "created_at", render: (member) => day(member.created_at) },
          ...(manager
            ? [
                {
                  key: "actions",
                  header: "Actions",
                  render: (member: Member) => (
                    <Button size="xs" color="red" variant="subtle" onClick={() => setRemoving(member)} aria-label={`Remove ${member.email}`}>
                      Remove
                    </Button>
                  ),
                },
              ]
            : []),
        ]}
      />
      {manager && (
        <>
          <Title order={4}>Invite</Title>
          <Group align="end" component="form" onSubmit={invite} wrap="wrap">
            <TextInput label="Email" type="email" required value={email} error={errors.email} onChange={(e) => setEmail(e.currentTarget.value)} />
            <Select label="Role" data={ROLES} value={inviteRole} error={errors.role} onChange={setInviteRole} allowDeselect={false} />
            <Button type="submit">Send invitation</Button>
          </Group>
          {results<Invitation>(invitations.data)
            .filter((i) => i.status === "pending")
            .map((i) => (
              <Text key={i.id} size="sm">
                {i.email} invited as {i.role}, until {new Date(i.expires_at).toLocaleDateString()}
              </Text>
            ))}
        </>
      )}
      <ConfirmDialog opened={removing !== null} title="Remove member" confirmLabel="Remove" onConfirm={remove} onCancel={() => setRemoving(null)}>
        <Text>Remove {removing?.email} from the organization? They lose access at once.</Text>
      </ConfirmDialog>
    </Stack>
  );
}

/** Tomorrow, as a date input holds a day: the first day an expiry may be. */
function tomorrow(): string {
  const date = new Date();
  date.setDate(date.getDate() + 1);
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, "0")}-${String(date.getDate()).padStart(2, "0")}`;
}

function Tokens({ slug, role }: { slug: string; role: string }) {
  const afterWrite = useAfterWrite(slug);
  const path = { org_slug: slug };
  const ceilings = CEILINGS[role] ?? ["viewer"];
  const least = role === "billing" ? "billing" : "viewer";
  const [name, setName] = useState("");
  const [ceiling, setCeiling] = useState<string | null>(least);
  const [expires, setExpires] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<Token | null>(null);
  const create = async (event: React.FormEvent) => {
    event.preventDefault();
    // The token works until the start of the chosen day, in the user's time zone.
    const body = { name, role_ceiling: ceiling ?? least, expires_at: expires ? startOfDay(expires) : null };
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/tokens/", { params: { path }, body: body as never });
    setErrors(failed ? fieldErrors(failed) : {});
    setError(failed ? errorMessage(failed) : null);
    if (!failed) {
      setSecret((data as unknown as { token: string }).token);
      setName("");
      setExpires("");
      await afterWrite(keys.tokens(slug));
    }
  };
  const revoke = async (tokens: Token[]) => {
    for (const token of tokens) {
      const { error: failed } = await api.DELETE("/api/v1/orgs/{org_slug}/tokens/{id}/", { params: { path: { org_slug: slug, id: String(token.id) } as never } });
      if (failed) throw failed;
    }
    await afterWrite(keys.tokens(slug));
  };
  const revokeOne = async () => {
    if (!revoking) return;
    try {
      await revoke([revoking]);
      setError(null);
    } catch (failed) {
      setError(errorMessage(failed));
    }
    setRevoking(null);
  };
  const now = Date.now();
  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      <Group align="start" component="form" onSubmit={create} wrap="wrap">
        <TextInput label="Token name" required value={name} error={errors.name} onChange={(e) => setName(e.currentTarget.value)} />
        <Select
          label="Role ceiling"
          description="The most it may do"
          data={ceilings}
          value={ceiling}
          error={errors.role_ceiling}
          onChange={setCeiling}
          allowDeselect={false}
          w={160}
        />
        <TextInput
          label="Expires on"
          description="Empty: until revoked"
          type="date"
          min={tomorrow()}
          value={expires}
          error={errors.expires_at}
          onChange={(e) => setExpires(e.currentTarget.value)}
        />
        <Button type="submit" mt={{ base: 0, xs: 42 }}>
          Create API token
        </Button>
      </Group>
      {secret && (
        <Alert color="blue" title="Your API token (shown once)">
          <Group wrap="nowrap" align="start">
            <Code style={{ flex: 1, minWidth: 0, wordBreak: "break-all" }}>{secret}</Code>
            <CopyButton value={secret}>
              {({ copied, copy }) => (
                <Button size="xs" onClick={copy} aria-label="Copy the API token">
                  {copied ? "Copied" : "Copy"}
                </Button>
              )}
            </CopyButton>
          </Group>
        </Alert>
      )}
      <ServerTable<Token>
        label="API tokens"
        queryKey={keys.tokens(slug)}
        fetchPage={(query) => unwrap(api.GET("/api/v1/orgs/{org_slug}/tokens/", { params: { path, query: query as never } })) as Promise<PageOf<Token>>}
        rowKey={(token) => token.id}
        rowName={(token) => `${token.name} (${token.prefix}…)`}
        defaultOrdering="-id"
        searchPlaceholder="Name, prefix or owner"
        minWidth={900}
        empty="No API tokens yet."
        bulk={{ verb: "Revoke", noun: "API tokens", run: revoke, selectable: (token) => !token.revoked_at }}
        columns={[
          { key: "name", header: "Name", sort: "name", render: (token) => token.name },
          { key: "prefix", header: "Prefix", render: (token) => <Code>{token.prefix}…</Code> },
          { key: "user", header: "Owner", sort: "user", render: (token) => token.user },
          { key: "ceiling", header: "Role ceiling", sort: "role_ceiling", render: (token) => <Badge variant="light">{token.role_ceiling}</Badge> },
          {
            key: "expires",
            header: "Expires",
            sort: "expires_at",
            render: (token) =>
              token.expires_at ? (
                <Text size="sm" c={new Date(token.expires_at).getTime() <= now ? "red" : undefined} title={when(token.expires_at)}>
                  {new Date(token.expires_at).getTime() <= now ? "expired " : ""}
                  {day(token.expires_at)}
                </Text>
              ) : (
                <Text size="sm" c="dimmed">
                  no expiry
                </Text>
              ),
          },
          { key: "used", header: "Last use", sort: "last_used_at", render: (token) => <Text size="sm">{token.last_used_at ? `used ${ago(token.last_used_at)}` : "never used"}</Text> },
          { key: "created", header: "Created", sort: "created_at", render: (token) => day(token.created_at) },
          {
            key: "actions",
            header: "Status",
            render: (token) =>
              token.revoked_at ? (
                <Badge color="gray">revoked</Badge>
              ) : (
                <Button size="xs" color="red" variant="subtle" onClick={() => setRevoking(token)} aria-label={`Revoke ${token.name} (${token.prefix}…)`}>
                  Revoke
                </Button>
              ),
          },
        ]}
      />
      <ConfirmDialog opened={revoking !== null} title={`Revoke ${revoking?.name ?? ""}?`} confirmLabel="Revoke" onConfirm={revokeOne} onCancel={() => setRevoking(null)}>
        <Text size="sm">Whatever uses {revoking?.prefix}… stops working at once. This cannot be undone.</Text>
      </ConfirmDialog>
    </Stack>
  );
}

/** The audit log, filtered by action, who did it and a range of days. */
function Audit({ slug }: { slug: string }) {
  const path = { org_slug: slug };
  const [action, setAction] = useState("");
  const [debouncedAction] = useDebouncedValue(action.trim(), 300);
  const [actor, setActor] = useState<string | null>(null);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  // Whom to filter by: the members (by email), as the API knows them.
  const members = useQuery({
    queryKey: [...keys.members(slug), "emails"],
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/members/", { params: { path, query: { page_size: 200, ordering: "email" } as never } })),
  });
  const emails = [...new Set(results<Member>(members.data).map((member) => member.email).filter(Boolean))];
  return (
    <ServerTable<Entry>
      label="Audit log"
      queryKey={keys.audit(slug)}
      fetchPage={(query) => unwrap(api.GET("/api/v1/orgs/{org_slug}/audit-log/", { params: { path, query: query as never } })) as Promise<PageOf<Entry>>}
      rowKey={(entry) => entry.id}
      defaultOrdering="-created_at"
      searchPlaceholder="Action, email or target"
      minWidth={760}
      empty="Nothing recorded yet."
      filters={{
        action: debouncedAction,
        actor,
        since: from ? startOfDay(from) : undefined,
        until: to ? startOfDay(to, 1) : undefined, // the whole last day
      }}
      filterControls={
        <>
          <TextInput label="Action" placeholder="route.* or member.role_change" value={action} onChange={(e) => setAction(e.currentTarget.value)} w={{ base: "100%", xs: 220 }} />
          <Select label="Who" placeholder="Anyone" data={emails} value={actor} onChange={setActor} searchable clearable w={{ base: "100%", xs: 220 }} />
          <TextInput label="From" type="date" value={from} max={to || undefined} onChange={(e) => setFrom(e.currentTarget.value)} w={{ base: "calc(50% - 6px)", xs: 160 }} />
          <TextInput label="To" type="date" value={to} min={from || undefined} onChange={(e) => setTo(e.currentTarget.value)} w={{ base: "calc(50% - 6px)", xs: 160 }} />
        </>
      }
      columns={[
        {
          key: "when",
          header: "When",
          sort: "created_at",
          render: (entry) => (
            <Text size="sm" style={{ whiteSpace: "nowrap" }}>
              {when(entry.created_at)}
            </Text>
          ),
        },
        {
          key: "who",
          header: "Who",
          sort: "actor",
          render: (entry) => (
            <Stack gap={0}>
              <Text size="sm">{entry.actor || "system"}</Text>
              {entry.api_token && (
                <Text size="xs" c="dimmed">
                  with {entry.api_token}…
                </Text>
              )}
            </Stack>
          ),
        },
        { key: "what", header: "What", sort: "action", render: (entry) => <Code>{entry.action}</Code> },
        {
          key: "on",
          header: "On",
          render: (entry) => (
            <Text size="sm">
              {entry.target_repr || `${entry.target_type} ${entry.target_id}`}
            </Text>
          ),
        },
      ]}
    />
  );
}
