"""Jitter and backoff stay within their bounds, whatever the random draw."""

from __future__ import annotations

import random

import pytest

from patchday.agent.backoff import MAX_INTERVAL, MIN_INTERVAL, Backoff, clamp_interval, jittered

from .conftest import seeded


class Extreme(random.Random):
    """A Random whose uniform() returns one end of the range."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end == "low" else b


def test_the_checkin_interval_is_jittered_by_at_most_20_percent() -> None:
    rng = seeded(1)
    draws = [jittered(300, rng) for _ in range(5000)]
    assert all(240 <= d <= 360 for d in draws)
    assert min(draws) < 250
    assert max(draws) > 350
    assert jittered(300, Extreme("low")) == pytest.approx(240)
    assert jittered(300, Extreme("high")) == pytest.approx(360)


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(base=10, cap=900)
    assert [backoff.ceiling(n) for n in range(1, 10)] == [10, 20, 40, 80, 160, 320, 640, 900, 900]
    assert backoff.ceiling(10_000) == 900  # no overflow after a very long outage


@pytest.mark.parametrize("failures", [1, 2, 3, 5, 8, 20, 1000])
def test_each_backoff_delay_lies_between_half_the_ceiling_and_the_ceiling(failures: int) -> None:
    backoff = Backoff(base=10, cap=900)
    rng = seeded(failures)
    ceiling = backoff.ceiling(failures)
    delays = [backoff.delay(failures, rng) for _ in range(2000)]
    assert all(ceiling / 2 <= d <= ceiling for d in delays)
    assert backoff.delay(failures, Extreme("high")) == ceiling
    assert backoff.delay(failures, Extreme("low")) == ceiling / 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (300, 300),
        (0, MIN_INTERVAL),
        (-5, MIN_INTERVAL),
        (10**9, MAX_INTERVAL),
        (90.7, 90),
        ("300", 123),
        (None, 123),
        (True, 123),
        (float("nan"), 123),
    ],
)
def test_the_servers_interval_is_held_to_sane_bounds(value: object, expected: int) -> None:
    assert clamp_interval(value, default=123) == expected
