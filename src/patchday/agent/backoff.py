"""When to talk to the server next: the jittered check-in interval and the backoff after failures.

Pure functions over a `random.Random` the caller passes in, so tests can pin the bounds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

INTERVAL_JITTER = 0.2  # each check-in waits interval x [0.8, 1.2], so a fleet restarted together spreads out
MIN_INTERVAL = 10  # seconds; a server (or a typo) asking for less is not obeyed
MAX_INTERVAL = 86_400


def clamp_interval(seconds: object, default: int) -> int:
    """The server's `checkin_interval` held to [MIN_INTERVAL, MAX_INTERVAL]; `default` when it is not a number."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds != seconds:
        return default
    return int(min(max(seconds, MIN_INTERVAL), MAX_INTERVAL))


def jittered(interval: float, rng: random.Random, spread: float = INTERVAL_JITTER) -> float:
    """`interval` seconds ± `spread` (a fraction), uniformly."""
    return interval * rng.uniform(1.0 - spread, 1.0 + spread)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with a cap and "equal jitter": after the n-th failure in a row the agent waits
    a uniform time in [c/2, c] with c = min(cap, base * 2^(n-1)), so retries neither hammer a server that
    is coming back nor arrive from the whole fleet in the same second."""

    base: float = 10.0
    cap: float = 900.0

    def ceiling(self, failures: int) -> float:
        """The longest wait after `failures` (>= 1) failures in a row."""
        exponent = min(max(failures, 1) - 1, 32)  # 2^32 * base is far past any cap; no float overflow
        return float(min(self.cap, self.base * 2**exponent))

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after `failures` (>= 1) failures in a row, in [ceiling/2, ceiling]."""
        ceiling = self.ceiling(failures)
        return rng.uniform(ceiling / 2, ceiling)
