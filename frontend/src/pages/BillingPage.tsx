import { Alert, Anchor, Button, Card, Group, Loader, Progress, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { useParams } from "react-router-dom";
import { api, errorMessage, unwrap } from "../api/client";
import { keys, useAfterWrite } from "../api/queries";

// Calls of a closed period counted after it was billed, carried into a later bill (amount_minor
// null: Stripe prices them within the period's metered calls).
type LateUsageLine = { description: string; quantity: number; amount_minor: number | null; from_period: string };
type Summary = {
  plan: { slug: string; name: string; included_calls: number; hard_cap: boolean };
  stripe_connected: boolean;
  period: { start: string; end: string };
  calls: number;
  included_calls: number;
  allowance_used_percent: number | null;
  cost_so_far_minor: number;
  projected_cost_minor: number;
  currency: string;
  quota: { exceeded: boolean; resets_at: string | null };
  late_usage?: LateUsageLine[];
};
type Invoice = {
  id: number;
  number: string;
  period_start: string;
  amount_due_minor: number;
  currency: string;
  status: string;
  hosted_invoice_url: string;
  document_url: string | null;
  late_usage?: LateUsageLine[];
};

function money(minor: number, currency: string): string {
  return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(minor / 100);
}

export function BillingPage() {
  const { slug = "" } = useParams();
  const afterWrite = useAfterWrite(slug);
  const path = { org_slug: slug };
  const summary = useQuery({
    queryKey: keys.billing(slug),
    queryFn: async () => (await unwrap(api.GET("/api/v1/orgs/{org_slug}/billing/", { params: { path } }))) as unknown as Summary,
  });
  const invoices = useQuery({
    queryKey: keys.invoices(slug),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/billing/invoices/", { params: { path } })),
  });
  const [error, setError] = useState<string | null>(null);
  const upgrade = async () => {
    setError(null);
    if (summary.data?.stripe_connected) {
      const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/billing/checkout/", {
        params: { path },
        body: { plan: "pro" },
      });
      if (failed) setError(errorMessage(failed));
      else window.location.assign((data as unknown as { url: string }).url);
      return;
    }
    const { error: failed } = await api.POST("/api/v1/orgs/{org_slug}/billing/plan/", { params: { path }, body: { plan: "pro" } });
    if (failed) setError(errorMessage(failed));
    await afterWrite(keys.billing(slug));
  };
  const manage = async () => {
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/billing/portal/", { params: { path } });
    if (failed) setError(errorMessage(failed));
    else window.location.assign((data as unknown as { url: string }).url);
  };
  if (summary.isLoading) return <Loader aria-label="Loading billing" />;
  if (summary.isError || !summary.data) return <Alert color="red">{errorMessage(summary.error)}</Alert>;
  const s = summary.data;
  const rows = ((invoices.data as { results?: Invoice[] } | undefined)?.results ?? []) as Invoice[];
  const late = s.late_usage ?? [];
  return (
    <Stack>
      <Title order={2}>Billing</Title>
      {!s.stripe_connected && (
        <Alert color="gray">Stripe is not connected: billing runs locally and invoices are made by Gateway Cloud.</Alert>
      )}
      {s.quota.exceeded && (
        <Alert color="red" title="Allowance used up">
          Your gateways answer 429 until {new Date(s.quota.resets_at ?? s.period.end).toUTCString()} or you upgrade.
        </Alert>
      )}
      {error && <Alert color="red">{error}</Alert>}
      <SimpleGrid cols={{ base: 1, sm: 3 }}>
        <Card withBorder>
          <Text c="dimmed" size="sm">
            Plan
          </Text>
          <Title order={3}>{s.plan.name}</Title>
          <Group mt="sm">
            {s.plan.slug === "free" && <Button onClick={upgrade}>Upgrade to Pro</Button>}
            {s.stripe_connected && (
              <Button variant="light" onClick={manage}>
                Manage billing
              </Button>
            )}
          </Group>
        </Card>
        <Card withBorder>
          <Text c="dimmed" size="sm">
            Cost this period
          </Text>
          <Title order={3}>{money(s.cost_so_far_minor, s.currency)}</Title>
          <Text size="sm">projected {money(s.projected_cost_minor, s.currency)}</Text>
        </Card>
        <Card withBorder>
          <Text c="dimmed" size="sm">
            Calls this period
          </Text>
          <Title order={3}>{s.calls.toLocaleString()}</Title>
          <Text size="sm">of {s.included_calls.toLocaleString()} included</Text>
          <Progress
            mt="sm"
            value={Math.min(s.allowance_used_percent ?? 0, 100)}
            color={(s.allowance_used_percent ?? 0) >= 100 ? "red" : (s.allowance_used_percent ?? 0) >= 80 ? "yellow" : "blue"}
            aria-label="Allowance used"
          />
        </Card>
      </SimpleGrid>
      {late.length > 0 && (
        <Alert color="yellow" title="Late usage on your next invoice">
          {late.map((line) => (
            <Text size="sm" key={line.description}>
              {line.description}
              {line.amount_minor !== null && `: ${money(line.amount_minor, s.currency)}`}
            </Text>
          ))}
        </Alert>
      )}
      <Title order={3}>Invoices</Title>
      {invoices.isSuccess && rows.length === 0 && <Text c="dimmed">No invoices yet.</Text>}
      {rows.length > 0 && (
        <Table.ScrollContainer minWidth={560}><Table striped>
          <Table.Thead>
            <Table.Tr>
              <Table.Th>Number</Table.Th>
              <Table.Th>Period</Table.Th>
              <Table.Th>Amount</Table.Th>
              <Table.Th>Status</Table.Th>
              <Table.Th />
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {rows.map((invoice) => (
              <Table.Tr key={invoice.id}>
                <Table.Td>
                  {invoice.number}
                  {(invoice.late_usage ?? []).map((line) => (
                    <Text size="xs" c="dimmed" key={line.description}>
                      {line.description}
                    </Text>
                  ))}
                </Table.Td>
                <Table.Td>{invoice.period_start.slice(0, 7)}</Table.Td>
                <Table.Td>{money(invoice.amount_due_minor, invoice.currency)}</Table.Td>
                <Table.Td>{invoice.status}</Table.Td>
                <Table.Td>
                  <Anchor href={invoice.document_url ?? invoice.hosted_invoice_url} target="_blank">
                    View
                  </Anchor>
                </Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table></Table.ScrollContainer>
      )}
    </Stack>
  );
}
