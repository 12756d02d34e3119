"""Reconnect policy: named constants and one pure :func:`backoff` function.

The delay grows exponentially from :data:`BASE_DELAY_S` and is capped at
:data:`MAX_DELAY_S`; "full jitter" (a random fraction of the capped delay,
never below :data:`MIN_DELAY_S`) spreads a fleet of hubs that lost the same
broker so they do not reconnect in lock-step.  The random source is injected,
so tests check the numbers without sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable

#: First retry after ~1 s: a broker restart or a Wi-Fi blip is usually over by then.
BASE_DELAY_S = 1.0
#: Doubling per attempt reaches the cap after ~7 attempts (about 2 minutes of trying).
FACTOR = 2.0
#: Five minutes between attempts at most: a home internet outage can last days and
#: an idle hub should not hammer the broker or the patient's uplink, yet a reading
#: taken after the link is back should not wait much longer than this to leave.
MAX_DELAY_S = 300.0
#: Never retry faster than this, even with jitter near 0 (avoids a busy loop).
MIN_DELAY_S = 0.5
#: BLE: a device that refused a connection is retried after at least this long;
#: health devices advertise only briefly after a measurement, so keep it short.
BLE_BASE_DELAY_S = 2.0
#: BLE: upper bound between scans for a device that is out of range or asleep.
BLE_MAX_DELAY_S = 30.0


def backoff(
    attempt: int,
    *,
    base: float = BASE_DELAY_S,
    factor: float = FACTOR,
    cap: float = MAX_DELAY_S,
    floor: float = MIN_DELAY_S,
    jitter: Callable[[], float] | None = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = first retry).

    ``jitter`` returns a number in [0, 1); the delay is ``floor + jitter() *
    (capped - floor)`` ("full jitter").  ``jitter=None`` gives the deterministic
    capped exponential delay.
    """
    if attempt < 0:
        raise ValueError("attempt must be >= 0")
    # min() before the power would overflow for huge attempt numbers.
    exp = min(attempt, 64)
    capped = max(floor, min(cap, base * factor**exp))
    if jitter is None:
        return capped
    fraction = min(max(jitter(), 0.0), 1.0)
    return floor + fraction * (capped - floor)
