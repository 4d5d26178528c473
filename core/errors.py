"""Errors raised by service functions; the API turns them into HTTP answers (core.api.errors)."""


class ServiceError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(ServiceError):
    """HTTP 400. `errors` maps a field to its messages, as a serializer would."""

    def __init__(self, errors: dict[str, list[str]] | None = None, detail: str = "Invalid input.") -> None:
        super().__init__(detail)
        self.errors = errors or {}

    @classmethod
    def field(cls, name: str, message: str) -> "InvalidInput":
        return cls({name: [message]}, detail=message)


class Forbidden(ServiceError):
    """HTTP 403."""


class NotFound(ServiceError):
    """HTTP 404."""


class Conflict(ServiceError):
    """HTTP 409: not possible in the current state (for example billing's mode)."""


class StaleRevision(ServiceError):
    """HTTP 412: the write named a revision of the object that is no longer the current one."""

    def __init__(self, detail: str, current: dict[str, object]) -> None:
        super().__init__(detail)
        self.current = current
