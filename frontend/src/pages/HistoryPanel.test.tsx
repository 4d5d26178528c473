import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { keys } from "../api/queries";
import { answerApi } from "../test/fakeApi";
import { renderPage } from "../test/renderPage";
import { HistoryPanel } from "./HistoryPanel";

const BASE = "/api/v1/orgs/acme/clusters/7";
const PATH = { org_slug: "acme", cluster_id: "7" };

function snapshot(version: number, reason: string) {
  return { version, author: "owner@example.com", reason, created_at: "2026-01-01T00:00:00Z" };
}

afterEach(() => vi.unstubAllGlobals());

describe("the history", () => {
  it("after a rollback lists the new version and refreshes the catalog, the cluster and the audit log", async () => {
    let snapshots = [snapshot(2, "route orders changed"), snapshot(1, "route orders created")];
    answerApi({
      [`GET ${BASE}/snapshots/`]: () => [200, { results: snapshots }],
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
});
