import { Alert, Badge, Button, Code, CopyButton, Group, Loader, Modal, Select, Stack, Table, Tabs, Text, TextInput, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useParams } from "react-router-dom";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { keys, useAfterWrite } from "../api/queries";
import { useMe } from "../session";

const ROLES = ["owner", "admin", "developer", "viewer", "billing"];
const MANAGERS = ["owner", "admin"];

type Member = { id: number; user: { email: string; name: string }; role: string; created_at: string };
type Invitation = { id: number; email: string; role: string; status: string; expires_at: string };
type Token = { id: number; name: string; prefix: string; role_ceiling: string | null; created_at: string; last_used_at: string | null; revoked_at: string | null };
type Entry = { id: number; created_at: string; actor: string; action: string; target_type: string; target_repr: string };

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
        </Tabs.List>
        <Tabs.Panel value="members" pt="md">
          <Members slug={slug} manager={manager} />
        </Tabs.Panel>
        <Tabs.Panel value="tokens" pt="md">
          <Tokens slug={slug} />
        </Tabs.Panel>
        {manager && (
          <Tabs.Panel value="audit" pt="md">
            <Audit slug={slug} />
          </Tabs.Panel>
        )}
      </Tabs>
    </Stack>
  );
}

function Members({ slug, manager }: { slug: string; manager: boolean }) {
  const afterWrite = useAfterWrite(slug);
  const path = { org_slug: slug };
  const members = useQuery({ queryKey: keys.members(slug), queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/members/", { params: { path } })) });
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
  if (members.isLoading) return <Loader aria-label="Loading members" />;
  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      <Table.ScrollContainer minWidth={560}><Table>
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Member</Table.Th>
            <Table.Th>Role</Table.Th>
            <Table.Th />
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {results<Member>(members.data).map((member) => (
            <Table.Tr key={member.id}>
              <Table.Td>{member.user.name || member.user.email}</Table.Td>
              <Table.Td>
                {manager ? (
                  <Select aria-label={`Role of ${member.user.email}`} data={ROLES} value={member.role} onChange={(value) => changeRole(member, value)} />
                ) : (
                  <Badge variant="light">{member.role}</Badge>
                )}
              </Table.Td>
              <Table.Td>
                {manager && (
                  <Button size="xs" color="red" variant="subtle" onClick={() => setRemoving(member)}>
                    Remove
                  </Button>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table></Table.ScrollContainer>
      {manager && (
        <>
          <Title order={4}>Invite</Title>
          <Group align="end" component="form" onSubmit={invite}>
            <TextInput label="Email" type="email" required value={email} error={errors.email} onChange={(e) => setEmail(e.currentTarget.value)} />
            <Select label="Role" data={ROLES} value={inviteRole} error={errors.role} onChange={setInviteRole} />
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
      <Modal opened={removing !== null} onClose={() => setRemoving(null)} title="Remove member">
        <Stack>
          <Text>Remove {removing?.user.email} from the organization? They lose access at once.</Text>
          <Group justify="end">
            <Button variant="default" onClick={() => setRemoving(null)}>
              Cancel
            </Button>
            <Button color="red" onClick={remove}>
              Remove
            </Button>
          </Group>
        </Stack>
      </Modal>
    </Stack>
  );
}

function Tokens({ slug }: { slug: string }) {
  const afterWrite = useAfterWrite(slug);
  const path = { org_slug: slug };
  const tokens = useQuery({ queryKey: keys.tokens(slug), queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/tokens/", { params: { path } })) });
  const [name, setName] = useState("");
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const create = async (event: React.FormEvent) => {
    event.preventDefault();
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/tokens/", { params: { path }, body: { name } as never });
    setError(failed ? errorMessage(failed) : null);
    if (!failed) {
      setSecret((data as unknown as { token: string }).token);
      setName("");
      await afterWrite(keys.tokens(slug));
    }
  };
  const revoke = async (token: Token) => {
    if (!window.confirm(`Revoke the token ${token.name}? Whatever uses it stops working.`)) return;
    await api.DELETE("/api/v1/orgs/{org_slug}/tokens/{id}/", { params: { path: { org_slug: slug, id: String(token.id) } as never } });
    await afterWrite(keys.tokens(slug));
  };
  return (
    <Stack>
      {error && <Alert color="red">{error}</Alert>}
      <Group align="end" component="form" onSubmit={create}>
        <TextInput label="Token name" required value={name} onChange={(e) => setName(e.currentTarget.value)} />
        <Button type="submit">Create API token</Button>
      </Group>
      {secret && (
        <Alert color="blue" title="Your API token (shown once)">
          <Group>
            <Code>{secret}</Code>
            <CopyButton value={secret}>{({ copied, copy }) => <Button size="xs" onClick={copy}>{copied ? "Copied" : "Copy"}</Button>}</CopyButton>
          </Group>
        </Alert>
      )}
      <Table.ScrollContainer minWidth={560}><Table>
        <Table.Tbody>
          {results<Token>(tokens.data).map((token) => (
            <Table.Tr key={token.id}>
              <Table.Td>{token.name}</Table.Td>
              <Table.Td>
                <Code>{token.prefix}…</Code>
              </Table.Td>
              <Table.Td>{token.last_used_at ? `used ${new Date(token.last_used_at).toLocaleString()}` : "never used"}</Table.Td>
              <Table.Td>
                {token.revoked_at ? (
                  <Badge color="gray">revoked</Badge>
                ) : (
                  <Button size="xs" color="red" variant="subtle" onClick={() => revoke(token)}>
                    Revoke
                  </Button>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table></Table.ScrollContainer>
    </Stack>
  );
}

function Audit({ slug }: { slug: string }) {
  const entries = useQuery({
    queryKey: keys.audit(slug),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/audit-log/", { params: { path: { org_slug: slug } } })),
  });
  if (entries.isLoading) return <Loader aria-label="Loading the audit log" />;
  if (entries.isError) return <Alert color="red">{errorMessage(entries.error)}</Alert>;
  return (
    <Table.ScrollContainer minWidth={560}><Table striped>
      <Table.Thead>
        <Table.Tr>
          <Table.Th>When</Table.Th>
          <Table.Th>Who</Table.Th>
          <Table.Th>What</Table.Th>
          <Table.Th>On</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {results<Entry>(entries.data).map((entry) => (
          <Table.Tr key={entry.id}>
            <Table.Td>{new Date(entry.created_at).toLocaleString()}</Table.Td>
            <Table.Td>{entry.actor}</Table.Td>
            <Table.Td>
              <Code>{entry.action}</Code>
            </Table.Td>
            <Table.Td>{entry.target_repr}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table></Table.ScrollContainer>
  );
}
