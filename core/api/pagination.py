"""The one pagination of every list: `?page=` (from 1) and `?page_size=` (1 to 200, default the
PAGE_SIZE setting), answered as {count, next, previous, results}. A page or page size that is not
such a number is a 400 naming it; a page past the last is a 404."""

from typing import Any

from django.conf import settings
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from core.api.validation import parse_id


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200

    @classmethod
    def default_size(cls) -> int:
        size = settings.REST_FRAMEWORK.get("PAGE_SIZE")
        return size if isinstance(size, int) and size > 0 else 50

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size or self.default_size()
        size = parse_id(raw, max_digits=4)
        if size is None or not 1 <= size <= self.max_page_size:
            raise ValidationError({"page_size": [f"A whole number from 1 to {self.max_page_size}."]})
        return size

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and raw not in ("", *self.last_page_strings) and not parse_id(raw):
            raise ValidationError({"page": ["A page number, from 1."]})
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "A page number, from 1.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.default_size()}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
