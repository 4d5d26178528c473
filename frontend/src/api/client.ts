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

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(csrf);

/** The API's errors: {"detail": ..., "errors": {field: [messages]}}. */
export type ApiError = { detail?: string; errors?: Record<string, string[]> };

export function fieldErrors(error: unknown): Record<string, string> {
  const errors = (error as ApiError | undefined)?.errors ?? {};
  return Object.fromEntries(Object.entries(errors).map(([field, messages]) => [field, messages.join(" ")]));
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
