import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { keys } from "../api/queries";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { HistoryPanel, sideBySide } from "./HistoryPanel";

const BASE = "/api/v1/orgs/acme/clusters/7";
const PATH = { org_slug: "acme", cluster_id: "7" };

function snapshot(version: number, reason: string) {
  return { version, author: "owner@example.com", reason, created_at: "2026-01-01T00:00:00Z" };
}
const page = (results: unknown[]) => [200, { count: results.length, next: null, previous: null, results }] as [number, unknown];
const LONG_REGEX = `^/invoices/${"[0-9a-f]".repeat(20)}/lines/[0-9]+$`;

afterEach(() => vi.unstubAllGlobals());
vi.setConfig({ testTimeout: 20_000 });

describe("the history", () => {
  it("after a rollback lists the new version and refreshes the catalog, the cluster and the audit log", async () => {
    let snapshots = [snapshot(2, "route orders changed"), snapshot(1, "route orders created")];
    answerApi({
      [`GET ${BASE}/snapshots/`]: () => page(snapshots),
      [`GET ${BASE}/snapshots/diff/`]: [200, { changes: {} }],
      [`POST ${BASE}/snapshots/1/rollback/`]: () => {
        snapshots = [snapshot(3, "rollback to v1"), ...snapshots];
        return [200, snapshots[0]];
      },
    });
    const { queries } = renderPage(<HistoryPanel path={PATH} canWrite />, { url: "/orgs/acme/clusters/7" });
    const elsewhere = [keys.catalog(PATH), keys.cluster("acme", "7"), keys.clusters("acme"), keys.instances(PATH), keys.audit("acme")];
    for (const key of elsewhere) queries.setQueryData(key, { results: [] });

    await userEvent.click(await screen.findByRole("button", { name: "Roll back to v1" }));
    await userEvent.click(within(await screen.findByRole("dialog")).getByRole("button", { name: "Roll back" }));

    expect(await screen.findByText("rollback to v1")).toBeTruthy();
    for (const key of elsewhere) expect(queries.getQueryState(key)?.isInvalidated, JSON.stringify(key)).toBe(true);
  });

  it("shows the latest version's changes beside the list, each object side by side and whole", async () => {
    const calls = answerApi({
      [`GET ${BASE}/snapshots/`]: page([snapshot(3, "route invoices changed"), snapshot(2, "upstream billing created"), snapshot(1, "first")]),
      [`GET ${BASE}/snapshots/diff/`]: [
        200,
        {
          from: 2,
          to: 3,
          changes: {
            routes: {
              added: [],
              removed: [{ id: 4, name: "old-invoices", paths: [{ type: "prefix", value: "/old" }] }],
              changed: [{ id: 3, name: "invoices", changes: { priority: { old: 0, new: 5 }, paths: { old: [{ type: "prefix", value: "/invoices" }], new: [{ type: "regex", value: LONG_REGEX }] } } }],
            },
          },
        },
      ],
    });
    renderPage(<HistoryPanel path={PATH} canWrite={false} />, { url: "/orgs/acme/clusters/7" });
    expect(await screen.findByRole("heading", { name: "What changed in v3" })).toBeTruthy();
    const changed = within(await screen.findByRole("region", { name: "route invoices changed" }));
    expect(changed.getAllByRole("columnheader").map((th) => th.textContent)).toEqual(["v2", "v3"]);
    // Nothing cut short: the whole new regex is there, on the right, facing what it replaced.
    const row = changed.getByText(new RegExp(LONG_REGEX.replace(/[[\]^$+/]/g, "\\$&"))).closest("tr");
    expect(row?.getAttribute("data-diff")).toBe("changed");
    expect(row?.textContent).toContain('"value": "/invoices"');
    expect(within(row as HTMLElement).getAllByRole("cell")[1].textContent).toContain(LONG_REGEX);
    expect(changed.getByText('"priority": 0', { exact: false }).closest("tr")?.getAttribute("data-diff")).toBe("changed");
    const removed = within(screen.getByRole("region", { name: "route old-invoices removed" }));
    expect(removed.getByText('"name": "old-invoices",', { exact: false }).closest("tr")?.getAttribute("data-diff")).toBe("removed");

    // Another version, picked from the list: its diff against the one before.
    await userEvent.click(screen.getByRole("button", { name: "What changed in v2" }));
    expect(await screen.findByRole("heading", { name: "What changed in v2" })).toBeTruthy();
    await vi.waitFor(() => expect(calls.filter((c) => c.path.endsWith("/snapshots/diff/")).length).toBe(2));
  });

  it("shows the first version as everything added", async () => {
    answerApi({
      [`GET ${BASE}/snapshots/`]: page([snapshot(1, "upstream billing created")]),
      [`GET ${BASE}/snapshots/1/`]: [200, { ...snapshot(1, "x"), document: { upstreams: [{ id: 1, name: "billing", targets: [{ host: "10.0.0.7", port: 9000 }] }], routes: [] } }],
    });
    renderPage(<HistoryPanel path={PATH} canWrite={false} />, { url: "/orgs/acme/clusters/7" });
    const added = within(await screen.findByRole("region", { name: "upstream billing added" }));
    expect(added.getAllByRole("columnheader").map((th) => th.textContent)).toEqual(["before", "v1"]);
  });
});

describe("a side-by-side diff", () => {
  it("faces kept lines, and a replaced line its replacement", () => {
    const rows = sideBySide("{\n  a: 1,\n  b: 2\n}", "{\n  a: 1,\n  b: 3,\n  c: 4\n}");
    expect(rows).toEqual([
      { left: "{", right: "{", kind: "same" },
      { left: "  a: 1,", right: "  a: 1,", kind: "same" },
      { left: "  b: 2", right: "  b: 3,", kind: "changed" },
      { left: undefined, right: "  c: 4", kind: "added" },
      { left: "}", right: "}", kind: "same" },
    ]);
    expect(sideBySide("", "x")).toEqual([{ left: undefined, right: "x", kind: "added" }]);
  });
});
