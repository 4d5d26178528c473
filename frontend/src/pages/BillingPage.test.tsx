import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { keys } from "../api/queries";
import type { components } from "../api/schema";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { BillingPage, chartPoints, planPrice } from "./BillingPage";

type Summary = components["schemas"]["BillingSummaryOutput"];

const FREE = {
  slug: "free",
  name: "Free",
  currency: "usd",
  base_fee_minor: 0,
  included_calls: 1_000_000,
  hard_cap: true,
  custom: false,
  contact: "",
  tiers: [],
};
const PRO = {
  slug: "pro",
  name: "Pro",
  currency: "usd",
  base_fee_minor: 4900,
  included_calls: 5_000_000,
  hard_cap: false,
  custom: false,
  contact: "",
  tiers: [
    { up_to: 100_000_000, per_million_minor: "200" },
    { up_to: null, per_million_minor: "100" },
  ],
};
const PLANS = { free: FREE, pro: PRO };

/** November 2026, half way through its 15th day (14.5 of 30 days elapsed). */
function summary(plan: "free" | "pro", calls = 3_000_000): Summary {
  const other = plan === "pro" ? "free" : "pro";
  return {
    plan: PLANS[plan],
    stripe_connected: false,
    subscription_status: null,
    period: { start: "2026-11-01T00:00:00Z", end: "2026-12-01T00:00:00Z", elapsed_percent: 48.33 },
    calls,
    usage_by_day: Array.from({ length: 30 }, (_, i) => ({
      day: `2026-11-${String(i + 1).padStart(2, "0")}`,
      calls: i < 15 ? (i === 5 ? calls : 0) : null,
    })),
    included_calls: PLANS[plan].included_calls,
    allowance_used_percent: (100 * calls) / PLANS[plan].included_calls,
    billed_plan: "pro",
    cost_so_far_minor: 4900,
    projected_calls: 6_206_896,
    projected_cost_minor: 5141,
    late_usage: [],
    currency: "usd",
    quota: { exceeded: plan === "free" && calls >= 1_000_000, resets_at: plan === "free" ? "2026-12-01T00:00:00Z" : null },
    plan_changes: [
      {
        plan: PLANS[other],
        change: other === "pro" ? "upgrade" : "downgrade",
        billed_plan: "pro",
        cost_so_far_minor: 4900,
        projected_cost_minor: other === "pro" ? 5141 : 4900,
        calls_refused: other === "free" && calls >= 1_000_000,
      },
    ],
  };
}

const INVOICE = {
  id: 7,
  number: "L-00001-202610",
  source: "local",
  period_start: "2026-10-01T00:00:00Z",
  period_end: "2026-11-01T00:00:00Z",
  currency: "usd",
  amount_due_minor: 5600,
  status: "open",
  plan: "pro",
  calls: 8_500_000,
  hosted_invoice_url: "",
  invoice_pdf_url: "",
  document_url: "/api/v1/orgs/acme/billing/invoices/7/document/",
  html_url: "/api/v1/orgs/acme/billing/invoices/7/document/",
  pdf_url: "/api/v1/orgs/acme/billing/invoices/7/document/?as=pdf",
  late_usage: [],
};

const PAGE = { url: "/orgs/acme/billing", route: "/orgs/:slug/billing" };

afterEach(() => vi.unstubAllGlobals());
vi.setConfig({ testTimeout: 20_000 });

describe("the billing page", () => {
  it("shows the period's dates, its usage chart, the cost so far and projected, and how it is projected", async () => {
    answerApi({
      "GET /api/v1/orgs/acme/billing/": [200, summary("pro")],
      "GET /api/v1/orgs/acme/billing/invoices/": [200, { count: 0, results: [] }],
    });
    renderPage(<BillingPage />, PAGE);

    const usage = await screen.findByRole("region", { name: "Usage this period" });
    const dates = within(usage).getByLabelText("Billing period");
    expect([...dates.querySelectorAll("time")].map((t) => t.getAttribute("datetime"))).toEqual(["2026-11-01", "2026-11-30"]);
    expect(within(usage).getByLabelText(/against the allowance of 5,000,000$/)).toBeTruthy();
    const cost = screen.getByRole("region", { name: "Cost this period" });
    expect(within(cost).getByRole("heading", { name: "$49.00" })).toBeTruthy();
    expect(cost.textContent).toContain("projected $51.41 by the end of the period");
    expect(cost.textContent).toContain("the 3,000,000 calls so far, over the 48.33% of the period elapsed, continued at the same rate to its end (6,206,896 calls)");
    expect(screen.getByRole("region", { name: "Plan" }).textContent).toContain(
      "$49.00 a month, 5,000,000 calls included, then $2.00 per million calls up to 100,000,000, $1.00 per million calls beyond.",
    );
    expect(await screen.findByText("No invoices yet.")).toBeTruthy();
  });

  it("downgrades after a confirmation stating the price and what follows, then upgrades back", async () => {
    let plan: "free" | "pro" = "pro";
    const calls = answerApi({
      "GET /api/v1/orgs/acme/billing/": () => [200, summary(plan)],
      "GET /api/v1/orgs/acme/billing/invoices/": [200, { count: 0, results: [] }],
      "POST /api/v1/orgs/acme/billing/plan/": (body) => {
        plan = (body as { plan: "free" | "pro" }).plan;
        return [200, summary(plan)];
      },
    });
    const { queries } = renderPage(<BillingPage />, PAGE);
    queries.setQueryData(keys.audit("acme"), { results: [] }); // the audit log, read before
    queries.setQueryData(keys.overview("acme"), {}); // and the overview, whose quota changes

    await userEvent.click(await screen.findByRole("button", { name: "Downgrade to Free" }));
    const dialog = await screen.findByRole("dialog", { name: "Downgrade to Free?" });
    expect(dialog.textContent).toContain("Free: $0.00 a month, 1,000,000 calls included; calls past it are refused (429) until the period ends.");
    expect(dialog.textContent).toContain("This period would cost $49.00 so far and $49.00 projected to its end.");
    expect(dialog.textContent).toContain("This period stays billed at Pro: its 3,000,000 calls are past the Free allowance of 1,000,000.");
    expect(dialog.textContent).toContain("Your gateways will refuse calls (429) until");
    expect(dialog.textContent).toContain("You can change back at any time.");
    expect(calls.some((call) => call.method === "POST")).toBe(false); // nothing changed yet
    await userEvent.click(within(dialog).getByRole("button", { name: "Downgrade" }));

    expect(await screen.findByRole("heading", { name: "Free" })).toBeTruthy();
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({ plan: "free" });
    expect(queries.getQueryState(keys.audit("acme"))?.isInvalidated).toBe(true);
    expect(queries.getQueryState(keys.overview("acme"))?.isInvalidated).toBe(true);
    expect(screen.getByText("Allowance used up")).toBeTruthy();
    expect(screen.getByText(/Billed at Pro: this period's calls passed the Free allowance/)).toBeTruthy();

    await userEvent.click(screen.getByRole("button", { name: "Upgrade to Pro" }));
    const upgrade = await screen.findByRole("dialog", { name: "Upgrade to Pro?" });
    expect(upgrade.textContent).toContain("Pro: $49.00 a month, 5,000,000 calls included, then $2.00 per million calls");
    expect(upgrade.textContent).not.toContain("refuse calls");
    await userEvent.click(within(upgrade).getByRole("button", { name: "Upgrade" }));
    expect(await screen.findByRole("heading", { name: "Pro" })).toBeTruthy();
    expect(calls.filter((call) => call.method === "POST").map((call) => call.body)).toEqual([{ plan: "free" }, { plan: "pro" }]);
  });

  it("keeps the dialog open with the API's reason when the change is refused, and changes nothing on Cancel", async () => {
    answerApi({
      "GET /api/v1/orgs/acme/billing/": [200, summary("pro")],
      "GET /api/v1/orgs/acme/billing/invoices/": [200, { count: 0, results: [] }],
      "POST /api/v1/orgs/acme/billing/plan/": [400, { detail: "The organization is on the Free plan already.", errors: { plan: ["The organization is on the Free plan already."] } }],
    });
    renderPage(<BillingPage />, PAGE);
    await userEvent.click(await screen.findByRole("button", { name: "Downgrade to Free" }));
    const dialog = await screen.findByRole("dialog");
    await userEvent.click(within(dialog).getByRole("button", { name: "Downgrade" }));
    expect(await within(dialog).findByText("The organization is on the Free plan already.")).toBeTruthy();
    await userEvent.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(screen.getByRole("heading", { name: "Pro" })).toBeTruthy();
  });

  it("links each invoice's HTML and PDF", async () => {
    answerApi({
      "GET /api/v1/orgs/acme/billing/": [200, summary("pro")],
      "GET /api/v1/orgs/acme/billing/invoices/": [200, { count: 1, results: [INVOICE] }],
    });
    renderPage(<BillingPage />, PAGE);
    const table = await screen.findByRole("table", { name: "Invoices" });
    expect(within(table).getByText("$56.00")).toBeTruthy();
    expect(within(table).getByRole("link", { name: "Invoice L-00001-202610 as HTML" }).getAttribute("href")).toBe(INVOICE.html_url);
    expect(within(table).getByRole("link", { name: "Invoice L-00001-202610 as PDF" }).getAttribute("href")).toBe(INVOICE.pdf_url);
  });

  it("shows late usage carried into this period and on the invoices that bill it", async () => {
    const line = { description: "Late usage from 2026-10: 1,234 calls", quantity: 1234, amount_minor: null, kind: "late_usage", from_period: "2026-10" };
    answerApi({
      "GET /api/v1/orgs/acme/billing/": [200, { ...summary("pro"), stripe_connected: true, late_usage: [line] }],
      "GET /api/v1/orgs/acme/billing/invoices/": [
        200,
        { count: 1, results: [{ ...INVOICE, source: "stripe", number: "ABC-0001", hosted_invoice_url: "https://stripe.test/i/in_1", document_url: null, late_usage: [line] }] },
      ],
    });
    renderPage(<BillingPage />, PAGE);

    expect(await screen.findByText("Late usage on your next invoice")).toBeTruthy();
    expect((await screen.findAllByText("Late usage from 2026-10: 1,234 calls")).length).toBe(2);
  });
});

describe("the usage chart's points", () => {
  it("adds the days up, leaves the days to come empty, and projects from today to the period's end", () => {
    const s = summary("pro", 1_450_000);
    s.usage_by_day[0].calls = 50_000;
    s.calls = 1_500_000;
    s.projected_calls = 3_000_000;
    const points = chartPoints(s);
    expect(points).toHaveLength(30);
    expect(points.slice(0, 7).map((p) => p.total)).toEqual([50_000, 50_000, 50_000, 50_000, 50_000, 1_500_000, 1_500_000]);
    expect(points[14]).toMatchObject({ calls: 0, total: 1_500_000, projected: 1_500_000 }); // today: the line starts
    expect(points[13].projected).toBeNull();
    expect(points[15]).toMatchObject({ calls: null, total: null });
    expect(points[29].projected).toBe(3_000_000); // the period's end: the projection
  });

  it("states a contract plan's price as its contact", () => {
    expect(planPrice({ ...PRO, custom: true, contact: "sales@example.com" })).toBe("By contract: contact sales@example.com.");
  });
});
