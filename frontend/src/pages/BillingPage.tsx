import { CompositeChart } from "@mantine/charts";
import { Alert, Anchor, Button, Card, Group, Loader, Progress, SimpleGrid, Stack, Table, Text, Title } from "@mantine/core";
import { useQuery } from "@tanstack/react-query";
import { type ReactNode, useId, useState } from "react";
import { useParams } from "react-router-dom";
import { api, errorMessage, unwrap } from "../api/client";
import { keys, useAfterWrite } from "../api/queries";
import type { components } from "../api/schema";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { count, percent } from "../components/format";

type Summary = components["schemas"]["BillingSummaryOutput"];
type Plan = components["schemas"]["PlanOutput"];
type PlanChange = components["schemas"]["PlanChangeOption"];
type Invoice = components["schemas"]["InvoiceOutput"];

const DAY_MS = 86_400_000;

export function money(minor: number, currency: string): string {
  return new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() }).format(minor / 100);
}

/** A UTC day as the reader's locale writes it, in a <time> element (periods are UTC days). */
function Day({ iso, last = false }: { iso: string; last?: boolean }) {
  // A period's end is exclusive (the next one's start): its last day is the day before.
  const moment = new Date(new Date(iso).getTime() - (last ? 1 : 0));
  const text = moment.toLocaleDateString(undefined, { timeZone: "UTC", day: "numeric", month: "short", year: "numeric" });
  return <time dateTime={moment.toISOString().slice(0, 10)}>{text}</time>;
}

/** A plan's price in words: base fee, allowance, and what calls past it cost (or that they are
 * refused, on a hard-capped plan). */
export function planPrice(plan: Plan): string {
  if (plan.custom) return `By contract: contact ${plan.contact}.`;
  const base = `${money(plan.base_fee_minor, plan.currency)} a month, ${count(plan.included_calls)} calls included`;
  if (plan.hard_cap || plan.tiers.length === 0) return `${base}; calls past it are refused (429) until the period ends.`;
  const tiers = plan.tiers.map((tier) => {
    const price = `${money(Number(tier.per_million_minor), plan.currency)} per million calls`;
    return tier.up_to === null ? `${price} beyond` : `${price} up to ${count(tier.up_to)}`;
  });
  return `${base}, then ${tiers.join(", ")}.`;
}

/** The chart's points: every day of the period with its calls, the running total against the
 * allowance, and from today the projection, a straight line from the calls so far to the calls
 * projected at the period's end. */
export function chartPoints(s: Summary) {
  const start = Date.parse(s.period.start);
  const end = Date.parse(s.period.end);
  const now = start + ((end - start) * s.period.elapsed_percent) / 100;
  let total = 0;
  return s.usage_by_day.map((day) => {
    const dayStart = Date.parse(`${day.day}T00:00:00Z`);
    const dayEnd = Math.min(dayStart + DAY_MS, end);
    if (day.calls !== null) total += day.calls;
    const today = dayStart <= now && now < dayStart + DAY_MS;
    const ahead = end > now ? (dayEnd - now) / (end - now) : 0;
    return {
      day: new Date(dayStart).toLocaleDateString(undefined, { timeZone: "UTC", day: "numeric", month: "short" }),
      calls: day.calls,
      total: day.calls === null ? null : total,
      projected: today ? s.calls : dayStart > now ? Math.round(s.calls + (s.projected_calls - s.calls) * ahead) : null,
    };
  });
}

/** A titled card; its title names it for screen readers (a region). */
function Panel({ title, children }: { title: string; children: ReactNode }) {
  const id = useId();
  return (
    <Card withBorder padding="md" component="section" aria-labelledby={id}>
      <Text c="dimmed" size="sm" id={id}>
        {title}
      </Text>
      {children}
    </Card>
  );
}

function UsageChart({ s }: { s: Summary }) {
  const allowance = s.included_calls;
  const points = chartPoints(s);
  const label = `Calls per day this period, and the running total against the allowance of ${count(allowance)}`;
  return (
    <CompositeChart
      h={280}
      data={points}
      dataKey="day"
      aria-label={label}
      withLegend
      withRightYAxis
      yAxisLabel="Calls this period"
      rightYAxisLabel="Calls a day"
      valueFormatter={count}
      // The allowance stays in view however few the calls.
      yAxisProps={{ domain: [0, (top: number) => Math.max(top, allowance) * 1.1], tickFormatter: (v: number) => compact(v) }}
      // The days' bars kept to the lower third: they are read on their own axis, and should not
      // seem to cross the allowance, which is the period's, not a day's.
      rightYAxisProps={{ domain: [0, (top: number) => Math.max(top, 1) * 3], tickFormatter: (v: number) => compact(v) }}
      referenceLines={allowance ? [{ y: allowance, label: `Allowance ${count(allowance)}`, color: "red.6", labelPosition: "insideTopLeft" }] : []}
      series={[
        { name: "calls", label: "Calls that day", type: "bar", color: "blue.3", yAxisId: "right" },
        { name: "total", label: "Calls this period", type: "area", color: "blue.7" },
        { name: "projected", label: "Projected", type: "line", color: "gray.6", strokeDasharray: "5 5" },
      ]}
      withDots={false}
    />
  );
}

function compact(value: number): string {
  return new Intl.NumberFormat("en", { notation: "compact" }).format(value);
}

function ChangeDialog({ s, option, onClose, onDone }: { s: Summary; option: PlanChange | null; onClose: () => void; onDone: () => Promise<unknown> }) {
  const { slug = "" } = useParams();
  const [error, setError] = useState<string | null>(null);
  const [working, setWorking] = useState(false);
  if (!option) return null;
  const plan = option.plan;
  const verb = option.change === "upgrade" ? "Upgrade" : "Downgrade";
  const confirm = async () => {
    setError(null);
    setWorking(true);
    const path = { org_slug: slug };
    try {
      if (s.stripe_connected) {
        // Stripe bills a subscription: a new one through Checkout, a change of it in its portal.
        const call =
          option.change === "upgrade"
            ? api.POST("/api/v1/orgs/{org_slug}/billing/checkout/", { params: { path }, body: { plan: plan.slug } })
            : api.POST("/api/v1/orgs/{org_slug}/billing/portal/", { params: { path } });
        window.location.assign((await unwrap(call)).url);
        return;
      }
      await unwrap(api.POST("/api/v1/orgs/{org_slug}/billing/plan/", { params: { path }, body: { plan: plan.slug } }));
      await onDone();
      onClose();
    } catch (failed) {
      setError(errorMessage(failed));
    } finally {
      setWorking(false);
    }
  };
  const current = s.plan;
  return (
    <ConfirmDialog
      opened
      title={`${verb} to ${plan.name}?`}
      confirmLabel={verb}
      destructive={option.change !== "upgrade"}
      onConfirm={confirm}
      onCancel={() => {
        setError(null);
        onClose();
      }}
      error={error}
      working={working}
    >
      <Text fw={600}>
        {plan.name}: {planPrice(plan)}
      </Text>
      {s.stripe_connected ? (
        <Text size="sm">{option.change === "upgrade" ? "You subscribe through Stripe Checkout." : "You change the subscription in Stripe's billing portal."}</Text>
      ) : (
        <>
          <Text size="sm">
            It applies now. This period would cost {money(option.cost_so_far_minor, s.currency)} so far and {money(option.projected_cost_minor, s.currency)}{" "}
            projected to its end.
          </Text>
          {option.billed_plan !== plan.slug && (
            <Text size="sm">
              This period stays billed at {current.name}: its {count(s.calls)} calls are past the {plan.name} allowance of {count(plan.included_calls)}.
            </Text>
          )}
          {option.calls_refused && (
            <Text size="sm" c="red">
              Your gateways will refuse calls (429) until <Day iso={s.period.end} />, when the next period starts, unless you change back.
            </Text>
          )}
          <Text size="sm">You can change back at any time.</Text>
        </>
      )}
    </ConfirmDialog>
  );
}

export function BillingPage() {
  const { slug = "" } = useParams();
  const afterWrite = useAfterWrite(slug);
  const path = { org_slug: slug };
  const summary = useQuery({
    queryKey: keys.billing(slug),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/billing/", { params: { path } })),
  });
  const invoices = useQuery({
    queryKey: keys.invoices(slug),
    queryFn: () => unwrap(api.GET("/api/v1/orgs/{org_slug}/billing/invoices/", { params: { path } })),
  });
  const [changing, setChanging] = useState<PlanChange | null>(null);
  const [error, setError] = useState<string | null>(null);
  const manage = async () => {
    const { data, error: failed } = await api.POST("/api/v1/orgs/{org_slug}/billing/portal/", { params: { path } });
    if (failed) setError(errorMessage(failed));
    else if (data) window.location.assign(data.url);
  };
  if (summary.isLoading) return <Loader aria-label="Loading billing" />;
  if (summary.isError || !summary.data) return <Alert color="red">{errorMessage(summary.error)}</Alert>;
  const s = summary.data;
  const rows: Invoice[] = invoices.data?.results ?? [];
  const late = s.late_usage;
  const used = s.allowance_used_percent ?? 0;
  const billedAt = s.billed_plan !== s.plan.slug ? s.plan_changes.find((o) => o.plan.slug === s.billed_plan)?.plan.name ?? s.billed_plan : null;
  return (
    <Stack>
      <Title order={2}>Billing</Title>
      {!s.stripe_connected && (
        <Alert color="gray">Stripe is not connected: billing runs locally and invoices are made by Gateway Cloud.</Alert>
      )}
      {s.quota.exceeded && (
        <Alert color="red" title="Allowance used up">
          Your gateways answer 429 until <Day iso={s.quota.resets_at ?? s.period.end} /> or you upgrade.
        </Alert>
      )}
      {error && <Alert color="red">{error}</Alert>}
      <SimpleGrid cols={{ base: 1, sm: 3 }}>
        <Panel title="Plan">
          <Title order={3}>{s.plan.name}</Title>
          <Text size="sm">{planPrice(s.plan)}</Text>
          <Group mt="sm">
            {s.plan_changes.map((option) => (
              <Button key={option.plan.slug} variant={option.change === "upgrade" ? "filled" : "default"} onClick={() => setChanging(option)}>
                {option.change === "upgrade" ? "Upgrade" : "Downgrade"} to {option.plan.name}
              </Button>
            ))}
            {s.stripe_connected && (
              <Button variant="light" onClick={manage}>
                Manage billing
              </Button>
            )}
          </Group>
        </Panel>
        <Panel title="Cost this period">
          <Title order={3}>{money(s.cost_so_far_minor, s.currency)}</Title>
          <Text size="sm">
            so far; projected {money(s.projected_cost_minor, s.currency)} by the end of the period
          </Text>
          <Text size="xs" c="dimmed" mt={4}>
            Projected linearly: the {count(s.calls)} calls so far, over the {percent(s.period.elapsed_percent)} of the period elapsed, continued at the same rate
            to its end ({count(s.projected_calls)} calls{s.plan.hard_cap ? ", stopping at the allowance" : ""}).
          </Text>
          {billedAt && (
            <Text size="xs" c="dimmed" mt={4}>
              Billed at {billedAt}: this period's calls passed the {s.plan.name} allowance before the change.
            </Text>
          )}
        </Panel>
        <Panel title="Calls this period">
          <Title order={3}>{s.calls.toLocaleString()}</Title>
          <Text size="sm">of {count(s.included_calls)} included</Text>
          <Progress
            mt="sm"
            value={Math.min(used, 100)}
            color={used >= 100 ? "red" : used >= 80 ? "yellow" : "blue"}
            aria-label={`Allowance used: ${percent(used)}`}
          />
        </Panel>
      </SimpleGrid>
      <Card withBorder padding="md" component="section" aria-label="Usage this period">
        <Group justify="space-between" align="baseline" mb="sm" wrap="wrap">
          <Title order={3} size="h4">
            Usage this period
          </Title>
          <Text size="sm" aria-label="Billing period">
            <Day iso={s.period.start} /> – <Day iso={s.period.end} last /> (UTC)
          </Text>
        </Group>
        <UsageChart s={s} />
      </Card>
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
        <Table.ScrollContainer minWidth={560}>
          <Table striped aria-label="Invoices">
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Number</Table.Th>
                <Table.Th>Period</Table.Th>
                <Table.Th>Amount</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Document</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {rows.map((invoice) => (
                <Table.Tr key={invoice.id}>
                  <Table.Td>
                    {invoice.number}
                    {invoice.late_usage.map((line) => (
                      <Text size="xs" c="dimmed" key={line.description}>
                        {line.description}
                      </Text>
                    ))}
                  </Table.Td>
                  <Table.Td>
                    <Day iso={invoice.period_start} /> – <Day iso={invoice.period_end} last />
                  </Table.Td>
                  <Table.Td>{money(invoice.amount_due_minor ?? 0, invoice.currency ?? "usd")}</Table.Td>
                  <Table.Td>{invoice.status}</Table.Td>
                  <Table.Td>
                    <Group gap="sm" wrap="nowrap">
                      {invoice.html_url && (
                        <Anchor href={invoice.html_url} target="_blank" rel="noopener" aria-label={`Invoice ${invoice.number} as HTML`}>
                          HTML
                        </Anchor>
                      )}
                      {invoice.pdf_url && (
                        <Anchor href={invoice.pdf_url} target="_blank" rel="noopener" aria-label={`Invoice ${invoice.number} as PDF`}>
                          PDF
                        </Anchor>
                      )}
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      <ChangeDialog s={s} option={changing} onClose={() => setChanging(null)} onDone={() => afterWrite(keys.billing(slug), keys.overview(slug))} />
    </Stack>
  );
}
