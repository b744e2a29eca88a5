"""Rolling-window rate limiting, and the measurement tests assert on.

The vendors document limits as "N requests per rolling window of W seconds".
The simulator admits a request while fewer than N *accepted* requests arrived
in the last W seconds (so a client that keeps hammering is not locked out for
ever), and answers the rest with 429 and the time until the window has room.
Independently, :func:`max_in_window` counts *every* request a client sent, so a
test can assert that the client itself never sent more than N per window,
which is the promise our handlers make.
"""

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` requests in any ``window`` seconds."""

    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window <= 0:
            raise ValueError(f"a rate limit needs limit >= 1 and window > 0, got {self}")


class RollingWindow:
    """Admission control for one :class:`RateLimit`, on an injectable monotonic clock."""

    def __init__(self, rate: RateLimit, clock: Callable[[], float]) -> None:
        self.rate = rate
        self._clock = clock
        self._accepted: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._accepted and now - self._accepted[0] >= self.rate.window:
            self._accepted.popleft()

    def try_acquire(self, now: float | None = None) -> float | None:
        """Admit a request arriving ``now``: None if admitted, else seconds until room."""
        now = self._clock() if now is None else now
        self._expire(now)
        if len(self._accepted) < self.rate.limit:
            self._accepted.append(now)
            return None
        return max(self._accepted[0] + self.rate.window - now, 0.0)

    def in_window(self) -> int:
        """How many accepted requests the current window holds."""
        self._expire(self._clock())
        return len(self._accepted)


def retry_after_seconds(wait: float) -> int:
    """``Retry-After`` is whole seconds: round up, and never tell a client "0"."""
    return max(1, math.ceil(wait))


def max_in_window(times: Sequence[float], window: float) -> int:
    """The most of ``times`` (sorted or not) that any half-open window ``[t, t+window)`` holds."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
