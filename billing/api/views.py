"""Billing endpoints. The plans are public to every signed-in user; an organization's billing
(summary, plan changes, checkout, portal, invoices) is for its owners and billing members only.
The Stripe webhook is the one unauthenticated endpoint: its signature is its authentication."""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import services, stripe_api
from billing.invoice_documents import invoice_html, invoice_pdf
from billing.late_usage import invoice_lines
from billing.models import Invoice
from billing.plans import all_plans
from core.api.validation import InputValidator, StrictCharField
from core.errors import InvalidInput, NotFound
from tenants.api.scoping import OrganizationScopedViewSet
from tenants.roles import Scope


class TierOutput(serializers.Serializer[dict[str, Any]]):
    up_to = serializers.IntegerField(allow_null=True, help_text="Calls in the period, included ones counted")
    per_million_minor = serializers.CharField(help_text="Per million calls, in minor units (a decimal)")


class PlanOutput(serializers.Serializer[dict[str, Any]]):
    slug = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    base_fee_minor = serializers.IntegerField(help_text="A month, in minor units (cents)")
    included_calls = serializers.IntegerField()
    hard_cap = serializers.BooleanField(help_text="Calls past the allowance are refused (429), not charged")
    custom = serializers.BooleanField(help_text="Sold by contract")
    contact = serializers.CharField()
    tiers = TierOutput(many=True)


class PlansOutput(serializers.Serializer[dict[str, Any]]):
    plans = PlanOutput(many=True)


class BillingPeriodOutput(serializers.Serializer[dict[str, Any]]):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(help_text="Exclusive: the next period's start")
    elapsed_percent = serializers.FloatField(help_text="What the projection extrapolates from")


class DayUsageOutput(serializers.Serializer[dict[str, Any]]):
    day = serializers.DateField(help_text="A UTC day")
    calls = serializers.IntegerField(allow_null=True, help_text="null: the day has not begun")


class QuotaOutput(serializers.Serializer[dict[str, Any]]):
    exceeded = serializers.BooleanField()
    resets_at = serializers.DateTimeField(allow_null=True)


class PlanChangeOption(serializers.Serializer[dict[str, Any]]):
    plan = PlanOutput()
    change = serializers.ChoiceField(choices=["upgrade", "downgrade"])
    billed_plan = serializers.CharField(
        help_text="The plan this period would be billed at: the new one, or the current one when "
        "the period's calls are past the new allowance and it costs more"
    )
    cost_so_far_minor = serializers.IntegerField(help_text="This period's cost so far after the change")
    projected_cost_minor = serializers.IntegerField()
    calls_refused = serializers.BooleanField(
        help_text="The new plan's hard cap is passed already: calls refused (429) until the period ends"
    )


class LateUsageLine(serializers.Serializer[dict[str, Any]]):
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    amount_minor = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    from_period = serializers.CharField()


class BillingSummaryOutput(serializers.Serializer[dict[str, Any]]):
    plan = PlanOutput()
    stripe_connected = serializers.BooleanField()
    subscription_status = serializers.CharField(allow_null=True)
    period = BillingPeriodOutput()
    calls = serializers.IntegerField(help_text="This period's so far")
    usage_by_day = DayUsageOutput(many=True, help_text="Every UTC day of the period, oldest first")
    included_calls = serializers.IntegerField()
    allowance_used_percent = serializers.FloatField(allow_null=True)
    billed_plan = serializers.CharField(
        help_text="The plan that bills this period so far: the current one, or one left during it "
        "after the calls had passed the new allowance, when that costs more"
    )
    cost_so_far_minor = serializers.IntegerField()
    projected_calls = serializers.IntegerField(
        help_text="Linear: the calls so far over the elapsed share of the period; a hard cap stops it"
    )
    projected_cost_minor = serializers.IntegerField()
    late_usage = LateUsageLine(many=True)
    currency = serializers.CharField()
    quota = QuotaOutput()
    plan_changes = PlanChangeOption(many=True, help_text="Each other self-serve plan; none on a contract")


class UrlOutput(serializers.Serializer[dict[str, Any]]):
    url = serializers.URLField()


class PlansView(APIView):
    """The plans on offer."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: PlansOutput}, operation_id="billing_plans")
    def get(self, request: Request) -> Response:
        return Response({"plans": [services.plan_document(plan) for plan in all_plans().values()]})


class PlanChoice(InputValidator):
    plan = StrictCharField(max_length=40)


class BillingViewSet(OrganizationScopedViewSet):
    """The organization's plan, this period's usage against the allowance, the cost so far and
    projected, and the quota; plan changes (run locally) or Stripe Checkout and Billing Portal."""

    scope_map = {
        "summary": Scope.BILLING_READ,
        "plan": Scope.BILLING_WRITE,
        "checkout": Scope.BILLING_WRITE,
        "portal": Scope.BILLING_WRITE,
    }

    def _return_url(self) -> str:
        return f"{settings.PUBLIC_URL}/orgs/{self.organization.slug}/billing"

    @extend_schema(responses={200: BillingSummaryOutput}, operation_id="billing_summary")
    def summary(self, request: Request, org_slug: str) -> Response:
        return Response(services.billing_summary(self.organization, usage_by_day=True))

    @extend_schema(
        request=PlanChoice,
        responses={200: BillingSummaryOutput},
        operation_id="billing_change_plan",
        summary="Change the plan now, up or down (billing run locally); the summary after it",
    )
    def plan(self, request: Request, org_slug: str) -> Response:
        choice = PlanChoice(data=request.data)
        choice.is_valid(raise_exception=True)
        services.change_plan(self.actor, self.organization, choice.validated_data["plan"])
        return Response(services.billing_summary(self.organization, usage_by_day=True))

    @extend_schema(request=PlanChoice, responses={200: UrlOutput}, operation_id="billing_checkout")
    def checkout(self, request: Request, org_slug: str) -> Response:
        choice = PlanChoice(data=request.data)
        choice.is_valid(raise_exception=True)
        url = services.checkout_url(
            self.actor, self.organization, choice.validated_data["plan"], self._return_url()
        )
        return Response({"url": url})

    @extend_schema(request=None, responses={200: UrlOutput}, operation_id="billing_portal")
    def portal(self, request: Request, org_slug: str) -> Response:
        return Response({"url": services.portal_url(self.actor, self.organization, self._return_url())})


class InvoiceOutput(serializers.ModelSerializer[Invoice]):
    document_url = serializers.SerializerMethodField()
    html_url = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()
    late_usage = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "source",
            "period_start",
            "period_end",
            "currency",
            "amount_due_minor",
            "status",
            "plan",
            "calls",
            "hosted_invoice_url",
            "invoice_pdf_url",
            "document_url",
            "html_url",
            "pdf_url",
            "late_usage",
        ]

    def get_document_url(self, invoice: Invoice) -> str | None:
        if invoice.source != Invoice.Source.LOCAL:
            return None
        return f"/api/v1/orgs/{invoice.organization.slug}/billing/invoices/{invoice.id}/document/"

    def get_html_url(self, invoice: Invoice) -> str | None:
        """The invoice to read in a browser: the local document, or Stripe's hosted page."""
        return self.get_document_url(invoice) or invoice.hosted_invoice_url or None

    def get_pdf_url(self, invoice: Invoice) -> str | None:
        """The invoice as a PDF: the local document's (?as=pdf), or Stripe's."""
        document = self.get_document_url(invoice)
        return f"{document}?as=pdf" if document else invoice.invoice_pdf_url or None

    @extend_schema_field(LateUsageLine(many=True))
    def get_late_usage(self, invoice: Invoice) -> list[dict[str, Any]]:
        """Late usage of closed periods this invoice bills, one line each (amount_minor null:
        priced by Stripe within the period's metered calls)."""
        return invoice_lines(invoice)


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrganizationScopedViewSet):
    """Invoices: mirrored from Stripe, or made by the control plane when billing runs locally
    (with an HTML document, and PDF with ?as=pdf)."""

    queryset = Invoice.objects.select_related("organization")
    serializer_class = InvoiceOutput
    scope_map = {"list": Scope.BILLING_READ, "retrieve": Scope.BILLING_READ, "document": Scope.BILLING_READ}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "as", str, enum=["html", "pdf"], description="html (the default) or pdf", required=False
            )
        ],
        responses={
            (200, "text/html"): OpenApiTypes.STR,
            (200, "application/pdf"): OpenApiTypes.BINARY,
        },
        operation_id="billing_invoice_document",
        summary="A local invoice as HTML, or as PDF with ?as=pdf",
    )
    def document(self, request: Request, org_slug: str, pk: str) -> HttpResponse:
        invoice = self.get_object()
        if invoice.source != Invoice.Source.LOCAL:
            raise NotFound("Stripe's invoices are at their hosted_invoice_url and invoice_pdf_url.")
        kind = request.query_params.get("as", "html")
        if kind not in ("html", "pdf"):
            raise InvalidInput.field("as", "html or pdf.")
        if kind == "pdf":
            response = HttpResponse(invoice_pdf(invoice), content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{invoice.number}.pdf"'
            return response
        return HttpResponse(invoice_html(invoice), content_type="text/html; charset=utf-8")


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's events, verified by signature (a bad one: 400, nothing changes), each once."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        return JsonResponse({"detail": "Stripe webhooks are not configured."}, status=404)
    try:
        event = stripe_api.verified_event(request.body, request.headers.get("Stripe-Signature"))
    except (ValueError, stripe.SignatureVerificationError):
        return JsonResponse({"detail": "Invalid Stripe signature or payload."}, status=400)
    payload: dict[str, Any] = event.to_dict()
    handled = services.handle_stripe_event(payload)
    return JsonResponse({"received": True, "duplicate": not handled})
