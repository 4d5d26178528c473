"""A local invoice as a document people read: HTML for the browser, PDF to keep (fpdf2)."""

from __future__ import annotations

import unicodedata
from decimal import Decimal

from django.template.loader import render_to_string
from fpdf import FPDF

from .models import Invoice


def money(amount_minor: int, currency: str) -> str:
    return f"{Decimal(amount_minor) / 100:,.2f} {currency.upper()}"


def _context(invoice: Invoice) -> dict[str, object]:
    return {
        "invoice": invoice,
        "organization": invoice.organization,
        "lines": [
            {**line, "amount": money(int(line["amount_minor"]), invoice.currency)} for line in invoice.lines
        ],
        "total": money(invoice.amount_due_minor, invoice.currency),
    }


def _latin1(text: str) -> str:
    """The PDF's core font (Helvetica) writes Latin-1 only: a letter outside it is written without
    its accents where it has a plain form, else as "?" (an organization named in another script
    still gets its invoice)."""

    def plain(char: str) -> str:
        if ord(char) < 256:
            return char
        return unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode() or "?"

    return "".join(plain(char) for char in text.replace("\u2014", "-").replace("\u2013", "-"))


def invoice_html(invoice: Invoice) -> str:
    return render_to_string("billing/invoice.html", _context(invoice))


def invoice_pdf(invoice: Invoice) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(f"Invoice {invoice.number}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, _latin1(f"Invoice {invoice.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    for text in (
        f"Organization: {invoice.organization.name}",
        f"Period: {invoice.period_start:%Y-%m-%d} to {invoice.period_end:%Y-%m-%d} (UTC)",
        f"Status: {invoice.status}",
    ):
        pdf.cell(0, 7, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for line in _context(invoice)["lines"]:  # type: ignore[attr-defined]
        pdf.cell(140, 8, _latin1(str(line["description"])))
        pdf.cell(0, 8, str(line["amount"]), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(140, 10, "Total due")
    pdf.cell(
        0, 10, money(invoice.amount_due_minor, invoice.currency), align="R", new_x="LMARGIN", new_y="NEXT"
    )
    return bytes(pdf.output())
