import { Alert, Anchor, Button, Center, Paper, PasswordInput, Stack, TextInput, Title } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { lazy, Suspense, useState } from "react";
import { Link, useLocation, useNavigate } from "react-router-dom";
import { api, errorMessage, fieldErrors } from "../api/client";
import { isSsoCallback, SsoCallback, SsoSignInButton } from "./SsoSignIn";

// Two-factor sign-in's second step: loaded when a right password answers that a code is due.
const MfaSignIn = lazy(() => import("./MfaSignIn").then((m) => ({ default: m.MfaSignIn })));

function useSignedIn() {
  const queries = useQueryClient();
  const navigate = useNavigate();
  return async () => {
    await queries.invalidateQueries({ queryKey: ["me"] });
    navigate("/");
  };
}

export function LoginPage() {
  const signedIn = useSignedIn();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [codeDue, setCodeDue] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error: failed } = await api.POST("/api/v1/auth/login/", { body: { email, password } });
    setBusy(false);
    if (failed) setError(errorMessage(failed));
    else if (data && "mfa_required" in data) setCodeDue(true);
    else await signedIn();
  };
  // Back from an identity provider (single sign-on): its answer, on this page's address.
  const { search } = useLocation();
  if (isSsoCallback(search)) return <SsoCallback search={search} />;
  if (codeDue) {
    const back = () => {
      setCodeDue(false);
      setPassword("");
      setError(null);
    };
    return (
      <Suspense fallback={null}>
        <MfaSignIn onSignedIn={signedIn} onBack={back} />
      </Suspense>
    );
  }
  return (
    <Center h="100vh">
      <Paper withBorder p="xl" w={380} component="form" onSubmit={submit}>
        <Stack>
          <Title order={3}>Log in to Gateway Cloud</Title>
          {error && <Alert color="red">{error}</Alert>}
          <TextInput label="Email" type="email" required value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
          <PasswordInput label="Password" required value={password} onChange={(e) => setPassword(e.currentTarget.value)} />
          <Button type="submit" loading={busy}>
            Log in
          </Button>
          <SsoSignInButton email={email} />
          <Anchor component={Link} to="/forgot" size="sm">
            Forgot password?
          </Anchor>
          <Anchor component={Link} to="/signup" size="sm">
            No account yet? Sign up
          </Anchor>
        </Stack>
      </Paper>
    </Center>
  );
}

export function SignupPage() {
  const signedIn = useSignedIn();
  const [form, setForm] = useState({ email: "", password: "", name: "", organization_name: "" });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const field = (name: keyof typeof form) => ({
    value: form[name],
    error: errors[name],
    onChange: (e: React.ChangeEvent<HTMLInputElement>) => setForm({ ...form, [name]: e.currentTarget.value }),
  });
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { error: failed } = await api.POST("/api/v1/auth/signup/", { body: form });
    setBusy(false);
    if (failed) {
      setErrors(fieldErrors(failed));
      setError(errorMessage(failed));
    } else await signedIn();
  };
  return (
    <Center h="100vh">
      <Paper withBorder p="xl" w={420} component="form" onSubmit={submit}>
        <Stack>
          <Title order={3}>Create your account</Title>
          {error && <Alert color="red">{error}</Alert>}
          <TextInput label="Email" type="email" required {...field("email")} />
          <PasswordInput label="Password" required {...field("password")} />
          <TextInput label="Your name" {...field("name")} />
          <TextInput label="Organization" description="Your team's name" {...field("organization_name")} />
          <Button type="submit" loading={busy}>
            Sign up
          </Button>
          <Anchor component={Link} to="/login" size="sm">
            Already have an account? Log in
          </Anchor>
        </Stack>
      </Paper>
    </Center>
  );
}
