"""Stable reading identity, derived at the edge.

How this works
--------------
A reading id must be identical every time the same measurement reaches the
hub -- when a device re-sends its whole memory, when the first record of a
burst repeats the last one, and after the agent restarts -- and different for
different measurements.  It is a pure function of what the *device* said:

* **Glucose** (profile with a sequence number): ``serial + sequence + the
  device's base time and offset``.  The sequence alone is not enough: meters
  reset their counter (battery change, memory clear) and then re-use numbers
  for new readings; an id of serial + sequence would make the server discard
  those new readings as duplicates.  The device time of a stored record never
  changes, so re-sends still collide and a reset yields new ids.
* **BP, weight, spot-check** (no sequence): ``serial + device time + values``.
* **No usable device time** (no timestamp, or a clock that reports "unknown"):
  ``serial + hub receive time (whole seconds) + values``.  Devices without a
  clock cannot store records for later; they send a live reading once, so
  the receive time is as stable as the reading itself.  A repeat of such a
  reading in another connection would get a new id -- an accepted, visible
  duplicate rather than a silent loss.

Values enter the id exactly as the device encoded them (decimal strings or
special-value names and the unit), never as binary floats.  The inputs are
canonicalised as sorted JSON and hashed with SHA-256; the id is
``{kind}-{first 24 hex digits}`` (96 bits: collisions are negligible for any
plausible number of readings, and the id stays short on the wire).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime

from gateway.model import DeviceKind

#: Hex digits of the SHA-256 kept in an id (96 bits).
ID_HEX_DIGITS = 24


def _canonical(doc: Mapping[str, object]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def reading_id(
    kind: DeviceKind,
    serial: str,
    *,
    values: Mapping[str, str | None],
    unit: str,
    sequence: int | None = None,
    device_time: str | None = None,
    received_at: datetime | None = None,
) -> str:
    """The stable id of one reading (see the module docstring for the rules).

    ``values`` maps value names to the device's exact decimal text (or the
    special-value name, or ``None``); ``device_time`` is the device's own
    ISO wall-clock text, ``None`` when it sent none or an unknown one; then
    ``received_at`` (aware) must be given.
    """
    doc: dict[str, object] = {"k": str(kind), "s": serial}
    if sequence is not None:
        # Sequence profiles: the time disambiguates counter resets; values are
        # left out so a device that re-encodes a value identically still matches.
        doc["q"] = sequence
        doc["t"] = device_time
    else:
        doc["v"] = dict(values)
        doc["u"] = unit
        if device_time is not None:
            doc["t"] = device_time
        else:
            if received_at is None or received_at.tzinfo is None:
                raise ValueError("a reading without device time needs an aware received_at")
            doc["r"] = int(received_at.timestamp())
    digest = hashlib.sha256(_canonical(doc)).hexdigest()[:ID_HEX_DIGITS]
    return f"{kind}-{digest}"
