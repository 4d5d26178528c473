from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

ORG = r"orgs/(?P<org_slug>[^/]+)"

router = SimpleRouter()
router.register(rf"{ORG}/billing/invoices", views.InvoiceViewSet, basename="invoice")

urlpatterns = [
    path("plans/", views.PlansView.as_view(), name="billing-plans"),
    path(
        "orgs/<str:org_slug>/billing/",
        views.BillingViewSet.as_view({"get": "summary"}),
        name="billing-summary",
    ),
    *[
        path(
            f"orgs/<str:org_slug>/billing/{name}/",
            views.BillingViewSet.as_view({"post": name}),
            name=f"billing-{name}",
        )
        for name in ("plan", "checkout", "portal")
    ],
    path(
        "orgs/<str:org_slug>/billing/invoices/<str:pk>/document/",
        views.InvoiceViewSet.as_view({"get": "document"}),
        name="invoice-document",
    ),
    *router.urls,
]
