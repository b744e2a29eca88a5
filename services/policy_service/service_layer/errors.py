"""What a use case can refuse; the HTTP layer maps each to a problem response."""

from dataclasses import dataclass


class ServiceError(Exception):
    """Base of the refusals a handler raises on purpose."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    status, title = 404, "Not Found"


class Forbidden(ServiceError):
    status, title = 403, "Forbidden"


class Conflict(ServiceError):
    status, title = 409, "Conflict"


class PreconditionFailed(ServiceError):
    status, title = 412, "Precondition Failed"


@dataclass(frozen=True)
class FieldProblem:
    """One bad field: where (a path of keys and indexes) and why."""

    loc: tuple[str | int, ...]
    message: str


class Invalid(ServiceError):
    """The request is well-formed but breaks a rule (422), field by field."""

    status, title = 422, "Unprocessable Content"

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems) or "invalid request")
        self.problems = problems
