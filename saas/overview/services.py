"""What the overview shows, read through each app's facade: gateways (instances and their live
status), metering (the last hour's requests by status class, from the usage rollups, read here),
billing (this period's calls against the plan's allowance), the catalog (route names) and the
audit log (recent changes and who made them). Nothing here writes.

Call inside the organization's schema (the views run there)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Max, Q

from billing.services import billing_summary
from core import clock
from saas.catalog.services import route_names
from saas.gateways.services import ConfigSnapshot, GatewayCluster, instance_statuses
from saas.metering.services import requests_by_minute, requests_by_route
from tenants.models import AuditEntry, Organization
from tenants.roles import Scope

WINDOW_MINUTES = 60
TOP_FAILING_ROUTES = 5
RECENT_CHANGES = 10
ACCOUNT_ACTIVITY = ("user.", "session.", "mfa.")
# Audit actions a member who may read the catalog (but not the audit log) sees in recent changes:
# the configuration of gateways, which snapshots show them anyway.
CATALOG_ACTIONS = (
    "upstream.",
    "service.",
    "route.",
    "consumer.",
    "credential.",
    "certificate.",
    "global_plugin.",
    "config.",
    "snapshot.",
    "cluster.",
)


# --- gateways --------------------------------------------------------------------------------


def gateways(statuses: Iterable[dict[str, Any]]) -> dict[str, int]:
    """How many instances are online, lost, offline, and on their cluster's latest version."""
    counts = {"total": 0, "online": 0, "lost": 0, "offline": 0, "on_latest_version": 0, "outdated": 0}
    for status in statuses:
        counts["total"] += 1
        counts[status["status"]] += 1
        if status["on_latest_version"]:
            counts["on_latest_version"] += 1
        elif status["status"] != "offline":
            counts["outdated"] += 1  # running, on an older version (or none applied yet)
    return counts


def _statuses(organization: Organization, clusters: Iterable[GatewayCluster]) -> list[dict[str, Any]]:
    return [
        status
        for cluster in clusters
        for status in instance_statuses(organization.schema_name, cluster.id, organization.id)
    ]


# --- traffic ---------------------------------------------------------------------------------


def _window(now: datetime) -> tuple[datetime, datetime]:
    """The last hour in whole minutes, the current one included: [start, end)."""
    current = now.replace(second=0, microsecond=0)
    return current - timedelta(minutes=WINDOW_MINUTES - 1), current + timedelta(minutes=1)


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def traffic(cluster_id: int | None, now: datetime) -> dict[str, Any]:
    """Requests of the last hour with 4xx and 5xx apart: totals, error rates (percent of all
    requests) and a per-minute series (every minute, zeros included) for a sparkline."""
    start, end = _window(now)
    per_minute = requests_by_minute(start, end, cluster_id)
    series: list[dict[str, Any]] = []
    for offset in range(WINDOW_MINUTES):
        minute = start + timedelta(minutes=offset)
        classes = per_minute.get(minute, {})
        series.append(
            {
                "t": minute,
                "requests": sum(classes.values()),
                "errors_4xx": classes.get("4xx", 0),
                "errors_5xx": classes.get("5xx", 0),
            }
        )
    requests = sum(sum(classes.values()) for classes in per_minute.values())
    errors_4xx = sum(classes.get("4xx", 0) for classes in per_minute.values())
    errors_5xx = sum(classes.get("5xx", 0) for classes in per_minute.values())
    return {
        "from": start,
        "to": end,
        "requests": requests,
        "errors_4xx": errors_4xx,
        "errors_5xx": errors_5xx,
        "error_rate_4xx_percent": _percent(errors_4xx, requests),
        "error_rate_5xx_percent": _percent(errors_5xx, requests),
        "series": series,
    }


def top_failing_routes(
    cluster_id: int | None, now: datetime, cluster_names: dict[int, str]
) -> list[dict[str, Any]]:
    """The routes with the most 5xx, then 4xx, answers in the last hour, with their names.
    Route 0 is what matched no route (`name` None); a route deleted since has `name` None too."""
    start, end = _window(now)
    routes = requests_by_route(start, end, cluster_id)
    failing = sorted(
        ((key, counts) for key, counts in routes.items() if counts["4xx"] or counts["5xx"]),
        key=lambda item: (-item[1]["5xx"], -item[1]["4xx"], item[0]),
    )[:TOP_FAILING_ROUTES]
    ids = [route_id for (_, route_id), _ in failing if route_id]
    names = route_names(ids)
    return [
        {
            "cluster_id": cid,
            "cluster": cluster_names.get(cid),
            "route_id": route_id,
            "name": names.get(route_id),
            "requests": counts["requests"],
            "errors_5xx": counts["5xx"],
            "errors_4xx": counts["4xx"],
            "error_rate_percent": _percent(counts["4xx"] + counts["5xx"], counts["requests"]),
        }
        for (cid, route_id), counts in failing
    ]


# --- quota -----------------------------------------------------------------------------------


def quota(organization: Organization, now: datetime) -> dict[str, Any]:
    """This billing period's calls against the plan's allowance: no prices (those are on the
    billing endpoint, for billing readers)."""
    summary = billing_summary(organization, now)
    plan = summary["plan"]
    return {
        "plan": plan["name"],
        "period_start": summary["period"]["start"],
        "period_end": summary["period"]["end"],
        "calls": summary["calls"],
        "included_calls": summary["included_calls"],
        "used_percent": summary["allowance_used_percent"],
        "hard_cap": plan["hard_cap"],
        "exceeded": summary["quota"]["exceeded"],
        "resets_at": summary["quota"]["resets_at"],
    }


# --- recent changes --------------------------------------------------------------------------


def audit_changes(organization: Organization, scopes: frozenset[str]) -> list[dict[str, Any]]:
    """The latest audit entries: all of them for audit readers; for catalog readers, those
    about the gateways' configuration."""
    # A person's own account activity (signing in, sessions, a second factor) is in the audit log
    # but is no change to the organization.
    entries = AuditEntry.objects.filter(organization=organization).exclude(
        reduce(or_, (Q(action__startswith=prefix) for prefix in ACCOUNT_ACTIVITY))
    )
    if Scope.AUDIT_READ not in scopes:
        entries = entries.filter(reduce(or_, (Q(action__startswith=prefix) for prefix in CATALOG_ACTIONS)))
    return [
        {
            "at": entry.created_at,
            "actor": entry.actor_email or None,
            "action": entry.action,
            "target_type": entry.target_type,
            "target_id": entry.target_id,
            "target": entry.target_repr,
            "version": None,
        }
        for entry in entries.order_by("-created_at", "-id")[:RECENT_CHANGES]
    ]


def snapshot_changes(cluster: GatewayCluster) -> list[dict[str, Any]]:
    """A cluster's latest configuration versions: who published each, and why."""
    snapshots = ConfigSnapshot.objects.filter(cluster=cluster).defer("sections").order_by("-version")
    return [
        {
            "at": snapshot.created_at,
            "actor": snapshot.author or None,
            "action": "snapshot.publish",
            "target_type": "configsnapshot",
            "target_id": str(snapshot.id),
            "target": snapshot.reason,
            "version": snapshot.version,
        }
        for snapshot in snapshots[:RECENT_CHANGES]
    ]


# --- the two overviews -----------------------------------------------------------------------


def organization_overview(organization: Organization, scopes: frozenset[str]) -> dict[str, Any]:
    """Each part the caller's scopes allow, the others None: gateways, traffic and failing
    routes for catalog readers; quota for catalog or billing readers; recent changes from the
    audit log (all of it for audit readers, configuration changes for catalog readers)."""
    now = clock.now()
    catalog = Scope.CATALOG_READ in scopes
    clusters = list(GatewayCluster.objects.order_by("id")) if catalog else []
    names = {cluster.id: cluster.name for cluster in clusters}
    latest = (
        dict(
            ConfigSnapshot.objects.values("cluster_id")
            .order_by("cluster_id")
            .annotate(version=Max("version"))
            .values_list("cluster_id", "version")
        )
        if catalog
        else {}
    )
    return {
        "generated_at": now,
        "clusters": [{"id": c.id, "name": c.name, "latest_version": latest.get(c.id)} for c in clusters]
        if catalog
        else None,
        "gateways": gateways(_statuses(organization, clusters)) if catalog else None,
        "traffic": traffic(None, now) if catalog else None,
        "top_failing_routes": top_failing_routes(None, now, names) if catalog else None,
        "quota": quota(organization, now) if catalog or Scope.BILLING_READ in scopes else None,
        "recent_changes": audit_changes(organization, scopes)
        if catalog or Scope.AUDIT_READ in scopes
        else None,
    }


def cluster_overview(
    organization: Organization, cluster: GatewayCluster, scopes: frozenset[str]
) -> dict[str, Any]:
    """One cluster's: its gateways and latest version, its traffic and failing routes, the
    organization's quota (gateways refuse calls past a hard cap), and its recent versions."""
    now = clock.now()
    latest = (
        ConfigSnapshot.objects.filter(cluster=cluster)
        .order_by("-version")
        .values_list("version", flat=True)
        .first()
    )
    return {
        "generated_at": now,
        "cluster": {"id": cluster.id, "name": cluster.name, "latest_version": latest},
        "gateways": gateways(_statuses(organization, [cluster])),
        "traffic": traffic(cluster.id, now),
        "top_failing_routes": top_failing_routes(cluster.id, now, {cluster.id: cluster.name}),
        "quota": quota(organization, now),
        "recent_changes": snapshot_changes(cluster),
    }
