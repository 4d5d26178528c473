// The console's cached lists by query key, and what refreshes them after the user's own writes.
import { type QueryKey, useQueryClient } from "@tanstack/react-query";

type ClusterPath = { org_slug: string; cluster_id: string };

/** Each list's query key, in one place: the page that reads a list and the writes that change it
 * name it the same way. A key is also a prefix: ["catalog", path] covers every kind's list. */
export const keys = {
  me: (): QueryKey => ["me"],
  members: (slug: string): QueryKey => ["members", slug],
  invitations: (slug: string): QueryKey => ["invitations", slug],
  tokens: (slug: string): QueryKey => ["tokens", slug],
  audit: (slug: string): QueryKey => ["audit", slug],
  billing: (slug: string): QueryKey => ["billing", slug],
  invoices: (slug: string): QueryKey => ["invoices", slug],
  aws: (slug: string): QueryKey => ["aws", slug],
  clusters: (slug: string): QueryKey => ["clusters", slug],
  cluster: (slug: string, clusterId: string): QueryKey => ["cluster", slug, clusterId],
  instances: (path: ClusterPath): QueryKey => ["instances", path],
  deployments: (path: ClusterPath): QueryKey => ["deployments", path],
  snapshots: (path: ClusterPath): QueryKey => ["snapshots", path],
  catalog: (path: ClusterPath): QueryKey => ["catalog", path],
  credentials: (path: ClusterPath, consumerId: number): QueryKey => ["credentials", path, consumerId],
  // The overviews: the organization's, and each cluster's under it (["overview", slug] covers both).
  overview: (slug: string): QueryKey => ["overview", slug],
  clusterOverview: (path: ClusterPath): QueryKey => ["overview", path.org_slug, path.cluster_id],
  clusterTokens: (path: ClusterPath): QueryKey => ["cluster-tokens", path],
};

/** What a change to a cluster's catalog changes besides itself: it publishes a new configuration
 * version, which the history lists and the cluster, its list entry and its instances show as the
 * latest. */
export function published(path: ClusterPath): QueryKey[] {
  return [keys.catalog(path), keys.snapshots(path), keys.cluster(path.org_slug, path.cluster_id), keys.clusters(path.org_slug), keys.instances(path)];
}

/** After a write in the organization `slug`: refetch the lists it changed, and the audit log,
 * where every write leaves an entry (tenants/audit.py). Resolves once the lists on screen have
 * reloaded; lists not on screen reload when next shown. */
export function useAfterWrite(slug: string) {
  const queries = useQueryClient();
  return (...changed: QueryKey[]) => Promise.all([...changed, keys.audit(slug)].map((queryKey) => queries.invalidateQueries({ queryKey })));
}

type AnalyticsFilters = { range: string; route_id?: number | null; consumer?: string | null };

/** The catalog, history and traffic panels' own queries (appended: other pages add theirs to
 * `keys`). Under ["catalog", path] what a catalog write changes; the API's OpenAPI document and
 * the plugin schemas change only with a new release. */
export const catalogKeys = {
  openapi: (): QueryKey => ["openapi"],
  plugins: (): QueryKey => ["plugins"],
  globalPlugins: (path: ClusterPath): QueryKey => [...keys.catalog(path), "global-plugins"],
  diff: (path: ClusterPath, version: number | null): QueryKey => ["snapshot-diff", path, version],
  analytics: (path: ClusterPath, filters: AnalyticsFilters): QueryKey => ["analytics", path, filters],
};
