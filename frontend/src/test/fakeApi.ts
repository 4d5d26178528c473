// The API answered in unit tests: a table of "METHOD /path" -> [status, body], fetch stubbed.
import { vi } from "vitest";

export type Answers = Record<string, [number, unknown] | ((body: unknown) => [number, unknown])>;

export function answerApi(answers: Answers) {
  document.cookie = "csrftoken=test-token";
  const calls: { method: string; path: string; body: unknown; headers: Record<string, string> }[] = [];
  vi.stubGlobal("fetch", async (input: Request | string) => {
    const request = typeof input === "string" ? new Request(new URL(input, window.location.origin)) : input;
    const url = new URL(request.url);
    const text = request.method === "GET" ? "" : await request.text();
    const body = text ? JSON.parse(text) : undefined;
    calls.push({ method: request.method, path: url.pathname, body, headers: Object.fromEntries(request.headers.entries()) });
    const answer = answers[`${request.method} ${url.pathname}`];
    if (!answer) return new Response(JSON.stringify({ detail: "Not found." }), { status: 404, headers: { "Content-Type": "application/json" } });
    const [status, payload] = typeof answer === "function" ? answer(body) : answer;
    return new Response(JSON.stringify(payload), { status, headers: { "Content-Type": "application/json" } });
  });
  return calls;
}
