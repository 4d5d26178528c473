// One table for every list the API pages: a header row, columns sorted by the API (`ordering`),
// a debounced search box (`search`), server pagination (`page`, `page_size`, the total from
// `count`), and optionally rows selected for a bulk action (delete, revoke) confirmed in a dialog.
// Every control is a labelled button, checkbox or input, so the keyboard reaches all of it.
import { Alert, Button, Group, Loader, Select, Stack, Table, Text, TextInput, UnstyledButton } from "@mantine/core";
import { useDebouncedValue } from "@mantine/hooks";
import { keepPreviousData, type QueryKey, useQuery, useQueryClient } from "@tanstack/react-query";
import { type ReactNode, useState } from "react";
import { ConfirmDialog } from "./ConfirmDialog";
import { errorMessage, fieldErrors } from "../api/client";

/** What a page of a list is asked with: every list of the API takes these. */
export type ListParams = { search?: string; ordering?: string; page: number; page_size: number };
/** A page of a list, as the API answers it. */
export type PageOf<T> = { count: number; results: T[] };
/** Other query parameters of a list (filters): left out when undefined, null or "". */
export type ListFilters = Record<string, string | number | undefined | null>;

export type Column<T> = {
  /** Unique among the columns. */
  key: string;
  header: string;
  /** The name `ordering` sorts this column by (one of the list's allow-list); none: not sortable. */
  sort?: string;
  render: (row: T) => ReactNode;
};

/** Rows selected, then deleted (or revoked) together once the dialog is confirmed. */
export type BulkAction<T> = {
  /** The button and the dialog's verb: "Delete", "Revoke". */
  verb: string;
  /** What the rows are, in the plural: "routes", "tokens". */
  noun: string;
  /** Does it to every row; throws the API's error to show it in the dialog. The table's own list
   * is refetched afterwards; invalidate any other list it changes here. */
  run: (rows: T[]) => Promise<void>;
  /** Only these rows may be selected (a revoked token cannot be revoked again). */
  selectable?: (row: T) => boolean;
};

export type ServerTableProps<T> = {
  /** The table's accessible name, and in its controls' names: "Instances". */
  label: string;
  /** The list's query key (keys.* in api/queries.ts); the page's parameters are appended, so
   * invalidating this key refreshes every page of it. */
  queryKey: QueryKey;
  /** Fetches one page: the list's endpoint called with these query parameters. */
  fetchPage: (params: ListParams & ListFilters) => Promise<PageOf<T>>;
  columns: Column<T>[];
  rowKey: (row: T) => string | number;
  /** How a row is named in its checkbox's label and in the confirmation. */
  rowName?: (row: T) => string;
  /** The API's ordering without `ordering`, to show which column the rows are sorted by. */
  defaultOrdering?: string;
  /** Filters sent with every page (changing one goes back to page 1), and their controls. */
  filters?: ListFilters;
  filterControls?: ReactNode;
  /** false: no search box (the list cannot search). */
  searchable?: boolean;
  searchPlaceholder?: string;
  pageSize?: number;
  bulk?: BulkAction<T>;
  /** Shown instead of rows when the list is empty without a search or a filter. */
  empty?: ReactNode;
  /** Refetched on its own this often (ms): live lists such as instances. */
  refetchInterval?: number;
  /** Below this width the table scrolls sideways (phones). */
  minWidth?: number;
};

const PAGE_SIZES = ["10", "20", "50", "100"];

/** The browser's own checkbox, in the theme's colour: lighter than Mantine's, whose code every
 * page with a table would load. */
function Checkbox({ indeterminate = false, ...props }: { indeterminate?: boolean } & React.InputHTMLAttributes<HTMLInputElement>) {
  return (
    <input
      type="checkbox"
      ref={(input) => {
        if (input) input.indeterminate = indeterminate;
      }}
      style={{ width: 16, height: 16, margin: 0, verticalAlign: "middle", accentColor: "var(--mantine-primary-color-filled)", cursor: props.disabled ? "default" : "pointer" }}
      {...props}
    />
  );
}
const SEARCH_DEBOUNCE_MS = 300;

function present(filters: ListFilters | undefined): Record<string, string | number> {
  return Object.fromEntries(
    Object.entries(filters ?? {}).filter((entry): entry is [string, string | number] => entry[1] !== undefined && entry[1] !== null && entry[1] !== ""),
  );
}

export function ServerTable<T>(props: ServerTableProps<T>) {
  const { label, columns, rowKey, rowName, bulk } = props;
  const queries = useQueryClient();
  const [typed, setTyped] = useState("");
  const [search] = useDebouncedValue(typed.trim(), SEARCH_DEBOUNCE_MS);
  const [ordering, setOrdering] = useState<string | undefined>(undefined);
  const [pageSize, setPageSize] = useState(props.pageSize ?? 20);
  const filters = present(props.filters);
  // Another search, filter, sort or page size starts again from page 1, in the same render (no
  // request for a page that may no longer exist).
  const signature = JSON.stringify([search, ordering, pageSize, filters]);
  const [paging, setPaging] = useState({ page: 1, signature });
  const page = paging.signature === signature ? paging.page : 1;
  const setPage = (next: number) => setPaging({ page: next, signature });
  const [selected, setSelected] = useState<Map<string | number, T>>(new Map());
  const [confirming, setConfirming] = useState(false);
  const [bulkError, setBulkError] = useState<string | null>(null);
  const [working, setWorking] = useState(false);

  const params: ListParams & ListFilters = {
    ...filters,
    ...(search ? { search } : {}),
    ...(ordering ? { ordering } : {}),
    page,
    page_size: pageSize,
  };
  const list = useQuery({
    queryKey: [...props.queryKey, params],
    queryFn: () => props.fetchPage(params),
    placeholderData: keepPreviousData,
    refetchInterval: props.refetchInterval,
  });
  const rows = list.data?.results ?? [];
  const count = list.data?.count ?? 0;
  const pages = Math.max(1, Math.ceil(count / pageSize));
  // A page past the last (rows deleted meanwhile) is a 404: back to the last page there is.
  if (list.isSuccess && !list.isPlaceholderData && page > pages) setPage(pages);
  if (list.isError && page > 1) setPage(1);

  const current = ordering ?? props.defaultOrdering;
  const sortOf = (column: Column<T>): "ascending" | "descending" | "none" =>
    !column.sort || !current || current.replace(/^-/, "") !== column.sort ? "none" : current.startsWith("-") ? "descending" : "ascending";
  const sortBy = (column: Column<T>) => setOrdering(sortOf(column) === "ascending" ? `-${column.sort}` : column.sort);

  const selectable = (row: T) => !bulk?.selectable || bulk.selectable(row);
  const onPage = rows.filter(selectable);
  const allOnPage = onPage.length > 0 && onPage.every((row) => selected.has(rowKey(row)));
  const someOnPage = onPage.some((row) => selected.has(rowKey(row)));
  const toggle = (row: T, on: boolean) =>
    setSelected((before) => {
      const after = new Map(before);
      if (on) after.set(rowKey(row), row);
      else after.delete(rowKey(row));
      return after;
    });
  const togglePage = (on: boolean) =>
    setSelected((before) => {
      const after = new Map(before);
      for (const row of onPage) {
        if (on) after.set(rowKey(row), row);
        else after.delete(rowKey(row));
      }
      return after;
    });
  const name = (row: T) => (rowName ? rowName(row) : String(rowKey(row)));
  const runBulk = async () => {
    if (!bulk) return;
    setWorking(true);
    try {
      await bulk.run([...selected.values()]);
      setSelected(new Map());
      setConfirming(false);
      setBulkError(null);
    } catch (error) {
      setBulkError(errorMessage(error));
    } finally {
      setWorking(false);
      await queries.invalidateQueries({ queryKey: props.queryKey });
    }
  };

  const searching = Boolean(search) || Object.keys(filters).length > 0;
  const span = columns.length + (bulk ? 1 : 0);
  const first = count === 0 ? 0 : (page - 1) * pageSize + 1;
  const last = Math.min(count, page * pageSize);
  const problem = list.isError ? [errorMessage(list.error), ...Object.values(fieldErrors(list.error))].filter((m, i, all) => all.indexOf(m) === i).join(" ") : null;

  return (
    <Stack gap="sm">
      {(props.searchable !== false || props.filterControls) && (
        <Group align="end" gap="sm" wrap="wrap">
          {props.searchable !== false && (
            <TextInput
              label="Search"
              aria-label={`Search ${label.toLowerCase()}`}
              placeholder={props.searchPlaceholder ?? "Search"}
              type="search"
              value={typed}
              onChange={(event) => setTyped(event.currentTarget.value)}
              w={{ base: "100%", xs: 260 }}
            />
          )}
          {props.filterControls}
        </Group>
      )}
      {bulk && selected.size > 0 && (
        <Group gap="sm" role="region" aria-label="Selected rows">
          <Text size="sm">{selected.size} selected</Text>
          <Button size="xs" color="red" onClick={() => setConfirming(true)}>
            {bulk.verb} selected
          </Button>
          <Button size="xs" variant="subtle" onClick={() => setSelected(new Map())}>
            Clear selection
          </Button>
        </Group>
      )}
      {problem && <Alert color="red">{problem}</Alert>}
      <Table.ScrollContainer minWidth={props.minWidth ?? 600}>
        <Table striped highlightOnHover aria-label={label} aria-busy={list.isFetching}>
          <Table.Thead>
            <Table.Tr>
              {bulk && (
                <Table.Th w={40}>
                  <Checkbox
                    aria-label="Select all rows on this page"
                    checked={allOnPage}
                    indeterminate={someOnPage && !allOnPage}
                    disabled={onPage.length === 0}
                    onChange={(event) => togglePage(event.currentTarget.checked)}
                  />
                </Table.Th>
              )}
              {columns.map((column) => (
                <Table.Th key={column.key} aria-sort={column.sort ? sortOf(column) : undefined} style={{ whiteSpace: "nowrap" }}>
                  {column.sort ? (
                    <UnstyledButton onClick={() => sortBy(column)} title={`Sort by ${column.header.toLowerCase()}`} fw={700} fz="sm">
                      {column.header}
                      <span aria-hidden="true">{sortOf(column) === "ascending" ? " ▲" : sortOf(column) === "descending" ? " ▼" : " ↕"}</span>
                    </UnstyledButton>
                  ) : (
                    column.header
                  )}
                </Table.Th>
              ))}
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {list.isLoading && (
              <Table.Tr>
                <Table.Td colSpan={span}>
                  <Loader size="sm" aria-label={`Loading ${label.toLowerCase()}`} />
                </Table.Td>
              </Table.Tr>
            )}
            {rows.map((row) => (
              <Table.Tr key={rowKey(row)}>
                {bulk && (
                  <Table.Td>
                    {selectable(row) && (
                      <Checkbox aria-label={`Select ${name(row)}`} checked={selected.has(rowKey(row))} onChange={(event) => toggle(row, event.currentTarget.checked)} />
                    )}
                  </Table.Td>
                )}
                {columns.map((column) => (
                  <Table.Td key={column.key}>{column.render(row)}</Table.Td>
                ))}
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Table.ScrollContainer>
      {/* Below the table, not in a cell: on a phone a wide table scrolls, and would hide it. */}
      {list.isSuccess && rows.length === 0 && (
        <Text c="dimmed" size="sm" mt={-8}>
          {searching || !props.empty ? "Nothing matches." : props.empty}
        </Text>
      )}
      <Group justify="space-between" gap="sm" wrap="wrap">
        <Text size="sm" c="dimmed" aria-live="polite">
          {count === 0 ? "No rows" : `${first}–${last} of ${count}`}
        </Text>
        <Group gap="xs" wrap="nowrap">
          <Select
            aria-label="Rows per page"
            data={PAGE_SIZES}
            value={String(pageSize)}
            onChange={(value) => value && setPageSize(Number(value))}
            allowDeselect={false}
            w={80}
            size="xs"
          />
          <Button size="xs" variant="default" onClick={() => setPage(page - 1)} disabled={page <= 1} aria-label="Previous page">
            ‹ Previous
          </Button>
          <Text size="sm" style={{ whiteSpace: "nowrap" }}>
            Page {page} of {pages}
          </Text>
          <Button size="xs" variant="default" onClick={() => setPage(page + 1)} disabled={page >= pages} aria-label="Next page">
            Next ›
          </Button>
        </Group>
      </Group>
      {bulk && (
        <ConfirmDialog
          opened={confirming}
          title={`${bulk.verb} ${selected.size} ${bulk.noun}?`}
          confirmLabel={`${bulk.verb} ${selected.size}`}
          onConfirm={runBulk}
          onCancel={() => {
            setConfirming(false);
            setBulkError(null);
          }}
          error={bulkError}
          working={working}
        >
          <Text size="sm">
            {bulk.verb} {[...selected.values()].slice(0, 10).map(name).join(", ")}
            {selected.size > 10 ? ` and ${selected.size - 10} more` : ""}? This cannot be undone.
          </Text>
        </ConfirmDialog>
      )}
    </Stack>
  );
}
