"""Usage for billing (the organization's billable calls per period) and traffic analytics (one
cluster over a range). Both scoped like every endpoint: the organization's members, by role."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from core import clock
from core.api.validation import parse_id
from core.errors import InvalidInput
from saas.gateways.api.scoping import ClusterScopedViewSet
from saas.gateways.services import GatewayCluster
from saas.metering import services
from tenants.api.scoping import OrganizationScopedViewSet
from tenants.models import Organization
from tenants.roles import Scope


class UsageViewSet(OrganizationScopedViewSet):
    """The organization's billable calls in a billing period (a calendar month, UTC): every
    request its gateways answered. The figure billing invoices."""

    queryset = Organization.objects.none()
    scope_map = {"list": Scope.BILLING_READ}

    @extend_schema(
        parameters=[OpenApiParameter("period", str, description="YYYY-MM; the current month when omitted")],
        responses={200: OpenApiTypes.OBJECT},
        operation_id="usage_for_period",
    )
    def list(self, request: Request, org_slug: str) -> Response:
        label = request.query_params.get("period")
        period = (
            services.BillingPeriod.parse(label) if label else services.BillingPeriod.containing(clock.now())
        )
        return Response(
            {
                "period": period.label,
                "start": period.start,
                "end": period.end,
                "billable_calls": services.billable_calls(self.organization, period),
            }
        )


def _moment(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput.field(field, "An ISO 8601 time, for example 2026-11-26T10:00:00Z.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class AnalyticsViewSet(ClusterScopedViewSet):
    """A cluster's traffic over `range` (1h, 24h, 7d, 30d; default 24h) or from/to, in minute,
    hour or day buckets: requests by status class and code, bytes, latency percentiles, top
    routes, consumers and statuses; optionally only one route's (`route_id`), one consumer's
    (`consumer`) or one status's (`status`) requests."""

    queryset = GatewayCluster.objects.none()
    scope_map = {"list": Scope.CATALOG_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter("range", str, enum=list(services.RANGES)),
            OpenApiParameter("from", str, description="ISO 8601; with `to`, instead of range"),
            OpenApiParameter("to", str),
            OpenApiParameter("bucket", str, enum=list(services.BUCKETS)),
            OpenApiParameter(
                "route_id", int, description="Only this route's requests (0: those that matched no route)"
            ),
            OpenApiParameter(
                "consumer", str, description="Only this consumer's requests (empty: the anonymous ones)"
            ),
            OpenApiParameter(
                "status",
                str,
                description="Only the requests answered with this status: a code the gateways count "
                "one by one (`status_codes` in the answer, such as 429) or a class (4xx)",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT},
        operation_id="cluster_analytics",
    )
    def list(self, request: Request, org_slug: str, cluster_id: str) -> Response:
        params = request.query_params
        if "from" in params or "to" in params:
            start = _moment(params.get("from", ""), "from")
            end = _moment(params.get("to", ""), "to") if "to" in params else clock.now()
        else:
            span = params.get("range", "24h")
            if span not in services.RANGES:
                raise InvalidInput.field("range", f"One of: {', '.join(services.RANGES)}.")
            end = clock.now()
            start = end - services.RANGES[span]
        default_bucket = "minute" if end - start <= services.RANGES["1h"] else "hour"
        bucket = params.get("bucket", default_bucket if end - start <= services.RANGES["7d"] else "day")
        route_id: int | None = None
        if "route_id" in params:
            route_id = parse_id(params["route_id"])
            if route_id is None:
                raise InvalidInput.field("route_id", "A route's id: a whole number, 0 for no route matched.")
        consumer: str | None = None
        if "consumer" in params:
            consumer = params["consumer"]
            if len(consumer) > 100 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in consumer):
                raise InvalidInput.field("consumer", "A consumer's username: at most 100 characters.")
        data: dict[str, Any] = services.traffic(
            self.cluster.id,
            start,
            end,
            bucket,
            route_id=route_id,
            consumer=consumer,
            status=params.get("status"),
        )
        return Response(data)
