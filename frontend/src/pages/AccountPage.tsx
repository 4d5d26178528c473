// The signed-in person's account: address (verified or not), password and email changes,
// two-factor sign-in, and the sessions signed in, each of which can be ended. Reached from the
// user menu (App.tsx).
import { Alert, Badge, Button, Group, Paper, PasswordInput, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import type { components } from "../api/schema";
import { ago, when } from "../components/format";
import { ACCOUNT_KEY, useAccount } from "./AccountBanner";
import { MfaEnrolment, RecoveryCodes } from "./MfaSetup";
import { MFA_KEY, useMfaStatus } from "./MfaStatus";

type Session = components["schemas"]["SessionOutput"];
const SESSIONS_KEY = ["sessions"];

function Section({ id, title, children }: { id: string; title: string; children: React.ReactNode }) {
  return (
    <Paper withBorder p="md" component="section" aria-labelledby={id}>
      <Stack gap="sm">
        <Title order={3} id={id}>
          {title}
        </Title>
        {children}
      </Stack>
    </Paper>
  );
}

type Outcome = { ok: boolean; text: string; errors: Record<string, string> } | null;

function outcome(data: { detail: string } | undefined, error: unknown): Outcome {
  if (error) return { ok: false, text: errorMessage(error), errors: fieldErrors(error) };
  return data ? { ok: true, text: data.detail, errors: {} } : null;
}

function Said({ result }: { result: Outcome }) {
  if (!result) return null;
  return (
    <Alert color={result.ok ? "green" : "red"}>
      {result.text}
    </Alert>
  );
}

export function AccountPage() {
  return (
    <Stack maw={760}>
      <Title order={2}>Account</Title>
      <Address />
      <ChangePassword />
      <ChangeEmail />
      <TwoFactor />
      <Sessions />
    </Stack>
  );
}

function Address() {
  const account = useAccount();
  const data = account.data;
  return (
    <Section id="account-email" title="Email address">
      {data && (
        <Group gap="xs">
          <Text fw={500}>{data.email}</Text>
          {data.email_verified ? <Badge color="green">Verified</Badge> : <Badge color="yellow">Not verified</Badge>}
        </Group>
      )}
      {data?.pending_email && (
        <Text size="sm" c="dimmed">
          A change to {data.pending_email} waits for the link sent there to be opened.
        </Text>
      )}
    </Section>
  );
}

function ChangePassword() {
  const queries = useQueryClient();
  const [form, setForm] = useState({ current_password: "", new_password: "" });
  const [result, setResult] = useState<Outcome>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error } = await api.POST("/api/v1/auth/password/", { body: form });
    setBusy(false);
    setResult(outcome(data, error));
    if (data) {
      setForm({ current_password: "", new_password: "" });
      await queries.invalidateQueries({ queryKey: SESSIONS_KEY });
    }
  };
  return (
    <Section id="account-password" title="Change password">
      <Stack gap="sm" component="form" onSubmit={submit}>
        <Said result={result} />
        <PasswordInput
          label="Current password"
          required
          autoComplete="current-password"
          value={form.current_password}
          error={result?.errors.current_password}
          onChange={(e) => setForm({ ...form, current_password: e.currentTarget.value })}
        />
        <PasswordInput
          label="New password"
          required
          autoComplete="new-password"
          value={form.new_password}
          error={result?.errors.new_password}
          onChange={(e) => setForm({ ...form, new_password: e.currentTarget.value })}
        />
        <Text size="xs" c="dimmed">
          Every other session is signed out; this one goes on.
        </Text>
        <Group>
          <Button type="submit" loading={busy}>
            Change password
          </Button>
        </Group>
      </Stack>
    </Section>
  );
}

function ChangeEmail() {
  const queries = useQueryClient();
  const [form, setForm] = useState({ email: "", password: "" });
  const [result, setResult] = useState<Outcome>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error } = await api.POST("/api/v1/auth/email/", { body: form });
    setBusy(false);
    setResult(outcome(data, error));
    if (data) {
      setForm({ email: "", password: "" });
      await queries.invalidateQueries({ queryKey: ACCOUNT_KEY });
    }
  };
  return (
    <Section id="account-change-email" title="Change email">
      <Stack gap="sm" component="form" onSubmit={submit}>
        <Said result={result} />
        <TextInput
          label="New email"
          type="email"
          required
          value={form.email}
          error={result?.errors.email}
          onChange={(e) => setForm({ ...form, email: e.currentTarget.value })}
        />
        <PasswordInput
          label="Current password"
          required
          autoComplete="current-password"
          value={form.password}
          error={result?.errors.password}
          onChange={(e) => setForm({ ...form, password: e.currentTarget.value })}
        />
        <Text size="xs" c="dimmed">
          The address changes when you open the link we send to the new one.
        </Text>
        <Group>
          <Button type="submit" loading={busy}>
            Send the confirmation link
          </Button>
        </Group>
      </Stack>
    </Section>
  );
}

function TwoFactor() {
  const queries = useQueryClient();
  const status = useMfaStatus();
  const [setting, setSetting] = useState(false);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [result, setResult] = useState<Outcome>(null);
  const refresh = () => queries.invalidateQueries({ queryKey: MFA_KEY });
  const data = status.data;
  let body: React.ReactNode;
  if (codes) {
    body = <RecoveryCodes codes={codes} onDone={() => setCodes(null)} />;
  } else if (setting) {
    body = (
      <MfaEnrolment
        autoStart
        onEnabled={refresh}
        onDone={() => {
          setSetting(false);
          setResult({ ok: true, text: "Two-factor sign-in is on.", errors: {} });
        }}
      />
    );
  } else if (data?.enabled) {
    body = (
      <>
        <Group gap="xs">
          <Badge color="green">On</Badge>
          <Text size="sm">
            Since {data.enabled_at ? when(data.enabled_at) : "now"} · {data.recovery_codes_left} recovery code{data.recovery_codes_left === 1 ? "" : "s"} left
          </Text>
        </Group>
        <NewRecoveryCodes onCodes={setCodes} />
        <TurnOff
          onOff={async (text) => {
            setResult({ ok: true, text, errors: {} });
            // Off in an organization that requires it: the console sends to its setup (App.tsx).
            await queries.invalidateQueries({ queryKey: ["me"] });
          }}
        />
      </>
    );
  } else {
    body = (
      <>
        <Group gap="xs">
          <Badge color="gray">Off</Badge>
          <Text size="sm">Sign in with your password and a code from an app on your phone.</Text>
        </Group>
        <Group>
          <Button onClick={() => setSetting(true)}>Set up two-factor sign-in</Button>
        </Group>
      </>
    );
  }
  return (
    <Section id="account-mfa" title="Two-factor sign-in">
      <Said result={result} />
      {body}
    </Section>
  );
}

function NewRecoveryCodes({ onCodes }: { onCodes: (codes: string[]) => void }) {
  const queries = useQueryClient();
  const [code, setCode] = useState("");
  const [result, setResult] = useState<Outcome>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error } = await api.POST("/api/v1/auth/mfa/recovery-codes/", { body: { code } });
    setBusy(false);
    setCode("");
    if (error) setResult(outcome(undefined, error));
    else if (data) {
      setResult(null);
      onCodes(data.recovery_codes);
      await queries.invalidateQueries({ queryKey: MFA_KEY });
    }
  };
  return (
    <Stack gap="xs" component="form" onSubmit={submit} aria-label="New recovery codes">
      <Text size="sm" fw={500}>
        New recovery codes
      </Text>
      {result && !result.errors.code && <Said result={result} />}
      <Group align="flex-start">
        <TextInput aria-label="Code for new recovery codes" placeholder="Code from the app" required w={200} autoComplete="one-time-code" value={code} error={result?.errors.code} onChange={(e) => setCode(e.currentTarget.value)} />
        <Button type="submit" variant="default" loading={busy}>
          Make new codes
        </Button>
      </Group>
      <Text size="xs" c="dimmed">
        The old codes stop working.
      </Text>
    </Stack>
  );
}

function TurnOff({ onOff }: { onOff: (text: string) => Promise<void> }) {
  const queries = useQueryClient();
  const [form, setForm] = useState({ password: "", code: "" });
  const [result, setResult] = useState<Outcome>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error } = await api.POST("/api/v1/auth/mfa/disable/", { body: form });
    setBusy(false);
    setResult(outcome(data, error));
    if (data) {
      setForm({ password: "", code: "" });
      await queries.invalidateQueries({ queryKey: MFA_KEY });
      await onOff(data.detail);
    }
  };
  return (
    <Stack gap="xs" component="form" onSubmit={submit} aria-label="Turn off two-factor sign-in">
      <Text size="sm" fw={500}>
        Turn off
      </Text>
      {result && !result.ok && !result.errors.password && !result.errors.code && <Said result={result} />}
      <Group align="flex-start">
        <PasswordInput aria-label="Current password (to turn off)" placeholder="Current password" required w={200} autoComplete="current-password" value={form.password} error={result?.errors.password} onChange={(e) => setForm({ ...form, password: e.currentTarget.value })} />
        <TextInput aria-label="Code (to turn off)" placeholder="Code or recovery code" required w={200} autoComplete="one-time-code" value={form.code} error={result?.errors.code} onChange={(e) => setForm({ ...form, code: e.currentTarget.value })} />
        <Button type="submit" color="red" variant="light" loading={busy}>
          Turn off
        </Button>
      </Group>
    </Stack>
  );
}

function Sessions() {
  const queries = useQueryClient();
  const sessions = useQuery({ queryKey: SESSIONS_KEY, queryFn: () => unwrap(api.GET("/api/v1/auth/sessions/")) });
  const [result, setResult] = useState<Outcome>(null);
  const [ending, setEnding] = useState<number | "others" | null>(null);
  const rows: Session[] = sessions.data ?? [];
  const refresh = () => queries.invalidateQueries({ queryKey: SESSIONS_KEY });
  const end = async (session: Session) => {
    setEnding(session.id);
    const { error } = await api.DELETE("/api/v1/auth/sessions/{session_id}/", { params: { path: { session_id: String(session.id) } } });
    setEnding(null);
    setResult(error ? outcome(undefined, error) : { ok: true, text: `The session on ${session.device} is signed out.`, errors: {} });
    await refresh();
  };
  const endOthers = async () => {
    setEnding("others");
    const { data, error } = await api.POST("/api/v1/auth/sessions/end-others/");
    setEnding(null);
    setResult(outcome(data, error));
    await refresh();
  };
  return (
    <Section id="account-sessions" title="Sessions">
      <Text size="sm" c="dimmed">
        Where your account is signed in. End a session you do not recognize, then change your password.
      </Text>
      <Said result={result} />
      {sessions.error && <Alert color="red">{errorMessage(sessions.error)}</Alert>}
      <Table.ScrollContainer minWidth={600}>
        <Table aria-label="Sessions" verticalSpacing="xs">
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Device</Table.Th>
              <Table.Th>Address</Table.Th>
              <Table.Th>Signed in</Table.Th>
              <Table.Th>Last seen</Table.Th>
              <Table.Th aria-label="Actions" />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((session) => (
              <Table.Tr key={session.id}>
                <Table.Td>
                  <Text size="sm" title={session.user_agent}>
                    {session.device}
                  </Text>
                </Table.Td>
                <Table.Td>{session.ip_address ?? "unknown"}</Table.Td>
                <Table.Td>{when(session.signed_in_at)}</Table.Td>
                <Table.Td>{session.current ? "now" : ago(session.last_seen_at)}</Table.Td>
                <Table.Td>
                  {session.current ? (
                    <Badge variant="light">This session</Badge>
                  ) : (
                    <Button size="xs" color="red" variant="light" loading={ending === session.id} onClick={() => end(session)}>
                      End
                    </Button>
                  )}
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      <Group>
        <Button variant="default" disabled={rows.filter((s) => !s.current).length === 0} loading={ending === "others"} onClick={endOthers}>
          End all other sessions
        </Button>
      </Group>
    </Section>
  );
}
