import { configure, fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import { renderInConsole } from "../test/render";
import { type ListFilters, type ListParams, type PageOf, ServerTable } from "./ServerTable";

// The whole suite runs at once: what the page shows may take more than the default second.
configure({ asyncUtilTimeout: 5000 });

type Route = { id: number; name: string; priority: number };

const ROUTES: Route[] = Array.from({ length: 45 }, (_, i) => ({ id: i + 1, name: `route-${String(i + 1).padStart(2, "0")}`, priority: i % 3 }));

/** A list as the API pages it, and every page asked for. */
function server(rows: Route[] = ROUTES) {
  const state = { rows: [...rows] };
  const fetchPage = vi.fn(async (params: ListParams & ListFilters): Promise<PageOf<Route>> => {
    let found = state.rows.filter((row) => row.name.includes(String(params.search ?? "")));
    if (params.priority !== undefined) found = found.filter((row) => row.priority === Number(params.priority));
    if (params.ordering) {
      const field = String(params.ordering).replace(/^-/, "") as keyof Route;
      const sign = String(params.ordering).startsWith("-") ? -1 : 1;
      found = [...found].sort((a, b) => (a[field] < b[field] ? -sign : a[field] > b[field] ? sign : 0));
    }
    if (params.page > 1 && (params.page - 1) * params.page_size >= found.length) throw { detail: "Invalid page." };
    return { count: found.length, results: found.slice((params.page - 1) * params.page_size, params.page * params.page_size) };
  });
  const last = () => fetchPage.mock.calls.slice(-1)[0]![0];
  return { state, fetchPage, last };
}

// Slow under load (the whole suite runs at once): each test waits for the debounce and a refetch.
vi.setConfig({ testTimeout: 20_000 });

const COLUMNS = [
  { key: "name", header: "Name", sort: "name", render: (row: Route) => row.name },
  { key: "priority", header: "Priority", sort: "priority", render: (row: Route) => String(row.priority) },
  { key: "id", header: "Id", render: (row: Route) => `#${row.id}` },
];

function names() {
  const table = screen.getByRole("table", { name: "Routes" });
  return within(table)
    .getAllByRole("row")
    .slice(1)
    .map((row) => within(row).getAllByRole("cell")[row.querySelector("input") ? 1 : 0].textContent);
}

describe("the server-side table", () => {
  it("has a header row, and sorts by the column chosen, through the API's ordering", async () => {
    const { fetchPage, last } = server();
    renderInConsole(<ServerTable label="Routes" queryKey={["routes"]} fetchPage={fetchPage} columns={COLUMNS} rowKey={(row) => row.id} defaultOrdering="name" />);
    expect(await screen.findByText("route-01")).toBeTruthy();
    const headers = screen.getAllByRole("columnheader").map((header) => header.textContent);
    expect(headers).toEqual(["Name ▲", "Priority ↕", "Id"]);
    expect(screen.getByRole("columnheader", { name: /Name/ }).getAttribute("aria-sort")).toBe("ascending");
    expect(last()).toEqual({ page: 1, page_size: 20 }); // the API's own order first

    await userEvent.click(screen.getByRole("button", { name: /Name/ }));
    await waitFor(() => expect(last().ordering).toBe("-name"));
    expect(screen.getByRole("columnheader", { name: /Name/ }).getAttribute("aria-sort")).toBe("descending");
    await waitFor(() => expect(names()[0]).toBe("route-45"));

    await userEvent.click(screen.getByRole("button", { name: /Priority/ }));
    await waitFor(() => expect(last().ordering).toBe("priority"));
    expect(screen.getByRole("columnheader", { name: /Name/ }).getAttribute("aria-sort")).toBe("none");
    // A column the API cannot sort by has no sort button.
    expect(screen.queryByRole("button", { name: /^Id/ })).toBeNull();
  });

  it("searches once the typing pauses, from page 1", async () => {
    const { fetchPage, last } = server();
    renderInConsole(<ServerTable label="Routes" queryKey={["routes"]} fetchPage={fetchPage} columns={COLUMNS} rowKey={(row) => row.id} />);
    await screen.findByText("route-01");
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    await waitFor(() => expect(last().page).toBe(2));

    // Keystrokes closer together than the debounce.
    const box = screen.getByRole("searchbox", { name: "Search routes" });
    for (const typed of ["r", "rou", "route-", "route-4"]) fireEvent.change(box, { target: { value: typed } });
    await waitFor(() => expect(last()).toEqual({ search: "route-4", page: 1, page_size: 20 }));
    // One request for what was typed, not one a keystroke.
    expect(fetchPage.mock.calls.filter(([params]) => params.search !== undefined)).toHaveLength(1);
    expect(await screen.findByText("1–6 of 6")).toBeTruthy();

    await userEvent.clear(screen.getByRole("searchbox", { name: "Search routes" }));
    await userEvent.type(screen.getByRole("searchbox", { name: "Search routes" }), "nothing like it");
    expect(await screen.findByText("Nothing matches.")).toBeTruthy();
  });

  it("pages through the server's count, and changes the page size", async () => {
    const { fetchPage, last } = server();
    renderInConsole(<ServerTable label="Routes" queryKey={["routes"]} fetchPage={fetchPage} columns={COLUMNS} rowKey={(row) => row.id} />);
    expect(await screen.findByText("1–20 of 45")).toBeTruthy();
    expect(screen.getByText("Page 1 of 3")).toBeTruthy();
    expect((screen.getByRole("button", { name: "Previous page" }) as HTMLButtonElement).disabled).toBe(true);

    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    expect(await screen.findByText("41–45 of 45")).toBeTruthy();
    expect(last()).toEqual({ page: 3, page_size: 20 });
    expect((screen.getByRole("button", { name: "Next page" }) as HTMLButtonElement).disabled).toBe(true);

    await userEvent.click(screen.getByRole("textbox", { name: "Rows per page" }));
    await userEvent.click(await screen.findByRole("option", { name: "50" }));
    await waitFor(() => expect(last()).toEqual({ page: 1, page_size: 50 }));
    expect(await screen.findByText("1–45 of 45")).toBeTruthy();
  });

  it("sends its filters, and goes back to page 1 when one changes", async () => {
    const { fetchPage, last } = server();
    function Filtered() {
      const [priority, setPriority] = useState<number | undefined>(undefined);
      return (
        <ServerTable
          label="Routes"
          queryKey={["routes"]}
          fetchPage={fetchPage}
          columns={COLUMNS}
          rowKey={(row) => row.id}
          filters={{ priority, empty: "" }}
          filterControls={<button onClick={() => setPriority(2)}>Only priority 2</button>}
        />
      );
    }
    renderInConsole(<Filtered />);
    await screen.findByText("route-01");
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    await waitFor(() => expect(last().page).toBe(2));
    await userEvent.click(screen.getByRole("button", { name: "Only priority 2" }));
    await waitFor(() => expect(last()).toEqual({ priority: 2, page: 1, page_size: 20 }));
    expect(await screen.findByText("1–15 of 15")).toBeTruthy();
    // Never asked for page 2 of the filtered list, which has one page.
    expect(fetchPage.mock.calls.some(([params]) => params.priority === 2 && params.page === 2)).toBe(false);
  });

  it("deletes the rows selected, once confirmed, and shows the page that is left", async () => {
    const { state, fetchPage } = server(ROUTES.slice(0, 22));
    const run = vi.fn(async (rows: Route[]) => {
      state.rows = state.rows.filter((row) => !rows.some((gone) => gone.id === row.id));
    });
    renderInConsole(
      <ServerTable
        label="Routes"
        queryKey={["routes"]}
        fetchPage={fetchPage}
        columns={COLUMNS}
        rowKey={(row) => row.id}
        rowName={(row) => row.name}
        bulk={{ verb: "Delete", noun: "routes", run, selectable: (row) => row.id !== 22 }}
      />,
    );
    await screen.findByText("route-01");
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    expect(await screen.findByText("21–22 of 22")).toBeTruthy();
    // Route 22 may not be selected: no checkbox.
    expect(screen.queryByRole("checkbox", { name: "Select route-22" })).toBeNull();
    await userEvent.click(screen.getByRole("checkbox", { name: "Select route-21" }));
    await userEvent.click(screen.getByRole("button", { name: "Previous page" }));
    await userEvent.click(await screen.findByRole("checkbox", { name: "Select route-02" }));
    expect(screen.getByText("2 selected")).toBeTruthy();
    expect((screen.getByRole("checkbox", { name: "Select all rows on this page" }) as HTMLInputElement).indeterminate).toBe(true);

    // Cancelled: nothing happens.
    await userEvent.click(screen.getByRole("button", { name: "Delete selected" }));
    let dialog = within(await screen.findByRole("dialog", { name: "Delete 2 routes?" }));
    expect(dialog.getByText(/route-21, route-02/)).toBeTruthy();
    await userEvent.click(dialog.getByRole("button", { name: "Cancel" }));
    expect(run).not.toHaveBeenCalled();

    await userEvent.click(screen.getByRole("button", { name: "Delete selected" }));
    dialog = within(await screen.findByRole("dialog", { name: "Delete 2 routes?" }));
    await userEvent.click(dialog.getByRole("button", { name: "Delete 2" }));
    expect(run).toHaveBeenCalledWith([expect.objectContaining({ id: 21 }), expect.objectContaining({ id: 2 })]);
    expect(await screen.findByText("1–20 of 20")).toBeTruthy();
    expect(screen.queryByText("route-02")).toBeNull();
    expect(screen.queryByText("2 selected")).toBeNull();
  });

  it("goes back a page when the rows of the last one are all deleted", async () => {
    const { state, fetchPage, last } = server(ROUTES.slice(0, 21));
    const run = async (rows: Route[]) => {
      state.rows = state.rows.filter((row) => !rows.some((gone) => gone.id === row.id));
    };
    renderInConsole(
      <ServerTable label="Routes" queryKey={["routes"]} fetchPage={fetchPage} columns={COLUMNS} rowKey={(row) => row.id} rowName={(row) => row.name} bulk={{ verb: "Delete", noun: "routes", run }} />,
    );
    await screen.findByText("route-01");
    await userEvent.click(screen.getByRole("button", { name: "Next page" }));
    await userEvent.click(await screen.findByRole("checkbox", { name: "Select route-21" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete selected" }));
    await userEvent.click(within(await screen.findByRole("dialog")).getByRole("button", { name: "Delete 1" }));
    expect(await screen.findByText("1–20 of 20")).toBeTruthy();
    expect(screen.getByText("Page 1 of 1")).toBeTruthy();
    expect(last().page).toBe(1);
  });

  it("selects a whole page at once, and shows a failed deletion in its dialog", async () => {
    const { fetchPage } = server(ROUTES.slice(0, 3));
    const run = vi.fn(async () => {
      throw { detail: "route-01 is used by a consumer." };
    });
    renderInConsole(
      <ServerTable label="Routes" queryKey={["routes"]} fetchPage={fetchPage} columns={COLUMNS} rowKey={(row) => row.id} rowName={(row) => row.name} bulk={{ verb: "Delete", noun: "routes", run }} />,
    );
    await screen.findByText("route-01");
    await userEvent.click(screen.getByRole("checkbox", { name: "Select all rows on this page" }));
    expect(screen.getByText("3 selected")).toBeTruthy();
    await userEvent.click(screen.getByRole("button", { name: "Delete selected" }));
    const dialog = within(await screen.findByRole("dialog"));
    await userEvent.click(dialog.getByRole("button", { name: "Delete 3" }));
    expect(await dialog.findByText("route-01 is used by a consumer.")).toBeTruthy();
    expect(screen.getByText("3 selected")).toBeTruthy(); // kept, to try again
  });

  it("is worked with the keyboard alone, every control named", async () => {
    const { fetchPage, last } = server(ROUTES.slice(0, 3));
    renderInConsole(
      <ServerTable label="Routes" queryKey={["routes"]} fetchPage={fetchPage} columns={COLUMNS} rowKey={(row) => row.id} rowName={(row) => row.name} bulk={{ verb: "Delete", noun: "routes", run: async () => {} }} />,
    );
    await screen.findByText("route-01");
    for (const control of [...screen.getAllByRole("button"), ...screen.getAllByRole("checkbox"), ...screen.getAllByRole("textbox"), screen.getByRole("searchbox")]) {
      expect(control.getAttribute("aria-label") || control.textContent || (control as HTMLInputElement).labels?.[0]?.textContent).toBeTruthy();
    }
    await userEvent.tab(); // the search box
    expect(document.activeElement).toBe(screen.getByRole("searchbox", { name: "Search routes" }));
    await userEvent.tab(); // select all
    await userEvent.tab(); // sort by name
    expect(document.activeElement).toBe(screen.getByRole("button", { name: /Name/ }));
    await userEvent.keyboard("{Enter}");
    await waitFor(() => expect(last().ordering).toBe("name"));
    await userEvent.tab(); // sort by priority
    await userEvent.tab(); // route-01's checkbox
    expect(document.activeElement).toBe(screen.getByRole("checkbox", { name: "Select route-01" }));
    await userEvent.keyboard(" ");
    expect(screen.getByText("1 selected")).toBeTruthy();
  });

  it("shows the API's error", async () => {
    const fetchPage = vi.fn(async () => {
      throw { detail: "Enter a valid value.", errors: { ordering: ["One of: name, priority."] } };
    });
    renderInConsole(<ServerTable label="Routes" queryKey={["routes"]} fetchPage={fetchPage} columns={COLUMNS} rowKey={(row: Route) => row.id} />);
    expect(await screen.findByText("Enter a valid value. One of: name, priority.")).toBeTruthy();
  });
});
