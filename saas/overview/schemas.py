"""The OpenAPI schemas of the overview answers (the console's types are generated from them)."""

from typing import Any

_INT = {"type": "integer"}
_TIME = {"type": "string", "format": "date-time"}
_PERCENT = {"type": "number", "nullable": True, "description": "Percent of all requests; null without any"}


def _object(properties: dict[str, Any], nullable: bool = False, **extra: Any) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": list(properties), **extra}
    if nullable:
        schema["nullable"] = True
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


GATEWAYS = _object(
    {
        "total": _INT,
        "online": {**_INT, "description": "A heartbeat in the last 30 s"},
        "lost": {**_INT, "description": "The last heartbeat 30 s to 2 h ago"},
        "offline": {**_INT, "description": "No heartbeat for 2 h"},
        "on_latest_version": {**_INT, "description": "Running their cluster's latest snapshot"},
        "outdated": {**_INT, "description": "Online or lost, on an older version (or none yet)"},
    }
)
TRAFFIC = _object(
    {
        "from": _TIME,
        "to": _TIME,
        "requests": _INT,
        "errors_4xx": _INT,
        "errors_5xx": _INT,
        "error_rate_4xx_percent": _PERCENT,
        "error_rate_5xx_percent": _PERCENT,
        "series": {
            "type": "array",
            "description": "One point per minute of the last hour, oldest first, zeros included",
            "items": _object({"t": _TIME, "requests": _INT, "errors_4xx": _INT, "errors_5xx": _INT}),
        },
    },
    description="The last hour, in whole minutes (the current one included)",
)
FAILING_ROUTES = {
    "type": "array",
    "description": "By 5xx, then 4xx answers in the last hour; at most 5",
    "items": _object(
        {
            "cluster_id": _INT,
            "cluster": {"type": "string", "nullable": True},
            "route_id": {**_INT, "description": "0: requests that matched no route"},
            "name": {"type": "string", "nullable": True, "description": "null: no route, or deleted since"},
            "requests": _INT,
            "errors_5xx": _INT,
            "errors_4xx": _INT,
            "error_rate_percent": _PERCENT,
        }
    ),
}
QUOTA = _object(
    {
        "plan": {"type": "string"},
        "period_start": _TIME,
        "period_end": _TIME,
        "calls": _INT,
        "included_calls": _INT,
        "used_percent": {"type": "number", "nullable": True},
        "hard_cap": {"type": "boolean", "description": "Past the allowance, gateways answer 429"},
        "exceeded": {"type": "boolean"},
        "resets_at": {**_TIME, "nullable": True},
    },
    description="This billing period's calls against the plan's allowance",
)
CHANGES = {
    "type": "array",
    "description": "Newest first, at most 10",
    "items": _object(
        {
            "at": _TIME,
            "actor": {"type": "string", "nullable": True, "description": "Who: an email"},
            "action": {"type": "string"},
            "target_type": {"type": "string"},
            "target_id": {"type": "string"},
            "target": {"type": "string"},
            "version": {**_INT, "nullable": True, "description": "The snapshot version, for a publish"},
        }
    ),
}
_CLUSTER = _object({"id": _INT, "name": {"type": "string"}, "latest_version": {**_INT, "nullable": True}})

ORGANIZATION_OVERVIEW = _object(
    {
        "generated_at": _TIME,
        "clusters": _nullable({"type": "array", "items": _CLUSTER}),
        "gateways": _nullable(GATEWAYS),
        "traffic": _nullable(TRAFFIC),
        "top_failing_routes": _nullable(FAILING_ROUTES),
        "quota": _nullable(QUOTA),
        "recent_changes": _nullable(CHANGES),
    },
    description="Parts the caller's role may not see are null: clusters, gateways, traffic and "
    "failing routes need catalog:read; quota catalog:read or billing:read; recent changes "
    "audit:read (every entry) or catalog:read (configuration changes).",
)
CLUSTER_OVERVIEW = _object(
    {
        "generated_at": _TIME,
        "cluster": _CLUSTER,
        "gateways": GATEWAYS,
        "traffic": TRAFFIC,
        "top_failing_routes": FAILING_ROUTES,
        "quota": QUOTA,
        "recent_changes": {
            **CHANGES,
            "description": "The cluster's latest snapshots: who published each, why",
        },
    }
)
