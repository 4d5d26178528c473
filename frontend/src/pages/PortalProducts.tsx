// The portal's API products (a tab of PortalPage.tsx): each with its versions (routes of a cluster,
// or every route of an imported service, and an OpenAPI document) and its plans (a call limit
// each). A version's routes then require the product's authentication and admit only its
// subscribers (saas/portal/enforcement.py).
import {
  Alert,
  Badge,
  Button,
  Card,
  FileButton,
  Group,
  Loader,
  Modal,
  MultiSelect,
  NumberInput,
  Radio,
  Select,
  Stack,
  Switch,
  Table,
  Text,
  Textarea,
  TextInput,
  Title,
} from "@mantine/core";
import { useMediaQuery } from "@mantine/hooks";
import { useQuery } from "@tanstack/react-query";
import { type ReactNode, useId, useState } from "react";
import { api, errorMessage, fieldErrors, unwrap } from "../api/client";
import { keys, published, useAfterWrite } from "../api/queries";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { count } from "../components/format";
import { AUTH_TYPES, type AuthType, listOf, type Plan, planLimit, type Product, portalKeys, type Version, WINDOWS } from "./PortalApi";

type Cluster = { id: number; name: string };
type Route = { id: number; name: string; service?: string; paths?: { type?: string; value: string }[] };
type Service = { id: number; name: string };

const STATUS_COLOR = { active: "green", deprecated: "orange" } as const;

function useProducts(slug: string) {
  return useQuery({
    queryKey: portalKeys.products(slug),
    queryFn: async () => listOf<Product>(await unwrap(api.GET("/api/v1/orgs/{org_slug}/portal/products/", { params: { path: { org_slug: slug } } }))),
  });
}

/** The organization's clusters, for a version's choice (the first 200). */
function useClusters(slug: string) {
  return useQuery({
    queryKey: portalKeys.clusters(slug),
    queryFn: async () => {
      const answer = await unwrap(api.GET("/api/v1/orgs/{org_slug}/clusters/", { params: { path: { org_slug: slug }, query: { page_size: 200 } as never } }));
      return ((answer as { results?: Cluster[] }).results ?? []) as Cluster[];
    },
  });
}

/** A cluster's routes or services (the first 200), cached as the catalog caches them. */
function useCatalogRows<T>(slug: string, clusterId: string | null, kind: "routes" | "services") {
  const path = { org_slug: slug, cluster_id: clusterId ?? "" };
  return useQuery({
    queryKey: [...keys.catalog(path), kind],
    queryFn: async () => {
      const answer = await unwrap(api.GET(`/api/v1/orgs/{org_slug}/clusters/{cluster_id}/${kind}/` as never, { params: { path, query: { page_size: 200 } } } as never));
      return ((answer as { results?: T[] }).results ?? []) as T[];
    },
    enabled: clusterId !== null,
  });
}

/** The products, each with its versions and plans; a new product's form. */
export function PortalProducts({ slug, canWrite }: { slug: string; canWrite: boolean }) {
  const products = useProducts(slug);
  const clusters = useClusters(slug);
  const phone = useMediaQuery("(max-width: 48em)");
  const [creating, setCreating] = useState(false);
  if (products.error) return <Alert color="red">{errorMessage(products.error)}</Alert>;
  if (!products.data) return <Loader aria-label="Loading the products" />;
  const clusterName = (id: number) => clusters.data?.find((c) => c.id === id)?.name ?? `cluster ${id}`;
  return (
    <Stack>
      <Text maw={760}>
        A product publishes routes of your clusters to developers, with its documentation (an OpenAPI document for each version) and the plans they subscribe on. Only published products
        show in the portal.
      </Text>
      {canWrite && (
        <Group>
          <Button onClick={() => setCreating(true)}>New product</Button>
        </Group>
      )}
      {products.data.length === 0 && <Text c="dimmed">No products yet.</Text>}
      {products.data.map((product) => (
        <ProductCard key={product.id} slug={slug} product={product} canWrite={canWrite} clusterName={clusterName} />
      ))}
      <Modal opened={creating} onClose={() => setCreating(false)} title="New product" size="lg" fullScreen={phone}>
        {creating && <ProductForm slug={slug} onDone={() => setCreating(false)} />}
      </Modal>
    </Stack>
  );
}

/** A titled part of a product's card; its title names it for screen readers (a region). */
function Part({ title, action, children }: { title: string; action?: ReactNode; children: ReactNode }) {
  const id = useId();
  return (
    <Stack gap="xs" component="section" aria-labelledby={id}>
      <Group justify="space-between" gap="xs">
        <Title order={4} size="h5" id={id}>
          {title}
        </Title>
        {action}
      </Group>
      {children}
    </Stack>
  );
}

function ProductCard({ slug, product, canWrite, clusterName }: { slug: string; product: Product; canWrite: boolean; clusterName: (id: number) => string }) {
  const afterWrite = useAfterWrite(slug);
  const phone = useMediaQuery("(max-width: 48em)");
  const titleId = useId();
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [version, setVersion] = useState<Version | "new" | null>(null);
  const [deletingVersion, setDeletingVersion] = useState<Version | null>(null);
  const [plan, setPlan] = useState<Plan | "new" | null>(null);
  const [deletingPlan, setDeletingPlan] = useState<Plan | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [working, setWorking] = useState(false);
  const productPath = { org_slug: slug, id: product.id };
  const childPath = { org_slug: slug, product_id: String(product.id) };
  const clustersOf = (versions: Version[]) => [...new Set(versions.map((v) => v.cluster_id))].flatMap((id) => published({ org_slug: slug, cluster_id: String(id) }));

  /** Runs a write, then refreshes what it changed; whether it succeeded. Its error shows in the
   * open dialog, or above the product. */
  const run = async (call: Promise<{ error?: unknown }>, changed: ReturnType<typeof clustersOf>) => {
    setWorking(true);
    const { error: failed } = await call;
    setWorking(false);
    setError(failed ? errorMessage(failed) : null);
    await afterWrite(portalKeys.products(slug), ...changed);
    return !failed;
  };
  const publish = () =>
    run(api.PATCH("/api/v1/orgs/{org_slug}/portal/products/{id}/", { params: { path: productPath }, body: { published: !product.published } }), []);
  const remove = async () => {
    if (await run(api.DELETE("/api/v1/orgs/{org_slug}/portal/products/{id}/", { params: { path: productPath } }), clustersOf(product.versions))) setDeleting(false);
  };
  const removeVersion = async () => {
    if (!deletingVersion) return;
    const call = api.DELETE("/api/v1/orgs/{org_slug}/portal/products/{product_id}/versions/{id}/", { params: { path: { ...childPath, id: deletingVersion.id } } });
    if (await run(call, clustersOf([deletingVersion]))) setDeletingVersion(null);
  };
  const removePlan = async () => {
    if (!deletingPlan) return;
    const call = api.DELETE("/api/v1/orgs/{org_slug}/portal/products/{product_id}/plans/{id}/", { params: { path: { ...childPath, id: deletingPlan.id } } });
    if (await run(call, [])) setDeletingPlan(null);
  };
  const subscriptions = product.versions.reduce((total, v) => total + v.subscriptions, 0);
  const cancel = (close: () => void) => () => {
    setError(null);
    close();
  };

  return (
    <Card withBorder padding="md" component="section" aria-labelledby={titleId}>
      <Stack gap="md">
        <Group justify="space-between" align="start" gap="xs">
          <Stack gap={4} style={{ minWidth: 0 }}>
            <Group gap="xs">
              <Title order={3} size="h4" id={titleId}>
                {product.name}
              </Title>
              <Badge color={product.published ? "green" : "gray"} variant="light">
                {product.published ? "published" : "draft"}
              </Badge>
            </Group>
            <Text size="sm" c="dimmed">
              /products/{product.slug}/ · {AUTH_TYPES.find((t) => t.value === product.auth_type)?.label ?? product.auth_type} · {count(subscriptions)}{" "}
              {subscriptions === 1 ? "subscription" : "subscriptions"}
            </Text>
          </Stack>
          {canWrite && (
            <Group gap={4}>
              <Button size="xs" variant="light" onClick={publish} aria-label={`${product.published ? "Unpublish" : "Publish"} ${product.name}`}>
                {product.published ? "Unpublish" : "Publish"}
              </Button>
              <Button size="xs" variant="subtle" onClick={() => setEditing(true)} aria-label={`Edit ${product.name}`}>
                Edit
              </Button>
              <Button size="xs" variant="subtle" color="red" onClick={() => setDeleting(true)} aria-label={`Delete ${product.name}`}>
                Delete
              </Button>
            </Group>
          )}
        </Group>
        {error && !deleting && !deletingVersion && !deletingPlan && (
          <Alert color="red" withCloseButton onClose={() => setError(null)}>
            {error}
          </Alert>
        )}
        {product.description && (
          <Text size="sm" lineClamp={3} style={{ whiteSpace: "pre-wrap" }}>
            {product.description}
          </Text>
        )}
        <Part
          title="Versions"
          action={
            canWrite && (
              <Button size="xs" variant="light" onClick={() => setVersion("new")} aria-label={`Add version to ${product.name}`}>
                Add version
              </Button>
            )
          }
        >
          {product.versions.length === 0 ? (
            <Text size="sm" c="dimmed">
              No versions yet: a version names the routes developers call.
            </Text>
          ) : (
            <Table.ScrollContainer minWidth={640}>
              <Table aria-label={`Versions of ${product.name}`} verticalSpacing={4}>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Version</Table.Th>
                    <Table.Th>Status</Table.Th>
                    <Table.Th>Cluster</Table.Th>
                    <Table.Th>Routes</Table.Th>
                    <Table.Th>OpenAPI</Table.Th>
                    <Table.Th>Gateway URL</Table.Th>
                    <Table.Th>Subscriptions</Table.Th>
                    {canWrite && <Table.Th />}
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {product.versions.map((v) => (
                    <Table.Tr key={v.id}>
                      <Table.Td fw={500}>{v.name}</Table.Td>
                      <Table.Td>
                        <Badge color={STATUS_COLOR[v.status]} variant="light">
                          {v.status}
                        </Badge>
                      </Table.Td>
                      <Table.Td>{clusterName(v.cluster_id)}</Table.Td>
                      <Table.Td>{count(v.route_ids.length)}</Table.Td>
                      <Table.Td>{v.has_openapi ? "yes" : "none"}</Table.Td>
                      <Table.Td>
                        <Text size="sm" style={{ wordBreak: "break-all" }}>
                          {v.gateway_url || "–"}
                        </Text>
                      </Table.Td>
                      <Table.Td>{count(v.subscriptions)}</Table.Td>
                      {canWrite && (
                        <Table.Td>
                          <RowActions what="version" name={v.name} onEdit={() => setVersion(v)} onDelete={() => setDeletingVersion(v)} />
                        </Table.Td>
                      )}
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          )}
        </Part>
        <Part
          title="Plans"
          action={
            canWrite && (
              <Button size="xs" variant="light" onClick={() => setPlan("new")} aria-label={`Add plan to ${product.name}`}>
                Add plan
              </Button>
            )
          }
        >
          {product.plans.length === 0 ? (
            <Text size="sm" c="dimmed">
              No plans yet: developers subscribe on a plan.
            </Text>
          ) : (
            <Table.ScrollContainer minWidth={420}>
              <Table aria-label={`Plans of ${product.name}`} verticalSpacing={4}>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th>Plan</Table.Th>
                    <Table.Th>Limit</Table.Th>
                    <Table.Th>Description</Table.Th>
                    {canWrite && <Table.Th />}
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {product.plans.map((p) => (
                    <Table.Tr key={p.id}>
                      <Table.Td fw={500}>{p.name}</Table.Td>
                      <Table.Td style={{ whiteSpace: "nowrap" }}>{planLimit(p)}</Table.Td>
                      <Table.Td>
                        <Text size="sm">{p.description}</Text>
                      </Table.Td>
                      {canWrite && (
                        <Table.Td>
                          <RowActions what="plan" name={p.name} onEdit={() => setPlan(p)} onDelete={() => setDeletingPlan(p)} />
                        </Table.Td>
                      )}
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Table.ScrollContainer>
          )}
        </Part>
      </Stack>
      <Modal opened={editing} onClose={() => setEditing(false)} title={`Edit ${product.name}`} size="lg" fullScreen={phone}>
        {editing && <ProductForm slug={slug} initial={product} onDone={() => setEditing(false)} />}
      </Modal>
      <Modal
        opened={version !== null}
        onClose={() => setVersion(null)}
        title={version === "new" ? `New version of ${product.name}` : `Edit version ${version?.name ?? ""}`}
        size="lg"
        fullScreen={phone}
      >
        {version !== null && <VersionForm slug={slug} product={product} initial={version === "new" ? undefined : version} onDone={() => setVersion(null)} />}
      </Modal>
      <Modal opened={plan !== null} onClose={() => setPlan(null)} title={plan === "new" ? `New plan of ${product.name}` : `Edit plan ${plan?.name ?? ""}`} fullScreen={phone}>
        {plan !== null && <PlanForm slug={slug} product={product} initial={plan === "new" ? undefined : plan} onDone={() => setPlan(null)} />}
      </Modal>
      <ConfirmDialog opened={deleting} title={`Delete ${product.name}`} confirmLabel="Delete" onConfirm={remove} onCancel={cancel(() => setDeleting(false))} error={error} working={working}>
        <Text>
          Delete {product.name} with its versions and plans? Its {count(subscriptions)} {subscriptions === 1 ? "subscription ends" : "subscriptions end"}: those applications lose access to its
          routes.
        </Text>
      </ConfirmDialog>
      <ConfirmDialog
        opened={deletingVersion !== null}
        title={`Delete version ${deletingVersion?.name ?? ""}`}
        confirmLabel="Delete"
        onConfirm={removeVersion}
        onCancel={cancel(() => setDeletingVersion(null))}
        error={error}
        working={working}
      >
        <Text>
          Delete version {deletingVersion?.name} of {product.name}? Its {count(deletingVersion?.subscriptions ?? 0)} {deletingVersion?.subscriptions === 1 ? "subscription ends" : "subscriptions end"}:
          those applications lose access to its routes.
        </Text>
      </ConfirmDialog>
      <ConfirmDialog
        opened={deletingPlan !== null}
        title={`Delete plan ${deletingPlan?.name ?? ""}`}
        confirmLabel="Delete"
        onConfirm={removePlan}
        onCancel={cancel(() => setDeletingPlan(null))}
        error={error}
        working={working}
      >
        <Text>Delete the plan {deletingPlan?.name}? A plan that applications hold cannot be deleted: move them to another plan first.</Text>
      </ConfirmDialog>
    </Card>
  );
}

/** Save and Cancel at a form's foot. */
function Actions({ onCancel, saving, label }: { onCancel: () => void; saving: boolean; label: string }) {
  return (
    <Group justify="end" mt="xs">
      <Button variant="default" onClick={onCancel}>
        Cancel
      </Button>
      <Button type="submit" loading={saving}>
        {label}
      </Button>
    </Group>
  );
}

type ProductFields = { name: string; slug: string; description: string; auth_type: AuthType; published: boolean };

/** A new product, or with `initial` the changes to one. */
export function ProductForm({ slug, initial, onDone }: { slug: string; initial?: Product; onDone: () => void }) {
  const afterWrite = useAfterWrite(slug);
  const [form, setForm] = useState<ProductFields>({
    name: initial?.name ?? "",
    slug: initial?.slug ?? "",
    description: initial?.description ?? "",
    auth_type: initial?.auth_type ?? "key-auth",
    published: initial?.published ?? false,
  });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const set = <K extends keyof ProductFields>(name: K, value: ProductFields[K]) => setForm({ ...form, [name]: value });
  const subscribed = (initial?.versions ?? []).some((v) => v.subscriptions > 0);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setSaving(true);
    const { slug: address, ...rest } = form;
    const body = { ...rest, ...(address.trim() ? { slug: address.trim() } : {}) };
    const { error: failed } = initial
      ? await api.PATCH("/api/v1/orgs/{org_slug}/portal/products/{id}/", { params: { path: { org_slug: slug, id: initial.id } }, body })
      : await api.POST("/api/v1/orgs/{org_slug}/portal/products/", { params: { path: { org_slug: slug } }, body });
    setSaving(false);
    setErrors(failed ? fieldErrors(failed) : {});
    setError(failed ? errorMessage(failed) : null);
    if (failed) return;
    // A product whose authentication changed guards its routes anew: their clusters publish.
    const clusters = initial && initial.auth_type !== form.auth_type ? [...new Set(initial.versions.map((v) => v.cluster_id))] : [];
    await afterWrite(portalKeys.products(slug), ...clusters.flatMap((id) => published({ org_slug: slug, cluster_id: String(id) })));
    onDone();
  };
  return (
    <Stack component="form" onSubmit={submit} gap="sm">
      {error && <Alert color="red">{error}</Alert>}
      <TextInput label="Name" required data-autofocus maxLength={100} value={form.name} error={errors.name} onChange={(e) => set("name", e.currentTarget.value)} />
      <TextInput
        label="Address"
        description="In the portal's links: /products/<address>/. Letters, digits and -; empty: made from the name."
        placeholder="payments"
        maxLength={60}
        value={form.slug}
        error={errors.slug}
        onChange={(e) => set("slug", e.currentTarget.value)}
      />
      <Textarea
        label="Description"
        description="Markdown: what the API does, for the developers who read the portal."
        autosize
        minRows={5}
        maxRows={14}
        value={form.description}
        error={errors.description}
        styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)" } }}
        onChange={(e) => set("description", e.currentTarget.value)}
      />
      <Select
        label="Authentication"
        description={subscribed ? "Applications are subscribed: it cannot change now." : "What developers' applications send: its credentials are made for them."}
        data={AUTH_TYPES}
        value={form.auth_type}
        error={errors.auth_type}
        allowDeselect={false}
        disabled={subscribed}
        onChange={(value) => set("auth_type", (value as AuthType | null) ?? form.auth_type)}
      />
      <Switch
        label="Published"
        description="Shown in the portal: developers read its documentation and subscribe."
        checked={form.published}
        onChange={(e) => set("published", e.currentTarget.checked)}
      />
      <Actions onCancel={onDone} saving={saving} label={initial ? "Save" : "Create product"} />
    </Stack>
  );
}

type Covers = "routes" | "service";
type VersionFields = {
  name: string;
  status: Version["status"];
  cluster: string | null;
  covers: Covers;
  routes: string[];
  service: string | null;
  openapi: string;
  gateway_url: string;
};

/** Reads a picked file as text. */
function readText(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result ?? ""));
    reader.onerror = () => reject(reader.error);
    reader.readAsText(file);
  });
}

function routeLabel(route: Route): string {
  const paths = (route.paths ?? []).map((p) => p.value).join(", ");
  return paths ? `${route.name} (${paths})` : route.name;
}

/** A new version of `product`, or with `initial` the version replaced (PUT). */
export function VersionForm({ slug, product, initial, onDone }: { slug: string; product: Product; initial?: Version; onDone: () => void }) {
  const afterWrite = useAfterWrite(slug);
  const clusters = useClusters(slug);
  const [form, setForm] = useState<VersionFields>({
    name: initial?.name ?? "",
    status: initial?.status ?? "active",
    cluster: initial ? String(initial.cluster_id) : null,
    covers: "routes",
    routes: (initial?.route_ids ?? []).map(String),
    service: null,
    openapi: "",
    gateway_url: initial?.gateway_url ?? "",
  });
  const routes = useCatalogRows<Route>(slug, form.cluster, "routes");
  const services = useCatalogRows<Service>(slug, form.cluster, "services");
  const [file, setFile] = useState<string | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const set = <K extends keyof VersionFields>(name: K, value: VersionFields[K]) => setForm((old) => ({ ...old, [name]: value }));

  const upload = async (picked: File | null) => {
    if (!picked) return;
    try {
      const text = await readText(picked);
      set("openapi", text);
      setFile(`${picked.name} (${count(Math.ceil(picked.size / 1024))} KB)`);
    } catch {
      setErrors((old) => ({ ...old, openapi: `${picked.name} could not be read.` }));
    }
  };
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    if (form.cluster === null) {
      setErrors({ cluster_id: "Choose the cluster whose routes the version covers." });
      return;
    }
    setSaving(true);
    const body = {
      name: form.name,
      status: form.status,
      cluster_id: Number(form.cluster),
      gateway_url: form.gateway_url.trim(),
      ...(form.covers === "routes" ? { route_ids: form.routes.map(Number) } : { service: form.service ?? "" }),
      ...(form.openapi.trim() ? { openapi: form.openapi } : {}),
    };
    const path = { org_slug: slug, product_id: String(product.id) };
    const { error: failed } = initial
      ? await api.PUT("/api/v1/orgs/{org_slug}/portal/products/{product_id}/versions/{id}/", { params: { path: { ...path, id: initial.id } }, body })
      : await api.POST("/api/v1/orgs/{org_slug}/portal/products/{product_id}/versions/", { params: { path }, body });
    setSaving(false);
    setErrors(failed ? fieldErrors(failed) : {});
    setError(failed ? errorMessage(failed) : null);
    if (failed) return;
    // Its routes were guarded (and a cluster left, unguarded): those clusters publish.
    const changed = new Set([form.cluster, ...(initial ? [String(initial.cluster_id)] : [])]);
    await afterWrite(portalKeys.products(slug), ...[...changed].flatMap((id) => published({ org_slug: slug, cluster_id: id })));
    onDone();
  };

  const authLabel = AUTH_TYPES.find((t) => t.value === product.auth_type)?.label ?? product.auth_type;
  return (
    <Stack component="form" onSubmit={submit} gap="sm">
      {error && <Alert color="red">{error}</Alert>}
      <Alert color="blue">
        The version's routes then require {product.name}'s authentication ({authLabel}) and admit only the applications subscribed to it.
      </Alert>
      <Group grow align="start" wrap="wrap">
        <TextInput label="Name" required data-autofocus placeholder="v1" maxLength={30} value={form.name} error={errors.name} onChange={(e) => set("name", e.currentTarget.value)} style={{ minWidth: 140 }} />
        <Select
          label="Status"
          data={[
            { value: "active", label: "active" },
            { value: "deprecated", label: "deprecated: no new subscriptions" },
          ]}
          value={form.status}
          error={errors.status}
          allowDeselect={false}
          onChange={(value) => set("status", (value as Version["status"] | null) ?? form.status)}
          style={{ minWidth: 140 }}
        />
      </Group>
      <Select
        label="Cluster"
        required
        searchable
        disabled={initial !== undefined && initial.subscriptions > 0}
        description={initial !== undefined && initial.subscriptions > 0 ? "Applications are subscribed: the cluster cannot change." : undefined}
        placeholder={clusters.isLoading ? "Loading…" : "Choose a cluster"}
        nothingFoundMessage="No clusters"
        data={(clusters.data ?? []).map((c) => ({ value: String(c.id), label: c.name }))}
        value={form.cluster}
        error={errors.cluster_id}
        onChange={(value) => setForm((old) => ({ ...old, cluster: value, routes: value === old.cluster ? old.routes : [], service: null }))}
      />
      <Radio.Group label="It covers" value={form.covers} onChange={(value) => set("covers", value as Covers)}>
        <Stack gap={6} mt={6}>
          <Radio value="routes" label="Routes I choose" />
          <Radio value="service" label="Every route of a service (such as one made by an OpenAPI import)" />
        </Stack>
      </Radio.Group>
      {form.covers === "routes" ? (
        <MultiSelect
          label="Routes"
          required
          searchable
          disabled={form.cluster === null}
          placeholder={form.cluster === null ? "Choose a cluster first" : undefined}
          nothingFoundMessage="No routes in this cluster"
          data={(routes.data ?? []).map((r) => ({ value: String(r.id), label: routeLabel(r) }))}
          value={form.routes}
          error={errors.route_ids}
          onChange={(value) => set("routes", value)}
        />
      ) : (
        <Select
          label="Service"
          required
          searchable
          disabled={form.cluster === null}
          placeholder={form.cluster === null ? "Choose a cluster first" : undefined}
          description="Its routes now; a route added to it later joins when the version is saved again."
          nothingFoundMessage="No services in this cluster"
          data={(services.data ?? []).map((s) => s.name)}
          value={form.service}
          error={errors.service ?? errors.route_ids}
          onChange={(value) => set("service", value)}
        />
      )}
      <Stack gap={4}>
        <Textarea
          label="OpenAPI document"
          description={
            form.covers === "service"
              ? "JSON or YAML, uploaded or pasted. Empty: the document the service was imported from."
              : initial?.has_openapi
                ? "JSON or YAML, uploaded or pasted. Empty: the current document stays."
                : "JSON or YAML, uploaded or pasted: the portal's documentation of this version."
          }
          autosize
          minRows={3}
          maxRows={10}
          value={form.openapi}
          error={errors.openapi}
          styles={{ input: { fontFamily: "var(--mantine-font-family-monospace)", fontSize: "var(--mantine-font-size-xs)" } }}
          onChange={(e) => {
            set("openapi", e.currentTarget.value);
            setFile(null);
          }}
        />
        <Group gap="xs">
          <FileButton onChange={upload} accept=".yaml,.yml,.json,application/json,application/yaml,text/yaml" inputProps={{ "aria-label": "OpenAPI document file" }}>
            {(props) => (
              <Button {...props} size="xs" variant="light">
                Upload a file
              </Button>
            )}
          </FileButton>
          {file && (
            <Text size="xs" c="dimmed">
              Read from {file}
            </Text>
          )}
        </Group>
      </Stack>
      <TextInput
        label="Gateway URL"
        description="Where developers call this version: the address of the cluster's gateways as their clients reach them"
        placeholder="https://api.example.com"
        value={form.gateway_url}
        error={errors.gateway_url}
        onChange={(e) => set("gateway_url", e.currentTarget.value)}
      />
      <Actions onCancel={onDone} saving={saving} label={initial ? "Save version" : "Add version"} />
    </Stack>
  );
}

type PlanFields = { name: string; description: string; limit: number | string; window: string };

/** A new plan of `product`, or with `initial` the plan replaced (PUT): a changed limit applies to
 * its subscribers at once. */
export function PlanForm({ slug, product, initial, onDone }: { slug: string; product: Product; initial?: Plan; onDone: () => void }) {
  const afterWrite = useAfterWrite(slug);
  const [form, setForm] = useState<PlanFields>({
    name: initial?.name ?? "",
    description: initial?.description ?? "",
    limit: initial?.limit_count ?? "",
    window: String(initial?.time_window ?? 60),
  });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const set = <K extends keyof PlanFields>(name: K, value: PlanFields[K]) => setForm({ ...form, [name]: value });
  const unlimited = form.limit === "";
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setSaving(true);
    const body = {
      name: form.name,
      description: form.description,
      limit_count: unlimited ? null : Number(form.limit),
      time_window: unlimited ? null : Number(form.window),
    };
    const path = { org_slug: slug, product_id: String(product.id) };
    const { error: failed } = initial
      ? await api.PUT("/api/v1/orgs/{org_slug}/portal/products/{product_id}/plans/{id}/", { params: { path: { ...path, id: initial.id } }, body })
      : await api.POST("/api/v1/orgs/{org_slug}/portal/products/{product_id}/plans/", { params: { path }, body });
    setSaving(false);
    setErrors(failed ? fieldErrors(failed) : {});
    setError(failed ? errorMessage(failed) : null);
    if (failed) return;
    // A changed limit changes its subscribers' consumers, in every cluster of the product.
    const clusters = initial ? [...new Set(product.versions.map((v) => v.cluster_id))] : [];
    await afterWrite(portalKeys.products(slug), ...clusters.flatMap((id) => published({ org_slug: slug, cluster_id: String(id) })));
    onDone();
  };
  return (
    <Stack component="form" onSubmit={submit} gap="sm">
      {error && <Alert color="red">{error}</Alert>}
      <TextInput label="Name" required data-autofocus placeholder="free" maxLength={50} value={form.name} error={errors.name} onChange={(e) => set("name", e.currentTarget.value)} />
      <TextInput label="Description" placeholder="For trying it out" maxLength={300} value={form.description} error={errors.description} onChange={(e) => set("description", e.currentTarget.value)} />
      <Group align="start" gap="xs" wrap="nowrap">
        <NumberInput
          label="Calls"
          description="Empty: unlimited"
          min={1}
          max={1_000_000_000}
          allowDecimal={false}
          allowNegative={false}
          thousandSeparator=","
          value={form.limit}
          error={errors.limit_count}
          onChange={(value) => set("limit", value)}
          style={{ flex: 1, minWidth: 0 }}
        />
        <Select
          label="Per"
          description=" "
          data={WINDOWS}
          value={form.window}
          error={errors.time_window}
          allowDeselect={false}
          disabled={unlimited}
          onChange={(value) => set("window", value ?? form.window)}
          style={{ flex: 1, minWidth: 0 }}
        />
      </Group>
      <Text size="sm" c="dimmed">
        {unlimited ? "Unlimited calls." : `At most ${planLimit({ limit_count: Number(form.limit), time_window: Number(form.window) })} for each subscribed application.`}
        {initial && product.versions.some((v) => v.subscriptions > 0) ? " A change applies to its subscribers at once." : ""}
      </Text>
      <Actions onCancel={onDone} saving={saving} label={initial ? "Save plan" : "Add plan"} />
    </Stack>
  );
}

/** A table row's Edit and Delete, named after what the row is for screen readers. */
function RowActions({ what, name, onEdit, onDelete }: { what: string; name: string; onEdit: () => void; onDelete: () => void }) {
  return (
    <Group gap={4} wrap="nowrap">
      <Button size="xs" variant="subtle" onClick={onEdit} aria-label={`Edit ${what} ${name}`}>
        Edit
      </Button>
      <Button size="xs" variant="subtle" color="red" onClick={onDelete} aria-label={`Delete ${what} ${name}`}>
        Delete
      </Button>
    </Group>
  );
}
