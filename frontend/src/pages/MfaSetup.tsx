// Two-factor sign-in's setup (docs/identity.md): the authenticator app's QR code (an SVG the API
// draws) and its key as text, confirmed by a first code; then the recovery codes, shown once, to
// copy or download. On the Account page, and as the only page of a member whose organization
// requires it until it is on (App.tsx). Loaded with those pages, never in the first bundle.
import { Alert, Anchor, Button, Center, Code, CopyButton, Group, Image, Paper, Stack, Text, TextInput, Title } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { useNavigate } from "react-router-dom";
import { api, errorMessage, fieldErrors } from "../api/client";
import type { components } from "../api/schema";
import { useMfaStatus } from "./MfaStatus";

type Enrolment = components["schemas"]["MfaEnrolmentOutput"];

/** The key in groups of four, as authenticator apps show and people type it. */
export function grouped(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, "$1 ");
}

/** The recovery codes just made: shown this once, to copy or to download as a file. */
export function RecoveryCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  const text = codes.join("\n");
  const download = () => {
    const file = new Blob([`Gateway Cloud recovery codes (each works once)\n\n${text}\n`], { type: "text/plain" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(file);
    link.download = "gateway-cloud-recovery-codes.txt";
    link.click();
    URL.revokeObjectURL(link.href);
  };
  return (
    <Stack gap="sm" role="region" aria-label="Recovery codes">
      <Text size="sm">
        If you lose your authenticator app, each of these codes signs you in once. Keep them somewhere safe: they are not shown again.
      </Text>
      <Code block aria-label="Your recovery codes">
        {text}
      </Code>
      <Group>
        <CopyButton value={text}>
          {({ copied, copy }) => (
            <Button variant="default" onClick={copy}>
              {copied ? "Copied" : "Copy"}
            </Button>
          )}
        </CopyButton>
        <Button variant="default" onClick={download}>
          Download
        </Button>
        <Button onClick={onDone}>I have saved them</Button>
      </Group>
    </Stack>
  );
}

/** From "Set up" to the recovery codes: scan (or type the key), confirm with a first code.
 * `autoStart`: asked for by a button already, the secret is made at once. */
export function MfaEnrolment({ autoStart = false, onEnabled, onDone }: { autoStart?: boolean; onEnabled?: () => void; onDone: () => void }) {
  const [enrolment, setEnrolment] = useState<Enrolment | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [code, setCode] = useState("");
  const [error, setError] = useState<{ text: string; field?: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const start = async () => {
    setBusy(true);
    const { data, error: failed } = await api.POST("/api/v1/auth/mfa/setup/");
    setBusy(false);
    setError(failed ? { text: errorMessage(failed) } : null);
    if (data) setEnrolment(data);
  };
  // Once: each start makes a new secret, and the one shown must be the last one made.
  const started = useRef(false);
  useEffect(() => {
    if (autoStart && !started.current) {
      started.current = true;
      void start();
    }
  }, [autoStart]);
  const confirm = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error: failed } = await api.POST("/api/v1/auth/mfa/confirm/", { body: { code } });
    setBusy(false);
    if (failed) {
      setError({ text: errorMessage(failed), field: fieldErrors(failed).code });
      return;
    }
    setError(null);
    setCodes(data?.recovery_codes ?? []);
    onEnabled?.();
  };
  if (codes) return <RecoveryCodes codes={codes} onDone={onDone} />;
  if (!enrolment) {
    return (
      <Stack gap="sm">
        {error && <Alert color="red">{error.text}</Alert>}
        {(!autoStart || error) && (
          <Group>
            <Button onClick={start} loading={busy}>
              Set up two-factor sign-in
            </Button>
          </Group>
        )}
      </Stack>
    );
  }
  return (
    <Stack gap="sm" component="form" onSubmit={confirm}>
      <Text size="sm">1. Scan this QR code with an authenticator app (Google Authenticator, 1Password, Authy…).</Text>
      <Image src={enrolment.qr_code} alt="QR code for your authenticator app" w={200} h={200} fit="contain" />
      <Text size="sm">
        Can't scan? Enter this key: <Code aria-label="Setup key">{grouped(enrolment.secret)}</Code>
      </Text>
      <Text size="sm">2. Enter the 6-digit code the app shows.</Text>
      {error && !error.field && <Alert color="red">{error.text}</Alert>}
      <TextInput
        label="Code from the app"
        required
        w={220}
        autoComplete="one-time-code"
        inputMode="numeric"
        value={code}
        error={error?.field}
        onChange={(e) => setCode(e.currentTarget.value)}
      />
      <Group>
        <Button type="submit" loading={busy}>
          Turn on
        </Button>
      </Group>
    </Stack>
  );
}

/** The only page of a member whose organization requires two-factor sign-in, until it is on. */
export function MfaSetupRequiredPage() {
  const status = useMfaStatus();
  const queries = useQueryClient();
  const navigate = useNavigate();
  const [enabled, setEnabled] = useState(false);
  const names = status.data?.required_by ?? [];
  const who = names.length ? names.join(", ") : "Your organization";
  const logout = async () => {
    await api.POST("/api/v1/auth/logout/");
    queries.setQueryData(["me"], null);
    navigate("/login");
  };
  const done = async () => {
    await queries.invalidateQueries({ queryKey: ["me"] });
    navigate("/");
  };
  return (
    <Center mih="100vh" p="md">
      <Paper withBorder p="xl" maw={560} w="100%">
        <Stack>
          <Title order={3}>Set up two-factor sign-in</Title>
          {!enabled && (
            <Alert color="blue">
              {who} {names.length > 1 ? "require" : "requires"} two-factor sign-in: set it up to go on. You will sign in with your password and a code from an app on your phone.
            </Alert>
          )}
          <MfaEnrolment onEnabled={() => setEnabled(true)} onDone={done} />
          <Anchor component="button" type="button" size="sm" onClick={logout}>
            Log out
          </Anchor>
        </Stack>
      </Paper>
    </Center>
  );
}
