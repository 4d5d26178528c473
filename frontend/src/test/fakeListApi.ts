// The API answered in unit tests, as fakeApi.ts does, for pages whose lists are paged by the
// server: each answer also gets the query string, each call records it, and pageOf() pages a list
// as the API does (search, ordering, page, page_size; core/api/list_queries.py).
import { vi } from "vitest";

type Answer = [number, unknown] | ((body: unknown, query: URLSearchParams) => [number, unknown]);
export type ListAnswers = Record<string, Answer>;
export type Call = { method: string; path: string; query: URLSearchParams; body: unknown };

export function answerListApi(answers: ListAnswers) {
  document.cookie = "csrftoken=test-token";
  const calls: Call[] = [];
  vi.stubGlobal("fetch", async (input: Request | string) => {
    const request = typeof input === "string" ? new Request(new URL(input, window.location.origin)) : input;
    const url = new URL(request.url);
    const text = request.method === "GET" ? "" : await request.text();
    const body = text ? JSON.parse(text) : undefined;
    calls.push({ method: request.method, path: url.pathname, query: url.searchParams, body });
    const answer = answers[`${request.method} ${url.pathname}`];
    if (!answer) return new Response(JSON.stringify({ detail: "Not found." }), { status: 404, headers: { "Content-Type": "application/json" } });
    const [status, payload] = typeof answer === "function" ? answer(body, url.searchParams) : answer;
    if (status === 204) return new Response(null, { status });
    return new Response(JSON.stringify(payload), { status, headers: { "Content-Type": "application/json" } });
  });
  /** The query strings of the GETs of `path`, oldest first. */
  const queried = (path: string) => calls.filter((call) => call.method === "GET" && call.path === path).map((call) => call.query);
  return { calls, queried };
}

/** One page of `rows` as the API answers `query`: `search` is a case-insensitive substring of
 * `searchIn(row)`, `ordering` a field (`-field` descending), 50 a page by default. */
export function pageOf<T extends object>(rows: T[], query: URLSearchParams, searchIn: (row: T) => string = (row) => JSON.stringify(row)): [number, unknown] {
  const search = (query.get("search") ?? "").toLowerCase();
  let found = rows.filter((row) => searchIn(row).toLowerCase().includes(search));
  const ordering = query.get("ordering");
  if (ordering) {
    const field = ordering.replace(/^-/, "") as keyof T;
    const sign = ordering.startsWith("-") ? -1 : 1;
    found = [...found].sort((a, b) => (a[field] === b[field] ? 0 : String(a[field]) < String(b[field]) ? -sign : sign));
  }
  const size = Number(query.get("page_size") ?? 50);
  const page = Number(query.get("page") ?? 1);
  if (page > 1 && (page - 1) * size >= found.length) return [404, { detail: "Invalid page." }];
  return [200, { count: found.length, next: null, previous: null, results: found.slice((page - 1) * size, page * size) }];
}
