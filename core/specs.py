"""Input contracts written as pydantic models, shared by the REST API and declarative files:
one set of rules and messages. Bad input becomes InvalidInput (HTTP 400) with a field per error."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import InvalidInput


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def parse_spec(model: type[Spec], data: Any, *, prefix: str = "") -> Any:
    """Validate `data` against `model`; bad input becomes InvalidInput with a field per error."""
    if not isinstance(data, dict):
        raise InvalidInput.field(prefix.rstrip(".") or "non_field_errors", "Expected a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input_from(exc, prefix) from exc


def invalid_input_from(exc: ValidationError, prefix: str = "", strip_first: bool = False) -> InvalidInput:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        location = list(error["loc"])[1 if strip_first else 0 :]
        # Discriminated unions add the variant's tag to the path; users never wrote it.
        location = [part for part in location if not (isinstance(part, str) and part.endswith("-auth"))]
        message = str(error["msg"]).removeprefix("Value error, ")
        # A model-level check names its field first ("field: message").
        if error["type"] == "value_error" and ": " in message and " " not in message.split(": ", 1)[0]:
            named, message = message.split(": ", 1)
            location.append(named)
        field = ".".join(str(part) for part in location)
        if error["type"] == "extra_forbidden":
            message = "Unknown field."
        key = prefix + field if field else (prefix.rstrip(".") or "non_field_errors")
        errors.setdefault(key, []).append(message)
    first_field, first_messages = next(iter(errors.items()))
    return InvalidInput(errors, detail=f"{first_field}: {first_messages[0]}")
