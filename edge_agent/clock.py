"""Device clock arithmetic (pure): observed offset, whether to set, the bytes to write.

A device's Date Time / Current Time is a local wall time without a zone.  The
hub reads it in the hub's configured IANA zone: ``offset = device - true``
in seconds (positive: the device runs ahead).  ``measured_at`` of a stored
record is its device time in the hub zone minus the offset in force when it
was stamped.

After the hub sets a device clock, records stamped before the set carry the
old offset and records measured afterwards carry ~0.  :class:`ClockState`
tells them apart by the device time itself: a record stamped at or before the
device's own (old) time when the hub set it is "before".  When the device was
running ahead this is ambiguous for the few minutes of the offset; only a
reading taken within that window during the same connection can be
mis-corrected, and it still carries ``device_time`` and ``clock_offset_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edge_agent.link import encode_current_time

#: Default bound: set the device clock when it is off by more than two minutes.
#: Clinically a reading's minute matters little, but drift grows ~1-2 s/day on
#: cheap devices, so correcting anything above this keeps offsets small.
DEFAULT_CLOCK_BOUND_S = 120.0
#: Slack when comparing a record's stamp with the device time at the clock set.
SET_MARGIN_S = 5.0


def observed_offset(device_wall: datetime, hub_now: datetime, tz: ZoneInfo) -> float:
    """Device clock minus true time, in seconds (``device_wall`` naive, ``hub_now`` aware)."""
    return (device_wall.replace(tzinfo=tz) - hub_now).total_seconds()


def needs_set(offset_s: float, bound_s: float) -> bool:
    """True when the device clock should be set."""
    return abs(offset_s) > bound_s


def current_time_payload(hub_now: datetime, tz: ZoneInfo) -> bytes:
    """Current Time (0x2A2B) bytes for the hub's local wall time now."""
    return encode_current_time(hub_now.astimezone(tz).replace(tzinfo=None))


@dataclass(frozen=True, slots=True)
class ClockState:
    """What the hub knows about one device clock during a connection."""

    observed_offset_s: float | None = None
    set_at_device_wall: datetime | None = None  # device's (old) wall time when set
    offset_after_set_s: float = 0.0

    def offset_for(self, device_wall: datetime | None) -> float | None:
        """The offset to apply to a record stamped ``device_wall`` (see module docstring)."""
        if self.set_at_device_wall is None or device_wall is None:
            return self.observed_offset_s
        limit = self.set_at_device_wall + timedelta(seconds=SET_MARGIN_S)
        return self.observed_offset_s if device_wall <= limit else self.offset_after_set_s
