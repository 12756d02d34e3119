"""One connection to one health device: identify, sync records, set the clock, store readings.

How this works
--------------
:meth:`DeviceSession.run` drives one :class:`~edge_agent.link.GattLink`:

1. connect; read Device Information (serial, manufacturer, model, firmware)
   and the battery level; read the device clock (Current Time 0x2A2B, or a
   readable Date Time 0x2A08) and compute the observed offset;
2. set the device clock when it is off by more than the bound -- *before*
   subscribing, because cuffs and scales send their backlog and drop the
   link right after the subscription; records stamped before the set keep
   the old offset (:class:`~edge_agent.clock.ClockState`);
3. subscribe to indications (always before any RACP write);
4. glucose: RACP sync.  Ask for the number of stored records, then for
   records with sequence >= last seen + 1.  The counter reset if the count
   dropped or a known sequence arrives with a different time: then ask for
   all records again and let the reading ids (which include the device
   time) dedupe.  The sync anchor (last sequence, count, recent
   sequence -> time) is kept in the outbox database;
5. every measurement is decoded, converted (:mod:`edge_agent.readings`) and
   committed to the outbox *in the notification callback*, before anything
   else happens to it; then the publisher is woken;
6. stay connected for live readings until the device drops the link or the
   agent stops (glucose meters: disconnect once synced).

Undecodable bytes are counted and logged with the characteristic and
offset (never the bytes or values: no PHI in logs).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from edge_agent.clock import ClockState, current_time_payload, needs_set, observed_offset
from edge_agent.gatt import (
    BatteryLevel,
    DateTime,
    DecodeError,
    DeviceInformationString,
    GlucoseMeasurement,
    RacpNumberOfRecords,
    RacpResponseCode,
    decode,
    report_all_records,
    report_count_all,
    report_records_from,
)
from edge_agent.gatt.times import CurrentTime
from edge_agent.link import (
    BATTERY_LEVEL,
    CURRENT_TIME,
    DATE_TIME,
    FIRMWARE_REVISION,
    GLUCOSE_MEASUREMENT,
    MANUFACTURER_NAME,
    MODEL_NUMBER,
    RACP,
    SERIAL_NUMBER,
    GattLink,
    LinkError,
)
from edge_agent.outbox import Outbox, QueuedReading
from edge_agent.readings import HubTime, device_wall_time, to_wire
from gateway.model import DeviceKind
from gateway.wire import WireDevice

log = logging.getLogger(__name__)

#: Measurement characteristic per device kind (indicate/notify).
MEASUREMENT_CHAR: dict[DeviceKind, int] = {
    DeviceKind.SCALE: 0x2A9D,
    DeviceKind.BP_CUFF: 0x2A35,
    DeviceKind.PULSE_OXIMETER: 0x2A5E,
    DeviceKind.GLUCOMETER: GLUCOSE_MEASUREMENT,
}
#: Primary service per device kind (for scanning by service UUID).
SERVICE: dict[DeviceKind, int] = {
    DeviceKind.SCALE: 0x181D,
    DeviceKind.BP_CUFF: 0x1810,
    DeviceKind.PULSE_OXIMETER: 0x1822,
    DeviceKind.GLUCOMETER: 0x1808,
}
#: A meter with hundreds of stored records needs time; ~30 records/s is typical.
RACP_TIMEOUT_S = 60.0
#: Sequence -> time pairs kept per meter to recognise a reset counter.
KNOWN_SEQUENCES = 64


@dataclass(frozen=True, slots=True)
class PairedDevice:
    """A device paired with this hub (from hub.toml)."""

    address: str
    kind: DeviceKind
    name: str = ""


@dataclass
class SessionResult:
    """What one session did (counts only: no values)."""

    serial: str = ""
    received: int = 0
    stored: int = 0
    decode_errors: int = 0
    clock_offset_s: float | None = None
    clock_set: bool = False
    resynced: bool = False
    battery: int | None = None
    last_stored_at: datetime | None = None


@dataclass
class _GlucoseSync:
    last_seq: int | None = None
    count: int | None = None
    known: dict[int, str | None] = field(default_factory=dict)
    reset_seen: bool = False
    max_seq_this_run: int | None = None
    seen_this_run: dict[int, str | None] = field(default_factory=dict)


class OutboxWriteError(LinkError):
    """A reading could not be committed to the outbox; the session was ended."""


class DeviceSession:
    """Per-device session logic; one instance per paired device, reused across connections."""

    def __init__(
        self,
        device: PairedDevice,
        outbox: Outbox,
        *,
        tz: ZoneInfo,
        now: Callable[[], datetime],
        clock_bound_s: float = 120.0,
        on_stored: Callable[[], None] = lambda: None,
        racp_timeout_s: float = RACP_TIMEOUT_S,
    ) -> None:
        self.device = device
        self.outbox = outbox
        self.tz = tz
        self.now = now
        self.clock_bound_s = clock_bound_s
        self.on_stored = on_stored
        self.racp_timeout_s = racp_timeout_s
        self._wire_device: WireDevice | None = None
        self._clock = ClockState()
        self._result = SessionResult()
        self._sync = _GlucoseSync()
        self._racp_reply: asyncio.Future[object] | None = None
        self._ended = asyncio.Event()
        self._failure: OutboxWriteError | None = None

    # -- the session ----------------------------------------------------------

    async def run(self, link: GattLink, stop: asyncio.Event | None = None) -> SessionResult:
        """Run one connection to the end (device drop, sync done, or ``stop``)."""
        self._result = SessionResult()
        self._clock = ClockState()
        dropped = asyncio.Event()
        self._ended = dropped
        self._failure = None
        await link.connect(on_disconnect=dropped.set)
        try:
            await self._identify(link)
            await self._clock_sync(link)
            self._save_device()
            char = MEASUREMENT_CHAR[self.device.kind]
            await link.start_notify(char, self._on_measurement)
            if self.device.kind is DeviceKind.GLUCOMETER:
                await link.start_notify(RACP, self._on_racp)
                await self._glucose_sync(link)
            else:
                waits = [asyncio.ensure_future(dropped.wait())]
                if stop is not None:
                    waits.append(asyncio.ensure_future(stop.wait()))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
            if self._failure is not None:
                raise self._failure
        finally:
            await link.disconnect()
            if self._result.last_stored_at is not None and self._failure is None:
                self.outbox.set_state(f"last_reading:{self.device.address}",
                                      self._result.last_stored_at.isoformat())
        log.info("session done", extra={"device": self.device.address,
                                        "received": self._result.received,
                                        "stored": self._result.stored})
        return self._result

    async def _read_text(self, link: GattLink, char: int) -> str:
        if char not in link.services:
            return ""
        data = await self._read_optional(link, char)
        if data is None:
            return ""
        try:
            decoded = decode(char, data)
        except DecodeError:
            return ""
        return decoded.text[:256] if isinstance(decoded, DeviceInformationString) else ""

    async def _read_optional(self, link: GattLink, char: int) -> bytes | None:
        """Read a characteristic the session can do without (None if refused)."""
        try:
            return await link.read(char)
        except LinkError as exc:
            if exc.transient:
                raise
            return None

    async def _identify(self, link: GattLink) -> None:
        serial = await self._read_text(link, SERIAL_NUMBER)
        if not serial.strip() or not serial.isascii() or not serial.isprintable():
            # No usable serial: the BLE address is the next most stable identity.
            serial = "addr-" + self.device.address.replace(":", "").lower()
        serial = serial.strip().replace(" ", "_")[:64]
        battery = None
        raw = await self._read_optional(link, BATTERY_LEVEL) if (
            BATTERY_LEVEL in link.services) else None
        if raw is not None:
            try:
                level = decode(BATTERY_LEVEL, raw)
                battery = level.level if isinstance(level, BatteryLevel) else None
            except DecodeError:
                battery = None
        self._result.serial = serial
        self._result.battery = battery
        self._wire_device = WireDevice(
            serial=serial,
            kind=self.device.kind,
            manufacturer=await self._read_text(link, MANUFACTURER_NAME),
            model=await self._read_text(link, MODEL_NUMBER),
            firmware=await self._read_text(link, FIRMWARE_REVISION),
            battery=battery,
        )
        self._sync = self._load_sync(serial)

    async def _clock_sync(self, link: GattLink) -> None:
        char = next((c for c in (CURRENT_TIME, DATE_TIME) if c in link.services), None)
        if char is None:
            return
        raw = await self._read_optional(link, char)
        if raw is None:
            return
        try:
            decoded = decode(char, raw)
        except DecodeError:
            return
        stamp = decoded.date_time if isinstance(decoded, CurrentTime) else decoded
        wall = stamp.to_datetime() if isinstance(stamp, DateTime) else None
        hub_now = self.now()
        if wall is None:
            # Unknown/unset clock: no offset to apply, but set it so future records are right.
            offset = None
        else:
            offset = observed_offset(wall, hub_now, self.tz)
        self._clock = ClockState(observed_offset_s=offset)
        self._result.clock_offset_s = offset
        if offset is not None and not needs_set(offset, self.clock_bound_s):
            return
        payload = current_time_payload(hub_now, self.tz)
        try:
            await link.write(char, payload if char == CURRENT_TIME else payload[:7])
        except LinkError as exc:
            if not exc.transient:
                log.info("device clock not writable", extra={"device": self.device.address})
                return
            raise
        self._clock = ClockState(observed_offset_s=offset, set_at_device_wall=wall)
        self._result.clock_set = True

    def _save_device(self) -> None:
        assert self._wire_device is not None
        self._wire_device = self._wire_device.model_copy(
            update={"clock_offset_s": self._result.clock_offset_s}
        )
        self.outbox.set_state(
            f"device:{self.device.address}",
            {
                "device": self._wire_device.model_dump(mode="json", exclude_none=True),
                "seen_at": self.now().isoformat(),
                "clock_set": self._result.clock_set,
            },
        )

    # -- measurements ------------------------------------------------------------

    def _on_measurement(self, char: int, data: bytes) -> None:
        received_at = self.now()
        self._result.received += 1
        try:
            decoded = decode(char, data)
        except DecodeError as exc:
            self._result.decode_errors += 1
            log.warning("undecodable measurement", extra={
                "device": self.device.address, "characteristic": f"0x{exc.characteristic:04X}",
                "offset": exc.offset})
            return
        if isinstance(decoded, GlucoseMeasurement):
            self._track_sequence(decoded)
        wall = device_wall_time(decoded)
        hub = HubTime(received_at=received_at, tz=self.tz,
                      clock_offset_s=self._clock.offset_for(wall), bound_s=self.clock_bound_s)
        assert self._wire_device is not None
        reading = to_wire(self.device.kind, self._wire_device.serial, decoded, hub)
        if reading is None:
            return
        try:
            added = self.outbox.add(QueuedReading(self._wire_device, reading))
        except sqlite3.Error as exc:
            # The reading cannot be made durable: end the session loudly so the
            # agent retries and the device keeps what it has not yet sent.
            log.error("outbox write failed", extra={"device": self.device.address,
                                                    "error": str(exc)[:200]})
            self._failure = OutboxWriteError(str(exc))
            self._ended.set()
            return
        if added:
            self._result.stored += 1
            self._result.last_stored_at = received_at
            self.on_stored()

    # -- glucose / RACP ------------------------------------------------------------

    def _load_sync(self, serial: str) -> _GlucoseSync:
        raw = self.outbox.get_state(f"glucose:{serial}") or {}
        return _GlucoseSync(
            last_seq=raw.get("last_seq"),
            count=raw.get("count"),
            known={int(k): v for k, v in raw.get("known", {}).items()},
        )

    def _save_sync(self) -> None:
        s = self._sync
        known = dict(sorted(s.known.items())[-KNOWN_SEQUENCES:])
        self.outbox.set_state(f"glucose:{self._result.serial}", {
            "last_seq": s.last_seq, "count": s.count, "known": {str(k): v for k, v in known.items()}
        })

    def _track_sequence(self, m: GlucoseMeasurement) -> None:
        wall = m.user_facing_time()
        text = None if wall is None else wall.isoformat()
        s = self._sync
        if s.known.get(m.sequence, text) != text:
            s.reset_seen = True
        s.seen_this_run[m.sequence] = text
        if s.max_seq_this_run is None or m.sequence > s.max_seq_this_run:
            s.max_seq_this_run = m.sequence

    def _on_racp(self, char: int, data: bytes) -> None:
        try:
            packet = decode(char, data)
        except DecodeError:
            self._result.decode_errors += 1
            packet = None
        if self._racp_reply is not None and not self._racp_reply.done():
            self._racp_reply.set_result(packet)

    async def _racp(self, link: GattLink, request: bytes) -> object:
        self._racp_reply = asyncio.get_running_loop().create_future()
        await link.write(RACP, request, response=True)
        try:
            return await asyncio.wait_for(self._racp_reply, self.racp_timeout_s)
        except TimeoutError:
            raise LinkError("RACP: no response from the device") from None

    async def _download(self, link: GattLink, request: bytes) -> None:
        self._sync.seen_this_run = {}
        self._sync.max_seq_this_run = None
        reply = await self._racp(link, request)
        if self._failure is not None:
            raise self._failure
        if not isinstance(reply, RacpResponseCode) or not (reply.success or reply.no_records):
            raise LinkError(f"RACP request refused: {reply!r}", transient=False)

    async def _glucose_sync(self, link: GattLink) -> None:
        s = self._sync
        s.reset_seen = False
        reply = await self._racp(link, report_count_all())
        count = reply.count if isinstance(reply, RacpNumberOfRecords) else None
        count_dropped = count is not None and s.count is not None and count < s.count
        if s.last_seq is None or count_dropped:
            await self._download(link, report_all_records())
            self._result.resynced = count_dropped
        else:
            await self._download(link, report_records_from(min(s.last_seq + 1, 0xFFFF)))
            if s.reset_seen:
                log.info("glucose counter reset; re-syncing", extra={"device": self.device.address})
                await self._download(link, report_all_records())
                self._result.resynced = True
        if self._result.resynced:
            s.known = dict(s.seen_this_run)
            s.last_seq = s.max_seq_this_run
        else:
            s.known.update(s.seen_this_run)
            if s.max_seq_this_run is not None:
                s.last_seq = max(s.max_seq_this_run, s.last_seq or 0)
        s.count = count
        self._save_sync()
