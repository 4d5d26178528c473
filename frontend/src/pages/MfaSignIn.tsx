// The sign-in's second step (docs/identity.md): after a right password for an account with
// two-factor sign-in, a code from the authenticator app, or a recovery code. Loaded by the login
// page only when it is due.
import { Alert, Anchor, Button, Center, Paper, Stack, Text, TextInput, Title } from "@mantine/core";
import { useState } from "react";
import { api, errorMessage } from "../api/client";

export function MfaSignIn({ onSignedIn, onBack }: { onSignedIn: () => Promise<void>; onBack: () => void }) {
  const [recovery, setRecovery] = useState(false);
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { error: failed } = await api.POST("/api/v1/auth/mfa/verify/", { body: { code } });
    setBusy(false);
    if (failed) {
      setError(errorMessage(failed));
      setCode("");
    } else await onSignedIn();
  };
  const switchKind = () => {
    setRecovery(!recovery);
    setCode("");
    setError(null);
  };
  return (
    <Center h="100vh">
      <Paper withBorder p="xl" w={380} component="form" onSubmit={submit}>
        <Stack>
          <Title order={3}>Two-factor sign-in</Title>
          <Text size="sm">
            {recovery
              ? "Enter one of the recovery codes you saved when you set up two-factor sign-in. Each works once."
              : "Enter the 6-digit code from your authenticator app."}
          </Text>
          {error && <Alert color="red">{error}</Alert>}
          {recovery ? (
            <TextInput key="recovery" label="Recovery code" required autoFocus autoComplete="off" placeholder="xxxx-xxxx-xxxx" value={code} onChange={(e) => setCode(e.currentTarget.value)} />
          ) : (
            <TextInput key="totp" label="Authentication code" required autoFocus autoComplete="one-time-code" inputMode="numeric" placeholder="123456" value={code} onChange={(e) => setCode(e.currentTarget.value)} />
          )}
          <Button type="submit" loading={busy}>
            Verify
          </Button>
          <Anchor component="button" type="button" size="sm" onClick={switchKind}>
            {recovery ? "Use your authenticator app" : "Use a recovery code"}
          </Anchor>
          <Anchor component="button" type="button" size="sm" onClick={onBack}>
            Back to log in
          </Anchor>
        </Stack>
      </Paper>
    </Center>
  );
}
