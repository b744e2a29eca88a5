"""What a scenario returns (figures and named checks) and the table they are printed in."""

import textwrap
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    """One scenario's outcome.

    ``figures`` are what it measured, in print order; ``checks`` are the invariants it
    asserts (name -> held). The verdict is PASS only when every check held. A failure
    reduced to a known broker bug is reported as XFAIL with the reproduction's name
    (``known_broker_issue``), never silently passed.
    """

    scenario: str
    size: str
    figures: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    known_broker_issue: str | None = None

    def check(self, name: str, ok: bool) -> bool:
        self.checks[name] = bool(ok) and self.checks.get(name, True)
        return bool(ok)

    @property
    def failed_checks(self) -> list[str]:
        return [name for name, ok in self.checks.items() if not ok]

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and not self.failed_checks

    @property
    def verdict(self) -> str:
        if self.passed:
            return "PASS"
        return "XFAIL" if self.known_broker_issue else "FAIL"

    def figure_text(self) -> list[str]:
        parts = [f"{name}={_fmt(value)}" for name, value in self.figures.items()]
        parts.append(f"time={self.seconds:.0f}s")
        return parts


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def text_table(results: list[Result], width: int = 70) -> str:
    """A plain-text table: scenario | size | figures | verdict, figures wrapped."""
    rows = []
    for r in results:
        figures = textwrap.wrap("; ".join(r.figure_text()), width) or [""]
        rows.append(([r.scenario], textwrap.wrap(r.size, 22) or [""], figures, [r.verdict]))
    headers = ("scenario", "size", "figures", "verdict")
    widths = [
        max(len(headers[i]), *(len(line) for row in rows for line in row[i])) for i in range(4)
    ]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [sep, _line(headers, widths), sep.replace("-", "=")]
    for row in rows:
        height = max(len(cell) for cell in row)
        out.extend(
            _line([cell[i] if i < len(cell) else "" for cell in row], widths) for i in range(height)
        )
        out.append(sep)
    return "\n".join(out)


def _line(cells: Any, widths: list[int]) -> str:
    return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def markdown_table(results: list[Result]) -> str:
    lines = ["| scenario | size | figures | verdict |", "|---|---|---|---|"]
    for r in results:
        figures = "<br>".join(r.figure_text())
        lines.append(f"| {r.scenario} | {r.size} | {figures} | {r.verdict} |")
    return "\n".join(lines)


def failures(results: list[Result]) -> str:
    """Why each scenario that did not pass failed."""
    out = []
    for r in results:
        if r.passed:
            continue
        why = r.error or ", ".join(r.failed_checks) or "no checks ran"
        note = f" (known broker issue: {r.known_broker_issue})" if r.known_broker_issue else ""
        out.append(f"{r.verdict} {r.scenario}{note}: {why}")
    return "\n".join(out)
