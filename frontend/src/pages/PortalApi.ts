// The developer portal's team API (/api/v1/orgs/<slug>/portal/, saas/portal/api): its shapes, the
// console's query keys for it, and how a plan's limit reads. Shared by the portal page's panels.
import { type QueryKey, useQuery } from "@tanstack/react-query";
import { api, unwrap } from "../api/client";
import { keys } from "../api/queries";
import type { components } from "../api/schema";
import { count } from "../components/format";

export type PortalSettings = components["schemas"]["PortalSettingsOutput"];
export type Version = components["schemas"]["VersionOutput"];
export type Application = components["schemas"]["ApplicationOutput"];
export type Developer = components["schemas"]["DeveloperOutput"];
// Written out here: the generated schema names the portal's plan and invitation after billing's
// plan and the organization's invitation (two serializers of the same name).
export type Plan = { id: number; name: string; description: string; limit_count: number | null; time_window: number | null };
export type Invitation = { email: string; link: string };
export type Product = Omit<components["schemas"]["ProductOutput"], "plans"> & { plans: Plan[] };
export type SignupMode = PortalSettings["signup_mode"];
export type AuthType = Product["auth_type"];

export const portalKeys = {
  all: (slug: string): QueryKey => ["portal", slug],
  settings: (slug: string): QueryKey => ["portal", slug, "settings"],
  products: (slug: string): QueryKey => ["portal", slug, "products"],
  developers: (slug: string, status: string): QueryKey => ["portal", slug, "developers", status],
  // Every cluster of the organization (a version's choice), under the clusters' key so a new
  // cluster refreshes it.
  clusters: (slug: string): QueryKey => [...keys.clusters(slug), "all"],
};

export const SIGNUP_MODES: { value: SignupMode; label: string }[] = [
  { value: "open", label: "Open: anyone with a verified email" },
  { value: "approval", label: "Anyone may apply; the team approves" },
  { value: "invitation", label: "By invitation only" },
];

export const AUTH_TYPES: { value: AuthType; label: string }[] = [
  { value: "key-auth", label: "API key" },
  { value: "jwt-auth", label: "JWT signed with the application's key" },
];

/** A plan's time windows, in seconds, by the word that reads after "per". */
export const WINDOWS: { value: string; label: string }[] = [
  { value: "1", label: "second" },
  { value: "60", label: "minute" },
  { value: "3600", label: "hour" },
  { value: "86400", label: "day" },
];

/** "1,000 / day", "100 / second"; "Unlimited" without a limit. */
export function planLimit(plan: Pick<Plan, "limit_count" | "time_window">): string {
  if (plan.limit_count === null || plan.time_window === null) return "Unlimited";
  const unit = WINDOWS.find((w) => Number(w.value) === plan.time_window)?.label ?? `${count(plan.time_window)} s`;
  return `${count(plan.limit_count)} / ${unit}`;
}

/** A list the API answers as an array; its schema says a page of one (either is read). */
export function listOf<T>(answer: unknown): T[] {
  return (Array.isArray(answer) ? answer : ((answer as { results?: T[] } | undefined)?.results ?? [])) as T[];
}

/** The portal's settings, and the address developers find it at. */
export function usePortalSettings(slug: string) {
  return useQuery({
    queryKey: portalKeys.settings(slug),
    queryFn: async () => (await unwrap(api.GET("/api/v1/orgs/{org_slug}/portal/settings/", { params: { path: { org_slug: slug } } }))) as PortalSettings,
  });
}
