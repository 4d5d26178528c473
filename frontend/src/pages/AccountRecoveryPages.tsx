// The pages the emailed links open, and the one that sends a reset link: forgot password, reset
// password (/reset/<uid>/<token>), verify email (/verify-email/<token>), connect an account to
// its organization's single sign-on (/sso/link/<token>). Loaded when opened.
import { Alert, Anchor, Button, Center, Loader, Paper, PasswordInput, Stack, Text, TextInput, Title } from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { ACCOUNT_KEY } from "./AccountBanner";

/** A page of its own (signed out), or within the console's shell (`inShell`). */
function Card({ children, onSubmit, inShell = false }: { children: React.ReactNode; onSubmit?: (event: React.FormEvent) => void; inShell?: boolean }) {
  return (
    <Center mih={inShell ? undefined : "100vh"} p="md">
      <Paper withBorder p="xl" w={420} maw="100%" component={onSubmit ? "form" : "div"} onSubmit={onSubmit}>
        <Stack>{children}</Stack>
      </Paper>
    </Center>
  );
}

export function ForgotPasswordPage() {
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error: failed } = await api.POST("/api/v1/auth/password-reset/", { body: { email } });
    setBusy(false);
    setError(failed ? errorMessage(failed) : null);
    setSent(data?.detail ?? null);
  };
  return (
    <Card onSubmit={submit}>
      <Title order={3}>Reset your password</Title>
      <Text size="sm" c="dimmed">
        Enter your account's email address: we send it a link to choose a new password.
      </Text>
      {error && <Alert color="red">{error}</Alert>}
      {sent && (
        <Alert color="green">
          {sent}
        </Alert>
      )}
      <TextInput label="Email" type="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
      <Button type="submit" loading={busy}>
        Send the link
      </Button>
      <Anchor component={Link} to="/login" size="sm">
        Back to log in
      </Anchor>
    </Card>
  );
}

export function ResetPasswordPage() {
  const { uid = "", token = "" } = useParams();
  const queries = useQueryClient();
  const navigate = useNavigate();
  const link = useQuery({
    queryKey: ["reset-link", uid, token],
    queryFn: () => unwrap(api.POST("/api/v1/auth/password-reset/check/", { body: { uid, token } })),
    retry: false,
    staleTime: Infinity,
  });
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error: failed } = await api.POST("/api/v1/auth/password-reset/confirm/", { body: { uid, token, password } });
    setBusy(false);
    const byField = failed ? fieldErrors(failed) : {};
    setErrors(byField);
    // The password's error is shown beside it, once; the alert says the rest (an expired link).
    setError(failed && !byField.password ? errorMessage(failed) : null);
    if (data) setDone(data.detail);
  };
  // Every session of the account ended with the reset, this browser's too.
  const logIn = () => {
    queries.setQueryData(["me"], null);
    navigate("/login");
  };
  if (link.isLoading) {
    return (
      <Center h="100vh">
        <Loader aria-label="Checking the link" />
      </Center>
    );
  }
  if (done) {
    return (
      <Card>
        <Title order={3}>Password changed</Title>
        <Alert color="green">
          {done}
        </Alert>
        <Button onClick={logIn}>Log in</Button>
      </Card>
    );
  }
  if (link.error) {
    return (
      <Card>
        <Title order={3}>Reset your password</Title>
        <Alert color="red">{errorMessage(link.error)}</Alert>
        <Anchor component={Link} to="/forgot">
          Ask for a new link
        </Anchor>
      </Card>
    );
  }
  return (
    <Card onSubmit={submit}>
      <Title order={3}>Choose a new password</Title>
      <Text size="sm">For {link.data?.email}. Every other session of the account will be signed out.</Text>
      {error && <Alert color="red">{error}</Alert>}
      <PasswordInput label="New password" required autoComplete="new-password" value={password} error={errors.password} onChange={(e) => setPassword(e.currentTarget.value)} />
      <Button type="submit" loading={busy}>
        Set the new password
      </Button>
    </Card>
  );
}

export function VerifyEmailPage({ signedIn = false }: { signedIn?: boolean }) {
  const { token = "" } = useParams();
  const queries = useQueryClient();
  // Following a link twice is harmless (the API answers the same), so a query may do it.
  const verified = useQuery({
    queryKey: ["verify-email", token],
    queryFn: async () => {
      const data = await unwrap(api.POST("/api/v1/auth/email/verify/", { body: { token } }));
      await Promise.all([queries.invalidateQueries({ queryKey: ACCOUNT_KEY }), queries.invalidateQueries({ queryKey: ["me"] })]);
      return data;
    },
    retry: false,
    staleTime: Infinity,
  });
  return (
    <Card inShell={signedIn}>
      <Title order={3}>Email address</Title>
      {verified.isLoading && <Loader aria-label="Verifying" />}
      {verified.data && (
        <Alert color="green">
          {verified.data.detail}
        </Alert>
      )}
      {verified.error && <Alert color="red">{errorMessage(verified.error)}</Alert>}
      {signedIn ? (
        <Anchor component={Link} to={verified.error ? "/account" : "/"}>
          {verified.error ? "Your account" : "Go to the console"}
        </Anchor>
      ) : (
        <Anchor component={Link} to="/login">
          Log in
        </Anchor>
      )}
    </Card>
  );
}

/** The emailed link that connects an existing account to its organization's single sign-on
 * (sent when the provider first spoke for it): once connected, the next SSO sign-in goes in. */
export function SsoLinkPage({ signedIn = false }: { signedIn?: boolean }) {
  const { token = "" } = useParams();
  // One request for the page: the link works once, and a query is not sent twice.
  const linked = useQuery({
    queryKey: ["sso-link", token],
    queryFn: () => unwrap(api.POST("/api/v1/auth/sso/link/", { body: { token } })),
    retry: false,
    staleTime: Infinity,
  });
  return (
    <Card inShell={signedIn}>
      <Title order={3}>Single sign-on</Title>
      {linked.isLoading && <Loader aria-label="Connecting your account" />}
      {linked.data && <Alert color="green">{linked.data.detail}</Alert>}
      {linked.error && <Alert color="red">{errorMessage(linked.error)}</Alert>}
      <Anchor component={Link} to={signedIn ? "/" : "/login"}>
        {signedIn ? "Go to the console" : "Sign in"}
      </Anchor>
    </Card>
  );
}
