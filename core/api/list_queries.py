"""Search and sort for list endpoints: one way for all of them.

A viewset declares a `ListQuery`: the fields `?search=` looks in, and an allow-list of the names
`?ordering=` accepts (`name`, or `-name` for descending), each mapped to the model fields it sorts
by. An unknown ordering, or a search with control characters, is a 400 naming the parameter, never
a 500. The order always ends with the primary key, so pages are stable. Pagination (`?page=`,
`?page_size=`) is core.api.pagination's; `ListQuery.parameters()` documents all four for
drf-spectacular.

Most lists are querysets (`apply`); a list computed in Python (gateway instances, with their live
status) uses `apply_to_rows` on dicts with the same declaration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cmp_to_key, reduce
from operator import or_
from typing import Any

from django.db.models import F, Q, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from core.errors import InvalidInput

from .pagination import PageNumberPagination

SEARCH_MAX_LENGTH = 200


class ListQuery:
    """What `?search=` and `?ordering=` may do on one list.

    `search`: model lookups (or, for rows, dict keys) matched case-insensitively as substrings;
    a row matches when any of them does. `ordering`: public name -> the model field (or fields)
    it sorts by. `default`: the ordering used without `?ordering=`, e.g. `"name"` or `"-id"`."""

    def __init__(
        self,
        *,
        search: Iterable[str] = (),
        ordering: Mapping[str, str | tuple[str, ...]],
        default: str,
        search_help: str = "",
    ) -> None:
        self.search = tuple(search)
        self.ordering = {
            name: (fields,) if isinstance(fields, str) else fields for name, fields in ordering.items()
        }
        self.default = default
        self.search_help = search_help
        if default.removeprefix("-") not in self.ordering:
            raise ValueError(f"the default ordering {default!r} is not in the allow-list")

    # --- parsing ------------------------------------------------------------------------------

    def search_term(self, params: Mapping[str, Any]) -> str:
        term = str(params.get("search", "") or "").strip()
        if len(term) > SEARCH_MAX_LENGTH:
            raise InvalidInput.field("search", f"At most {SEARCH_MAX_LENGTH} characters.")
        if any(ord(char) < 32 or ord(char) == 127 for char in term):
            raise InvalidInput.field("search", "Control characters are not allowed.")
        return term

    def order(self, params: Mapping[str, Any]) -> tuple[str, bool]:
        """The public field to sort by and whether descending."""
        value = str(params.get("ordering", "") or "").strip() or self.default
        name = value.removeprefix("-")
        if name not in self.ordering:
            raise InvalidInput.field(
                "ordering",
                f"Sort by one of: {', '.join(sorted(self.ordering))} (prefix - for descending).",
            )
        return name, value.startswith("-")

    # --- applying -----------------------------------------------------------------------------

    def apply(self, queryset: QuerySet[Any], params: Mapping[str, Any]) -> QuerySet[Any]:
        term = self.search_term(params)
        if term and self.search:
            queryset = queryset.filter(
                reduce(or_, (Q(**{f"{field}__icontains": term}) for field in self.search))
            )
        name, descending = self.order(params)
        fields = [*self.ordering[name], "pk"]
        return queryset.order_by(
            *(
                F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
                for field in fields
            )
        )

    def apply_to_rows(self, rows: list[dict[str, Any]], params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The same on rows computed in Python: search in the `search` keys, sort by the
        `ordering` keys (missing values last, whatever the direction), then by `id`."""
        term = self.search_term(params).casefold()
        if term and self.search:
            rows = [
                row for row in rows if any(term in str(row.get(key) or "").casefold() for key in self.search)
            ]
        name, descending = self.order(params)
        keys = [*self.ordering[name], "id"]

        def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
            for key in keys:
                left, right = _sortable(a.get(key)), _sortable(b.get(key))
                if left == right:
                    continue
                if left is None or right is None:
                    return 1 if left is None else -1  # missing values last
                result = -1 if left < right else 1
                return -result if descending else result
            return 0

        return sorted(rows, key=cmp_to_key(compare))

    # --- documentation ------------------------------------------------------------------------

    def parameters(self, paginated: bool = True) -> list[OpenApiParameter]:
        """`search` (when the list has search fields), `ordering`, and unless the list is not
        paginated, `page` and `page_size`."""
        parameters = []
        if self.search:
            parameters.append(
                OpenApiParameter(
                    "search",
                    OpenApiTypes.STR,
                    description=f"Case-insensitive substring of {self.search_help or ', '.join(self.search)}.",
                )
            )
        names = sorted(self.ordering)
        parameters.append(
            OpenApiParameter(
                "ordering",
                OpenApiTypes.STR,
                enum=[*names, *(f"-{name}" for name in names)],
                description=f"Sort by this field; prefix - for descending. Default: {self.default}.",
            )
        )
        return [*parameters, *page_parameters()] if paginated else parameters


def page_parameters() -> list[OpenApiParameter]:
    return [
        OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="A page number, from 1."),
        OpenApiParameter(
            "page_size",
            {"type": "integer", "minimum": 1, "maximum": PageNumberPagination.max_page_size},
            description=f"Results per page (default {PageNumberPagination.default_size()}).",
        ),
    ]


def _sortable(value: Any) -> Any:
    if isinstance(value, str):
        return value.casefold()
    if isinstance(value, datetime):
        return value.timestamp()
    return value
