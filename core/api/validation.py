"""The base for input validators: unknown fields, wrong types and control characters are refused
with 400 rather than silently ignored or coerced."""

from typing import Any

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A string and only a string: DRF's CharField would turn 12 or true into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class InputValidator(serializers.Serializer):
    """Validates a request body or query. Never saves: views pass `validated_data` to a service."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)

    def create(self, validated_data: Any) -> Any:
        raise NotImplementedError("Input validators do not save; call a service function.")

    def update(self, instance: Any, validated_data: Any) -> Any:
        raise NotImplementedError("Input validators do not save; call a service function.")


def parse_id(text: str, max_digits: int = 18) -> int | None:
    """A whole number written as ASCII digits (an id, a version, a revision), or None. The one
    check for numbers taken from paths, queries and headers: "²".isdigit() is true and int()
    refuses it, and more than 18 digits would not fit PostgreSQL's bigint."""
    if not (text and text.isascii() and text.isdigit() and len(text) <= max_digits):
        return None
    return int(text)
