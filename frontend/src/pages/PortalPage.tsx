// The organization's developer portal (saas/portal): where outside developers find its APIs, sign
// up, and subscribe their applications. Its settings (owners and admins), the API products it
// publishes with their versions and plans, and the developers with their applications. Loaded
// when first opened (App.tsx).
import { Alert, Anchor, Badge, Button, ColorInput, Group, Loader, Select, Stack, Switch, Tabs, Text, TextInput, Title } from "@mantine/core";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useParams } from "react-router-dom";
import { api, errorMessage, fieldErrors } from "../api/client";
import { keys } from "../api/queries";
import { CLUSTER_WRITERS, useMe } from "../session";
import { type PortalSettings, portalKeys, SIGNUP_MODES, type SignupMode, usePortalSettings } from "./PortalApi";
import { PortalDevelopers } from "./PortalDevelopers";
import { PortalProducts } from "./PortalProducts";

// Who may change what (tenants/roles.py): the settings need org:write, products and developers
// catalog:write.
const PRODUCT_WRITERS = ["owner", "admin", "developer"];

export function PortalPage() {
  const { slug = "" } = useParams();
  const me = useMe();
  const role = me.data?.organizations.find((o) => o.slug === slug)?.role ?? "";
  const settings = usePortalSettings(slug);
  return (
    <Stack>
      <Group justify="space-between" gap="xs">
        <Group gap="xs">
          <Title order={2}>Developer portal</Title>
          {settings.data && (
            <Badge color={settings.data.enabled ? "green" : "gray"} variant="light">
              {settings.data.enabled ? "on" : "off"}
            </Badge>
          )}
        </Group>
        {settings.data && (
          <Anchor href={settings.data.url} target="_blank" rel="noreferrer">
            Open portal
          </Anchor>
        )}
      </Group>
      <Tabs defaultValue="settings" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="settings">Settings</Tabs.Tab>
          <Tabs.Tab value="products">Products</Tabs.Tab>
          <Tabs.Tab value="developers">Developers</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="settings" pt="md">
          <PortalSettingsPanel slug={slug} canWrite={CLUSTER_WRITERS.includes(role)} />
        </Tabs.Panel>
        <Tabs.Panel value="products" pt="md">
          <PortalProducts slug={slug} canWrite={PRODUCT_WRITERS.includes(role)} />
        </Tabs.Panel>
        <Tabs.Panel value="developers" pt="md">
          <PortalDevelopers slug={slug} canWrite={PRODUCT_WRITERS.includes(role)} />
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

type Form = { enabled: boolean; title: string; logo_url: string; primary_color: string; signup_mode: SignupMode; custom_host: string };

function formOf(settings: PortalSettings): Form {
  const { enabled, title, logo_url, primary_color, signup_mode, custom_host } = settings;
  return { enabled, title, logo_url, primary_color, signup_mode, custom_host };
}

/** The portal's settings: on or off, its look, who may sign up, and a host name of its own. */
export function PortalSettingsPanel({ slug, canWrite }: { slug: string; canWrite: boolean }) {
  const queries = useQueryClient();
  const settings = usePortalSettings(slug);
  const [form, setForm] = useState<Form | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [said, setSaid] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (settings.data && form === null) setForm(formOf(settings.data));
  }, [settings.data, form]);

  if (settings.error) return <Alert color="red">{errorMessage(settings.error)}</Alert>;
  if (!settings.data || !form) return <Loader aria-label="Loading the portal's settings" />;
  const current = settings.data;
  const set = <K extends keyof Form>(name: K, value: Form[K]) => setForm({ ...form, [name]: value });

  const save = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    const { data, error } = await api.PATCH("/api/v1/orgs/{org_slug}/portal/settings/", { params: { path: { org_slug: slug } }, body: form });
    setBusy(false);
    setErrors(error ? fieldErrors(error) : {});
    if (error) {
      setSaid({ ok: false, text: errorMessage(error) });
      return;
    }
    const saved = data as PortalSettings;
    queries.setQueryData(portalKeys.settings(slug), saved);
    await queries.invalidateQueries({ queryKey: keys.audit(slug) });
    setForm(formOf(saved));
    setSaid({ ok: true, text: saved.enabled ? `Saved. Developers find the portal at ${saved.url}` : "Saved. The portal is off: developers cannot reach it." });
  };

  return (
    <Stack maw={640} component="form" onSubmit={save} gap="sm">
      <Text>
        Developers find the portal at{" "}
        <Anchor href={current.url} target="_blank" rel="noreferrer" style={{ wordBreak: "break-all" }}>
          {current.url}
        </Anchor>
        : they read your published products' documentation, sign up, and get keys for their applications.
      </Text>
      {!canWrite && <Alert color="blue">Only owners and admins change the portal's settings.</Alert>}
      {said && <Alert color={said.ok ? "green" : "red"}>{said.text}</Alert>}
      <Switch
        label="Portal enabled"
        description={
          form.enabled
            ? "On: developers can read your published products, sign up and get keys. Turned off, the portal's pages answer 404."
            : "Off: the portal's pages answer 404. Applications already subscribed keep working at the gateway."
        }
        checked={form.enabled}
        disabled={!canWrite}
        onChange={(e) => set("enabled", e.currentTarget.checked)}
      />
      <TextInput label="Title" required maxLength={100} value={form.title} error={errors.title} disabled={!canWrite} onChange={(e) => set("title", e.currentTarget.value)} />
      <TextInput
        label="Logo URL"
        description="An image at an https:// address, shown in the portal's header"
        placeholder="https://example.com/logo.svg"
        value={form.logo_url}
        error={errors.logo_url}
        disabled={!canWrite}
        onChange={(e) => set("logo_url", e.currentTarget.value)}
      />
      <ColorInput
        label="Colour"
        description="The portal's links and buttons"
        format="hex"
        eyeDropperButtonProps={{ "aria-label": "Pick the colour from the screen" }}
        w={{ base: "100%", xs: 240 }}
        value={form.primary_color}
        error={errors.primary_color}
        disabled={!canWrite}
        onChange={(value) => set("primary_color", value)}
      />
      <Select
        label="Sign-up"
        description="Who may open an account: every developer confirms their email first"
        data={SIGNUP_MODES}
        value={form.signup_mode}
        error={errors.signup_mode}
        allowDeselect={false}
        disabled={!canWrite}
        onChange={(value) => set("signup_mode", (value as SignupMode | null) ?? form.signup_mode)}
      />
      <TextInput
        label="Custom host"
        description="A host name of yours, such as developers.example.com, whose DNS points at Gateway Cloud: the portal answers there too. Empty: none."
        placeholder="developers.example.com"
        value={form.custom_host}
        error={errors.custom_host}
        disabled={!canWrite}
        onChange={(e) => set("custom_host", e.currentTarget.value.trim())}
      />
      {canWrite && (
        <Group mt="sm">
          <Button type="submit" loading={busy}>
            Save settings
          </Button>
        </Group>
      )}
    </Stack>
  );
}
