import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { keys } from "../api/queries";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { BillingPage } from "./BillingPage";

const PLANS = {
  free: { slug: "free", name: "Free", included_calls: 100000, hard_cap: true },
  pro: { slug: "pro", name: "Pro", included_calls: 5000000, hard_cap: false },
};

function summary(plan: keyof typeof PLANS) {
  return {
    plan: PLANS[plan],
    stripe_connected: false,
    period: { start: "2026-01-01T00:00:00Z", end: "2026-02-01T00:00:00Z" },
    calls: 1200,
    included_calls: PLANS[plan].included_calls,
    allowance_used_percent: 1,
    cost_so_far_minor: 0,
    projected_cost_minor: 0,
    currency: "usd",
    quota: { exceeded: false, resets_at: null },
  };
}

afterEach(() => vi.unstubAllGlobals());

describe("billing", () => {
  it("shows the new plan after an upgrade, and refreshes the audit log", async () => {
    let plan: keyof typeof PLANS = "free";
    const calls = answerApi({
      "GET /api/v1/orgs/acme/billing/": () => [200, summary(plan)],
      "GET /api/v1/orgs/acme/billing/invoices/": [200, { results: [] }],
      "POST /api/v1/orgs/acme/billing/plan/": () => {
        plan = "pro";
        return [200, { plan: "pro" }];
      },
    });
    const { queries } = renderPage(<BillingPage />, { url: "/orgs/acme/billing", route: "/orgs/:slug/billing" });
    queries.setQueryData(keys.audit("acme"), { results: [] }); // the audit log, read before

    await userEvent.click(await screen.findByRole("button", { name: "Upgrade to Pro" }));

    expect(await screen.findByRole("heading", { name: "Pro" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Upgrade to Pro" })).toBeNull();
    expect(calls.find((call) => call.method === "POST")?.body).toEqual({ plan: "pro" });
    expect(queries.getQueryState(keys.audit("acme"))?.isInvalidated).toBe(true);
  });

  it("shows late usage carried into this period and on the invoices that bill it", async () => {
    const line = { description: "Late usage from 2026-10: 1,234 calls", quantity: 1234, amount_minor: null, from_period: "2026-10" };
    answerApi({
      "GET /api/v1/orgs/acme/billing/": [200, { ...summary("pro"), stripe_connected: true, late_usage: [line] }],
      "GET /api/v1/orgs/acme/billing/invoices/": [
        200,
        {
          results: [
            {
              id: 1,
              number: "ABC-0001",
              period_start: "2026-11-01T00:00:00Z",
              amount_due_minor: 4900,
              currency: "usd",
              status: "open",
              hosted_invoice_url: "https://stripe.test/i/in_1",
              document_url: null,
              late_usage: [line],
            },
          ],
        },
      ],
    });
    renderPage(<BillingPage />, { url: "/orgs/acme/billing", route: "/orgs/:slug/billing" });

    expect(await screen.findByText("Late usage on your next invoice")).toBeTruthy();
    expect((await screen.findAllByText("Late usage from 2026-10: 1,234 calls")).length).toBe(2);
  });
});
