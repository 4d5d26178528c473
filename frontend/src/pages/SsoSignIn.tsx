// Signing in with single sign-on, from the sign-in page (AuthPages.tsx): "Sign in with SSO" asks
// for the work email, finds the organization whose allowed domains include it, and sends the
// browser to that organization's identity provider. The provider sends it back to the sign-in
// page with its answer (code, state), which SsoCallback hands to the API to finish.
import { Alert, Button, Center, Loader, Modal, Paper, Stack, Text, TextInput, Title } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { useNavigate } from "react-router-dom";
import { api, errorMessage } from "../api/client";

/** Whether the sign-in page's address is a provider's answer (state, with a code or an error). */
export function isSsoCallback(search: string): boolean {
  const query = new URLSearchParams(search);
  return query.has("state") && (query.has("code") || query.has("error"));
}

/** Where the browser goes to sign in at the provider; a test may replace it. */
export const goTo = { url: (url: string) => window.location.assign(url) };

export function SsoSignInButton({ email }: { email: string }) {
  const [opened, setOpened] = useState(false);
  return (
    <>
      <Button variant="default" onClick={() => setOpened(true)}>
        Sign in with SSO
      </Button>
      <Modal opened={opened} onClose={() => setOpened(false)} title="Sign in with SSO">
        {opened && <SsoEmailForm initialEmail={email} />}
      </Modal>
    </>
  );
}

function SsoEmailForm({ initialEmail }: { initialEmail: string }) {
  const [email, setEmail] = useState(initialEmail);
  const [error, setError] = useState<string | null>(null);
  const [going, setGoing] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: React.FormEvent) => {
    // The modal sits in the sign-in form's React tree: its submit is this form's alone.
    event.preventDefault();
    event.stopPropagation();
    setBusy(true);
    setError(null);
    const { data: found, error: notFound } = await api.POST("/api/v1/auth/sso/discover/", { body: { email } });
    if (!found) {
      setBusy(false);
      setError(errorMessage(notFound));
      return;
    }
    setGoing(found.organization_name);
    const { data: started, error: failed } = await api.POST("/api/v1/auth/sso/start/", { body: { email } });
    if (!started) {
      setBusy(false);
      setGoing(null);
      setError(errorMessage(failed));
      return;
    }
    goTo.url(started.redirect_url);
  };
  return (
    <Stack component="form" onSubmit={submit}>
      <Text size="sm">Give your work email: your organization's identity provider signs you in.</Text>
      {error && <Alert color="red">{error}</Alert>}
      {going && <Alert color="blue">Taking you to {going}'s sign-in…</Alert>}
      <TextInput label="Work email" type="email" required data-autofocus value={email} onChange={(e) => setEmail(e.currentTarget.value)} />
      <Button type="submit" loading={busy}>
        Continue
      </Button>
    </Stack>
  );
}

/** The provider's answer, handed to the API once: signed in, on to the organization; an account
 * from before, where its connecting link was emailed; refused, the reason; and back to the
 * sign-in page. */
export function SsoCallback({ search }: { search: string }) {
  const queries = useQueryClient();
  const navigate = useNavigate();
  const [error, setError] = useState<string | null>(null);
  const [linkSent, setLinkSent] = useState<string | null>(null);
  const sent = useRef(false);
  useEffect(() => {
    // Once: the state works a single time (React's development mode runs effects twice).
    if (sent.current) return;
    sent.current = true;
    const query = new URLSearchParams(search);
    const body = {
      state: query.get("state") ?? "",
      code: query.get("code") ?? "",
      error: query.get("error") ?? "",
      error_description: query.get("error_description") ?? "",
      iss: query.get("iss") ?? "",
    };
    void api.POST("/api/v1/auth/sso/callback/", { body }).then(async ({ data, error: failed }) => {
      if (failed || !data) {
        setError(errorMessage(failed));
        return;
      }
      if ("link_sent_to" in data) {
        // An account from before: its own mailbox connects it to the provider first.
        setLinkSent(data.detail);
        return;
      }
      await queries.invalidateQueries({ queryKey: ["me"] });
      navigate(`/orgs/${data.organization.slug}/overview`, { replace: true });
    });
  }, [search, queries, navigate]);
  return (
    <Center mih="100vh" p="md">
      <Paper withBorder p="xl" w={420} maw="100%">
        <Stack>
          <Title order={3}>Signing in with SSO</Title>
          {error || linkSent ? (
            <>
              {error ? (
                <Alert color="red" title="The sign-in was refused">
                  {error}
                </Alert>
              ) : (
                <Alert color="blue" title="Check your email">
                  {linkSent}
                </Alert>
              )}
              <Button onClick={() => navigate("/login", { replace: true })}>Back to sign-in</Button>
            </>
          ) : (
            <Center>
              <Loader aria-label="Signing in" />
            </Center>
          )}
        </Stack>
      </Paper>
    </Center>
  );
}
