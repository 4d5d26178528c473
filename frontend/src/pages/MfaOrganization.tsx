// The owner's "Require two-factor sign-in" switch on the organization's page (docs/identity.md):
// members without it set it up at their next sign-in, before anything else. Loaded with the tab.
import { Alert, Paper, Stack, Switch, Text } from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { api, errorMessage, unwrap } from "../api/client";

export function MfaRequirement({ slug }: { slug: string }) {
  const queries = useQueryClient();
  const key = ["mfa-policy", slug];
  const path = { org_slug: slug };
  const policy = useQuery({ queryKey: key, queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/mfa-policy/", { params: { path } })) });
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const change = async (require_mfa: boolean) => {
    setBusy(true);
    const { data, error: failed } = await api.PUT("/api/v1/orgs/{org_slug}/mfa-policy/", { params: { path }, body: { require_mfa } });
    setBusy(false);
    setError(failed ? errorMessage(failed) : null);
    if (data) queries.setQueryData(key, data);
    await queries.invalidateQueries({ queryKey: ["audit", slug] });
  };
  const data = policy.data;
  const without = data?.members_without_mfa ?? 0;
  return (
    <Paper withBorder p="md" mb="md" role="region" aria-label="Two-factor sign-in">
      <Stack gap="xs">
        <Switch label="Require two-factor sign-in" checked={data?.require_mfa ?? false} disabled={!data || busy} onChange={(event) => change(event.currentTarget.checked)} />
        <Text size="sm">
          Every member signs in with a password and a code from an authenticator app. Members without it set it up at their next sign-in, before anything else.
        </Text>
        {data && without > 0 && (
          <Text size="sm" c="dimmed">
            {without} member{without === 1 ? " has" : "s have"} not turned on two-factor sign-in yet.
          </Text>
        )}
        {data && without === 0 && (
          <Text size="sm" c="dimmed">
            Every member has two-factor sign-in on.
          </Text>
        )}
        {error && <Alert color="red">{error}</Alert>}
        {policy.error && <Alert color="red">{errorMessage(policy.error)}</Alert>}
      </Stack>
    </Paper>
  );
}
