// The API client: typed from the OpenAPI schema (src/api/schema.d.ts, generated at build from the
// Django API), session cookies, and Django's CSRF token on every write.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";

function csrfToken(): string {
  const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

const csrf: Middleware = {
  async onRequest({ request }) {
    if (request.method !== "GET" && request.method !== "HEAD") {
      if (!csrfToken()) await fetch("/api/v1/auth/csrf/", { credentials: "same-origin" });
      request.headers.set("X-CSRFToken", csrfToken());
    }
    return request;
  },
};

// fetch looked up at each call, not captured once, so the console's unit tests can answer for
// the API.
export const api = createClient<paths>({
  baseUrl: window.location.origin,
  credentials: "same-origin",
  fetch: (request) => globalThis.fetch(request),
});
api.use(csrf);

/** The API's errors: {"detail": ..., "errors": {field: [messages]}}, a nested field's key spelled
 * with dots ("paths.0.value", "plugins.limit-count"). */
export type ApiError = { detail?: string; errors?: Record<string, string[]> };

/** The messages about `field` and everything within it. */
export function messagesAbout(error: unknown, field: string): string[] {
  const errors = (error as ApiError | undefined)?.errors ?? {};
  return Object.entries(errors)
    .filter(([key]) => key === field || key.startsWith(`${field}.`))
    .flatMap(([, messages]) => messages);
}

/** Each top-level field's messages as one line, for the error beside that field. */
export function fieldErrors(error: unknown): Record<string, string> {
  const fields = new Set(Object.keys((error as ApiError | undefined)?.errors ?? {}).map((key) => key.split(".")[0]));
  return Object.fromEntries([...fields].map((field) => [field, messagesAbout(error, field).join(" ")]));
}

export function errorMessage(error: unknown): string {
  return (error as ApiError | undefined)?.detail ?? "Something went wrong.";
}

/** Unwrap an openapi-fetch answer: its data, or throw its error body. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown }>): Promise<T> {
  const { data, error } = await call;
  if (error !== undefined) throw error;
  return data as T;
}
