"""Injected faults: "answer the next n matching requests with this", or hang them.

Faults are consumed in the order they were added; a request takes the first
rule that matches its method and path and still has uses left. They are
answered before rate limiting and authentication, so a test gets exactly the
failure it asked for whatever else is going on.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

HANG_SECONDS = 3600.0
"""How long a hung request sleeps: longer than any client timeout (reset and shutdown wake it)."""


@dataclass
class Fault:
    """One rule; ``body`` None means the vendor's usual body for ``status``."""

    remaining: int
    status: int = 500
    body: Any = None
    retry_after: float | None = None
    path_prefix: str | None = None
    method: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    hang_seconds: float = HANG_SECONDS

    def __post_init__(self) -> None:
        if self.remaining < 1:
            raise ValueError("a fault needs n >= 1")
        if self.method is not None:
            self.method = self.method.upper()

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and (self.method is None or self.method == method.upper())
            and (self.path_prefix is None or path.startswith(self.path_prefix))
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.remaining,
            "status": self.status,
            "body": self.body,
            "retry_after": self.retry_after,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "headers": self.headers,
            "hang": self.hang,
            "hang_seconds": self.hang_seconds,
        }

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> "Fault":
        """A rule from the admin API's JSON (the keys of :meth:`to_json`)."""
        unknown = set(spec) - {
            "n",
            "status",
            "body",
            "retry_after",
            "path_prefix",
            "method",
            "headers",
            "hang",
            "hang_seconds",
        }
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        return cls(
            remaining=int(spec.get("n", 1)),
            status=int(spec.get("status", 504 if spec.get("hang") else 500)),
            body=spec.get("body"),
            retry_after=spec.get("retry_after"),
            path_prefix=spec.get("path_prefix"),
            method=spec.get("method"),
            headers=dict(spec.get("headers") or {}),
            hang=bool(spec.get("hang", False)),
            hang_seconds=float(spec.get("hang_seconds", HANG_SECONDS)),
        )


class FaultQueue:
    """The pending rules, in the order they were added."""

    def __init__(self) -> None:
        self._rules: list[Fault] = []
        self.served = 0

    def add(self, fault: Fault) -> None:
        self._rules.append(fault)

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching rule, with one use consumed; None when none matches."""
        for rule in self._rules:
            if rule.matches(method, path):
                rule.remaining -= 1
                self.served += 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
                return rule
        return None

    def clear(self) -> None:
        self._rules.clear()

    def pending(self) -> list[Fault]:
        return list(self._rules)
