// The organization's single sign-on (owners only): the OpenID Connect provider its people sign in
// with, the email domains it answers for, the role of newcomers, the rules that map a claim
// (groups) to roles, and "SSO only". A tab of the organization's settings (OrganizationPage.tsx),
// loaded when first opened. docs/sso.md says what each setting does.
import { Alert, Button, Code, CopyButton, Fieldset, Group, Loader, Paper, PasswordInput, Select, Stack, Switch, Text, TextInput } from "@mantine/core";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { keys } from "../api/queries";
import type { components } from "../api/schema";
import { ConfirmDialog } from "../components/ConfirmDialog";

type Configuration = components["schemas"]["SsoConfigurationOutput"];
type Rule = { value: string; role: string };

// SSO never gives the owner role: owners are made in the console.
const SSO_ROLES = ["admin", "developer", "viewer", "billing"];

const ssoKey = (slug: string) => ["sso", slug];

type Form = {
  issuer: string;
  client_id: string;
  client_secret: string;
  allowed_domains: string;
  default_role: string;
  role_claim: string;
  role_mapping: Rule[];
  sso_only: boolean;
};

function formOf(configuration: Configuration): Form {
  return {
    issuer: configuration.issuer,
    client_id: configuration.client_id,
    client_secret: "",
    allowed_domains: configuration.allowed_domains.join(", "),
    default_role: configuration.default_role,
    role_claim: configuration.role_claim,
    role_mapping: configuration.role_mapping.map((rule) => ({ value: rule.value, role: rule.role })),
    sso_only: configuration.sso_only,
  };
}

export function OrganizationSso({ slug }: { slug: string }) {
  const queries = useQueryClient();
  const path = { org_slug: slug };
  const current = useQuery({
    queryKey: ssoKey(slug),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/sso/", { params: { path } })),
  });
  const [form, setForm] = useState<Form | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [said, setSaid] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [turningOff, setTurningOff] = useState(false);
  const [offError, setOffError] = useState<string | null>(null);
  useEffect(() => {
    if (current.data && form === null) setForm(formOf(current.data));
  }, [current.data, form]);

  if (current.error) return <Alert color="red">{errorMessage(current.error)}</Alert>;
  if (!current.data || !form) return <Loader aria-label="Loading single sign-on" />;
  const configuration = current.data;

  const set = <K extends keyof Form>(name: K, value: Form[K]) => setForm({ ...form, [name]: value });
  const setRule = (index: number, rule: Rule) => set("role_mapping", form.role_mapping.map((old, i) => (i === index ? rule : old)));

  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    event.stopPropagation();
    setBusy(true);
    const body = {
      ...form,
      allowed_domains: form.allowed_domains.split(/[\s,]+/).filter(Boolean),
      role_mapping: form.role_mapping.filter((rule) => rule.value.trim() !== ""),
    };
    const { data, error } = await api.PUT("/api/v1/orgs/{org_slug}/sso/", { params: { path }, body: body as never });
    setBusy(false);
    setErrors(error ? fieldErrors(error) : {});
    if (error) {
      setSaid({ ok: false, text: errorMessage(error) });
      return;
    }
    const saved = data as Configuration;
    queries.setQueryData(ssoKey(slug), saved);
    await queries.invalidateQueries({ queryKey: keys.audit(slug) });
    setForm(formOf(saved));
    setSaid({ ok: true, text: `Single sign-on is on: people at ${saved.allowed_domains.join(", ")} sign in with ${saved.issuer}.` });
  };

  const turnOff = async () => {
    const { error } = await api.DELETE("/api/v1/orgs/{org_slug}/sso/", { params: { path } });
    if (error) {
      setOffError(errorMessage(error));
      return;
    }
    setTurningOff(false);
    setOffError(null);
    const fresh = await queries.fetchQuery({ queryKey: ssoKey(slug), queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/sso/", { params: { path } })) });
    await queries.invalidateQueries({ queryKey: keys.audit(slug) });
    setForm(formOf(fresh));
    setSaid({ ok: true, text: "Single sign-on is off: members sign in with their password." });
  };

  return (
    <Stack maw={760}>
      <Text>
        Your people sign in with your company's identity provider (any OpenID Connect provider: Okta, Microsoft Entra ID, Google Workspace, Keycloak…). They choose “Sign in with SSO” on the sign-in page
        and give their work email: its domain leads to this organization.
      </Text>
      <Paper withBorder p="md">
        <Stack gap="xs">
          <Text fw={500}>1. Register Gateway Cloud at your provider</Text>
          <Text size="sm">As a web application using the authorization code flow, with this redirect URI:</Text>
          <Group wrap="nowrap" align="start">
            <Code style={{ flex: 1, minWidth: 0, wordBreak: "break-all" }} aria-label="Redirect URI">
              {configuration.redirect_uri}
            </Code>
            <CopyButton value={configuration.redirect_uri}>
              {({ copied, copy }) => (
                <Button size="xs" variant="light" onClick={copy}>
                  {copied ? "Copied" : "Copy"}
                </Button>
              )}
            </CopyButton>
          </Group>
        </Stack>
      </Paper>
      <Stack component="form" onSubmit={save} gap="sm">
        <Text fw={500}>2. What your provider gave you</Text>
        {said && <Alert color={said.ok ? "green" : "red"}>{said.text}</Alert>}
        <TextInput
          label="Issuer URL"
          description="Its discovery document is at this address + /.well-known/openid-configuration"
          placeholder="https://login.example.com"
          required
          value={form.issuer}
          error={errors.issuer}
          onChange={(e) => set("issuer", e.currentTarget.value)}
        />
        <TextInput label="Client ID" required value={form.client_id} error={errors.client_id} onChange={(e) => set("client_id", e.currentTarget.value)} />
        <PasswordInput
          label="Client secret"
          description={configuration.client_secret_set ? "Saved (stored encrypted). Leave empty to keep it." : "Stored encrypted; never shown again."}
          required={!configuration.client_secret_set}
          value={form.client_secret}
          error={errors.client_secret}
          onChange={(e) => set("client_secret", e.currentTarget.value)}
        />
        <Text fw={500} mt="sm">
          3. Who signs in, and with which role
        </Text>
        <TextInput
          label="Allowed email domains"
          description="Separated by commas. People with an address there sign in through this provider; new ones join on their first sign-in."
          placeholder="example.com"
          required
          value={form.allowed_domains}
          error={errors.allowed_domains}
          onChange={(e) => set("allowed_domains", e.currentTarget.value)}
        />
        <Select
          label="Default role"
          description="The role of newcomers, and of anyone no rule below matches"
          data={SSO_ROLES}
          value={form.default_role}
          error={errors.default_role}
          onChange={(value) => set("default_role", value ?? "viewer")}
          allowDeselect={false}
          w={{ base: "100%", xs: 240 }}
        />
        <TextInput
          label="Role claim"
          description="The claim of the ID token or userinfo whose values map to roles, for example groups. Empty: roles are set in the console only."
          placeholder="groups"
          value={form.role_claim}
          error={errors.role_claim}
          onChange={(e) => set("role_claim", e.currentTarget.value)}
        />
        <Fieldset legend="Role rules: the first that matches gives the role, at every sign-in" disabled={!form.role_claim.trim()}>
          <Stack gap="xs">
            {errors.role_mapping && <Text c="red" size="sm">{errors.role_mapping}</Text>}
            {form.role_mapping.length === 0 && <Text size="sm" c="dimmed">No rules: everyone has the default role at first, then the role set in the console.</Text>}
            {form.role_mapping.map((rule, index) => (
              <Group key={index} role="group" aria-label={`Rule ${index + 1}`} align="end" wrap="wrap" gap="xs">
                <TextInput label="Claim value" placeholder="platform-admins" value={rule.value} onChange={(e) => setRule(index, { ...rule, value: e.currentTarget.value })} style={{ flex: "1 1 160px" }} />
                <Select label="Role" data={SSO_ROLES} value={rule.role} onChange={(value) => setRule(index, { ...rule, role: value ?? "viewer" })} allowDeselect={false} w={140} />
                <Button variant="subtle" color="red" onClick={() => set("role_mapping", form.role_mapping.filter((_, i) => i !== index))} aria-label={`Remove rule ${index + 1}`}>
                  Remove
                </Button>
              </Group>
            ))}
            <Group>
              <Button variant="light" size="xs" onClick={() => set("role_mapping", [...form.role_mapping, { value: "", role: "developer" }])}>
                Add a rule
              </Button>
            </Group>
          </Stack>
        </Fieldset>
        <Switch
          mt="sm"
          label="SSO only"
          description="Members sign in only through the provider. Owners keep their password, to get back in if the provider fails."
          checked={form.sso_only}
          onChange={(e) => set("sso_only", e.currentTarget.checked)}
        />
        <Group mt="sm">
          <Button type="submit" loading={busy}>
            {configuration.configured ? "Save" : "Turn on single sign-on"}
          </Button>
          {configuration.configured && (
            <Button variant="subtle" color="red" onClick={() => setTurningOff(true)}>
              Turn off single sign-on
            </Button>
          )}
        </Group>
      </Stack>
      <ConfirmDialog
        opened={turningOff}
        title="Turn off single sign-on"
        confirmLabel="Turn off"
        onConfirm={turnOff}
        onCancel={() => setTurningOff(false)}
        error={offError}
      >
        <Text>Members then sign in with their password; those who joined through single sign-on have none yet, and set one with “Forgot password?”.</Text>
      </ConfirmDialog>
    </Stack>
  );
}
