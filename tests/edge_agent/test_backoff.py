"""The reconnect backoff is a pure function: tested without sleeping."""

from __future__ import annotations

from itertools import pairwise

import pytest

from edge_agent.backoff import BASE_DELAY_S, MAX_DELAY_S, MIN_DELAY_S, backoff


def test_deterministic_doubles_then_caps() -> None:
    delays = [backoff(n, jitter=None) for n in range(12)]
    assert delays[0] == BASE_DELAY_S
    assert delays[1] == 2 * BASE_DELAY_S
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0]
    assert delays[-1] == MAX_DELAY_S
    assert all(a <= b for a, b in pairwise(delays))


def test_full_jitter_bounds() -> None:
    assert backoff(3, jitter=lambda: 0.0) == MIN_DELAY_S
    assert backoff(3, jitter=lambda: 1.0) == 8.0
    assert backoff(3, jitter=lambda: 0.5) == pytest.approx(MIN_DELAY_S + 0.5 * (8.0 - MIN_DELAY_S))


def test_huge_attempt_does_not_overflow() -> None:
    assert backoff(10_000, jitter=None) == MAX_DELAY_S


def test_negative_attempt_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff(-1)


def test_custom_policy() -> None:
    assert backoff(5, base=0.1, cap=1.0, floor=0.05, jitter=None) == 1.0
