// The portal's developers (a tab of PortalPage.tsx): who signed up, approving or rejecting those
// who wait, suspending and reinstating, and each one's applications, which can be suspended on
// their own; inviting a developer when sign-up is by invitation.
import { Alert, Badge, Button, Code, CopyButton, Group, Loader, Paper, SegmentedControl, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { useAfterWrite } from "../api/queries";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ago, day } from "../components/format";
import { type Application, type Developer, type Invitation, listOf, portalKeys, usePortalSettings } from "./PortalApi";

const DEVELOPER_COLOR = { pending: "yellow", active: "green", rejected: "gray", suspended: "red" } as const;
const DEVELOPER_STATUS = { pending: "waiting for approval", active: "active", rejected: "rejected", suspended: "suspended" } as const;
const APPLICATION_COLOR = { active: "green", suspended: "red" } as const;

type Decision = "approve" | "reject" | "suspend" | "reinstate";
// The decisions that take something away ask first.
const CONFIRMED: Record<Decision, { title: string; text: string } | null> = {
  approve: null,
  reinstate: null,
  reject: { title: "Reject", text: "They cannot sign in; you can still approve them later." },
  suspend: { title: "Suspend", text: "Their sessions end and every application of theirs stops working at the gateway within a second, until you reinstate them." },
};

export function PortalDevelopers({ slug, canWrite }: { slug: string; canWrite: boolean }) {
  const afterWrite = useAfterWrite(slug);
  const settings = usePortalSettings(slug);
  const [status, setStatus] = useState("all");
  const developers = useQuery({
    queryKey: portalKeys.developers(slug, status),
    queryFn: async () =>
      listOf<Developer>(await unwrap(api.GET("/api/v1/orgs/{org_slug}/portal/developers/", { params: { path: { org_slug: slug }, query: (status === "all" ? {} : { status }) as never } }))),
  });
  const [deciding, setDeciding] = useState<{ developer: Developer; decision: Decision } | null>(null);
  const [suspending, setSuspending] = useState<Application | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [working, setWorking] = useState(false);
  const path = { org_slug: slug };

  const finish = async (failed: unknown) => {
    setWorking(false);
    setError(failed ? errorMessage(failed) : null);
    await afterWrite(portalKeys.all(slug));
    return !failed;
  };
  const decide = async (developer: Developer, decision: Decision) => {
    setWorking(true);
    const url = `/api/v1/orgs/{org_slug}/portal/developers/{id}/${decision}/` as "/api/v1/orgs/{org_slug}/portal/developers/{id}/approve/";
    const { error: failed } = await api.POST(url, { params: { path: { ...path, id: developer.id } } });
    if (await finish(failed)) setDeciding(null);
  };
  const ask = (developer: Developer, decision: Decision) => (CONFIRMED[decision] ? setDeciding({ developer, decision }) : decide(developer, decision));
  const setApplication = async (application: Application, to: Application["status"]) => {
    setWorking(true);
    const { error: failed } = await api.PATCH("/api/v1/orgs/{org_slug}/portal/applications/{id}/", { params: { path: { ...path, id: application.id } }, body: { status: to } });
    if (await finish(failed)) setSuspending(null);
  };
  const cancel = (close: () => void) => () => {
    setError(null);
    close();
  };

  const rows = developers.data ?? [];
  return (
    <Stack>
      {settings.data?.signup_mode === "invitation" ? (
        canWrite && <Invite slug={slug} />
      ) : (
        settings.data && (
          <Text size="sm" c="dimmed">
            {settings.data.signup_mode === "open"
              ? "Sign-up is open: anyone with a verified email gets an account."
              : "Anyone may sign up; each waits here for your approval."}{" "}
            Invitations are for a portal whose sign-up is by invitation (Settings).
          </Text>
        )
      )}
      <Group justify="space-between" gap="xs">
        <Title order={3} size="h4">
          Developers
        </Title>
        <SegmentedControl
          aria-label="Show"
          size="xs"
          value={status}
          onChange={setStatus}
          data={[
            { value: "all", label: "All" },
            { value: "pending", label: "Waiting" },
            { value: "suspended", label: "Suspended" },
          ]}
        />
      </Group>
      {error && !deciding && !suspending && (
        <Alert color="red" withCloseButton onClose={() => setError(null)}>
          {error}
        </Alert>
      )}
      {developers.error && <Alert color="red">{errorMessage(developers.error)}</Alert>}
      {developers.isLoading && <Loader aria-label="Loading the developers" />}
      {developers.data && rows.length === 0 && <Text c="dimmed">{status === "all" ? "No developers have signed up yet." : "None."}</Text>}
      {rows.length > 0 && (
        <Table.ScrollContainer minWidth={860}>
          <Table aria-label="Developers" verticalSpacing="xs">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Developer</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Signed up</Table.Th>
                <Table.Th>Last sign-in</Table.Th>
                <Table.Th>Applications</Table.Th>
                {canWrite && <Table.Th>Developer actions</Table.Th>}
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {rows.map((developer) => (
                <Table.Tr key={developer.id} style={{ verticalAlign: "top" }}>
                  <Table.Td>
                    <Text size="sm" fw={500}>
                      {developer.email}
                    </Text>
                    {developer.name && (
                      <Text size="xs" c="dimmed">
                        {developer.name}
                      </Text>
                    )}
                    {!developer.email_verified && (
                      <Text size="xs" c="orange">
                        email not confirmed yet
                      </Text>
                    )}
                  </Table.Td>
                  <Table.Td>
                    <Badge color={DEVELOPER_COLOR[developer.status]} variant="light">
                      {DEVELOPER_STATUS[developer.status]}
                    </Badge>
                  </Table.Td>
                  <Table.Td>{day(developer.created_at)}</Table.Td>
                  <Table.Td>{ago(developer.last_login)}</Table.Td>
                  <Table.Td>
                    <Applications developer={developer} canWrite={canWrite} onSuspend={setSuspending} onReinstate={(a) => setApplication(a, "active")} working={working} />
                  </Table.Td>
                  {canWrite && (
                    <Table.Td>
                      <Group gap={4} wrap="nowrap">
                        {(developer.status === "pending" || developer.status === "rejected") && (
                          <Button size="xs" variant="light" color="green" onClick={() => ask(developer, "approve")} aria-label={`Approve ${developer.email}`}>
                            Approve
                          </Button>
                        )}
                        {developer.status === "pending" && (
                          <Button size="xs" variant="subtle" color="red" onClick={() => ask(developer, "reject")} aria-label={`Reject ${developer.email}`}>
                            Reject
                          </Button>
                        )}
                        {developer.status === "active" && (
                          <Button size="xs" variant="subtle" color="red" onClick={() => ask(developer, "suspend")} aria-label={`Suspend developer ${developer.email}`}>
                            Suspend developer
                          </Button>
                        )}
                        {developer.status === "suspended" && (
                          <Button size="xs" variant="light" onClick={() => ask(developer, "reinstate")} aria-label={`Reinstate developer ${developer.email}`}>
                            Reinstate developer
                          </Button>
                        )}
                      </Group>
                    </Table.Td>
                  )}
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      <ConfirmDialog
        opened={deciding !== null}
        title={deciding ? `${CONFIRMED[deciding.decision]?.title} ${deciding.developer.email}` : ""}
        confirmLabel={deciding ? (CONFIRMED[deciding.decision]?.title ?? "") : ""}
        onConfirm={() => deciding && decide(deciding.developer, deciding.decision)}
        onCancel={cancel(() => setDeciding(null))}
        error={error}
        working={working}
      >
        <Text>{deciding ? CONFIRMED[deciding.decision]?.text : ""}</Text>
      </ConfirmDialog>
      <ConfirmDialog
        opened={suspending !== null}
        title={`Suspend ${suspending?.name ?? ""}`}
        confirmLabel="Suspend"
        onConfirm={() => suspending && setApplication(suspending, "suspended")}
        onCancel={cancel(() => setSuspending(null))}
        error={error}
        working={working}
      >
        <Text>
          Suspend the application {suspending?.name} of {suspending?.developer}? Its credentials stop working at the gateway within a second, until you reinstate it.
        </Text>
      </ConfirmDialog>
    </Stack>
  );
}

function Applications({
  developer,
  canWrite,
  onSuspend,
  onReinstate,
  working,
}: {
  developer: Developer;
  canWrite: boolean;
  onSuspend: (application: Application) => void;
  onReinstate: (application: Application) => void;
  working: boolean;
}) {
  if (developer.applications.length === 0)
    return (
      <Text size="sm" c="dimmed">
        none
      </Text>
    );
  return (
    <Stack gap="xs" component="ul" m={0} p={0} style={{ listStyle: "none" }} aria-label={`Applications of ${developer.email}`}>
      {developer.applications.map((application) => (
        <Stack component="li" gap={2} key={application.id}>
          <Group gap={6} wrap="nowrap">
            <Text size="sm" fw={500}>
              {application.name}
            </Text>
            <Badge size="sm" color={APPLICATION_COLOR[application.status]} variant="light">
              {application.status}
            </Badge>
            {canWrite &&
              (application.status === "active" ? (
                <Button size="compact-xs" variant="subtle" color="red" onClick={() => onSuspend(application)} aria-label={`Suspend app ${application.name}`}>
                  Suspend app
                </Button>
              ) : (
                <Button size="compact-xs" variant="subtle" disabled={working} onClick={() => onReinstate(application)} aria-label={`Reinstate app ${application.name}`}>
                  Reinstate app
                </Button>
              ))}
          </Group>
          <Text size="xs" c="dimmed">
            {application.key_prefix ? (
              <>
                key <Code fz="xs">{application.key_prefix}…</Code>
              </>
            ) : (
              "no key"
            )}
            {application.jwt_key ? ` · JWT ${application.jwt_key}` : ""}
          </Text>
          <Text size="xs">
            {application.subscriptions.length === 0
              ? "No subscriptions"
              : application.subscriptions.map((s) => `${s.product} ${s.version} on ${s.plan}`).join(", ")}
          </Text>
        </Stack>
      ))}
    </Stack>
  );
}

/** Invite a developer by email; the link is shown too, to hand over another way. */
function Invite({ slug }: { slug: string }) {
  const afterWrite = useAfterWrite(slug);
  const [email, setEmail] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [sent, setSent] = useState<Invitation | null>(null);
  const [busy, setBusy] = useState(false);
  const invite = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/portal/invitations/", { params: { path: { org_slug: slug } }, body: { email } });
    setBusy(false);
    setErrors(failed ? fieldErrors(failed) : {});
    setError(failed && !fieldErrors(failed).email ? errorMessage(failed) : null);
    if (failed) return;
    setSent(data as unknown as Invitation);
    setEmail("");
    await afterWrite();
  };
  return (
    <Paper withBorder p="md">
      <Stack gap="sm" component="form" onSubmit={invite}>
        <Text fw={500}>Invite a developer</Text>
        {error && <Alert color="red">{error}</Alert>}
        <Group align="start" gap="xs">
          <TextInput
            label="Email"
            type="email"
            required
            placeholder="dev@example.com"
            value={email}
            error={errors.email}
            onChange={(e) => setEmail(e.currentTarget.value)}
            style={{ flex: "1 1 220px" }}
          />
          <Button type="submit" loading={busy} mt={{ base: 0, xs: 25 }}>
            Send invitation
          </Button>
        </Group>
        {sent && (
          <Alert color="green" title={`Invitation sent to ${sent.email}`}>
            <Stack gap={6}>
              <Text size="sm">The email holds this link, valid 7 days; you can also hand it over yourself:</Text>
              <Group wrap="nowrap" align="start" gap="xs">
                <Code style={{ flex: 1, minWidth: 0, wordBreak: "break-all" }} aria-label="Invitation link">
                  {sent.link}
                </Code>
                <CopyButton value={sent.link}>
                  {({ copied, copy }) => (
                    <Button size="xs" variant="light" onClick={copy}>
                      {copied ? "Copied" : "Copy"}
                    </Button>
                  )}
                </CopyButton>
              </Group>
            </Stack>
          </Alert>
        )}
      </Stack>
    </Paper>
  );
}
