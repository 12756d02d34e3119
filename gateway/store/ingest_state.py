"""Store mixin for ingest's state tables (migration ``0002_ingest``).

``hub_status`` keeps the last status each hub published (retained message or
last will); ``device_status`` the last battery, clock offset and firmware a
hub reported per device.  Older reports never overwrite newer ones (status
messages may be redelivered or arrive out of order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any


@dataclass(frozen=True, slots=True)
class HubStatus:
    """The last status a hub published."""

    hub_id: str
    state: str  # "online" | "offline"
    at: datetime
    outbox_depth: int | None = None
    outbox_oldest_s: float | None = None
    agent_version: str = ""


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What a hub last reported about one device."""

    serial: str
    hub_id: str
    kind: str
    last_seen: datetime
    battery: int | None = None
    clock_offset_s: float | None = None
    firmware: str = ""
    model: str = ""
    manufacturer: str = ""


class IngestStateMixin:
    """Hub and device status persistence, mixed into :class:`SqlStore`."""

    if TYPE_CHECKING:  # provided by SqlStore
        def _tx(self) -> Any: ...
        def _exec(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> Any: ...
        def _all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...
        def _ts(self, dt: datetime | None) -> Any: ...
        def _from_ts(self, value: Any) -> datetime | None: ...

    def upsert_hub_status(self, status: HubStatus, updated_at: datetime) -> None:
        """Record a hub's status unless a newer one is already stored."""
        s = status
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO hub_status (hub_id, state, status_at, outbox_depth, "
                            "outbox_oldest_s, agent_version, updated_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hub_id) DO UPDATE SET "
                            "state = excluded.state, status_at = excluded.status_at, "
                            "outbox_depth = excluded.outbox_depth, "
                            "outbox_oldest_s = excluded.outbox_oldest_s, "
                            "agent_version = excluded.agent_version, "
                            "updated_at = excluded.updated_at "
                            "WHERE excluded.status_at >= hub_status.status_at",
                       (s.hub_id, s.state, self._ts(s.at), s.outbox_depth, s.outbox_oldest_s,
                        s.agent_version, self._ts(updated_at)))

    def get_hub_status(self, hub_id: str) -> HubStatus | None:
        """The last status of a hub, if any."""
        rows = self._all("SELECT hub_id, state, status_at, outbox_depth, outbox_oldest_s, "
                         "agent_version FROM hub_status WHERE hub_id = ?", (hub_id,))
        if not rows:
            return None
        r = rows[0]
        at = self._from_ts(r[2])
        assert at is not None
        return HubStatus(hub_id=r[0], state=r[1], at=at, outbox_depth=r[3],
                         outbox_oldest_s=r[4], agent_version=r[5])

    def upsert_device_status(self, items: Sequence[DeviceStatus], updated_at: datetime) -> None:
        """Record device reports (battery, clock offset, last seen), newest wins."""
        if not items:
            return
        with self._tx() as cur:
            for d in items:
                self._exec(cur, "INSERT INTO device_status (serial, hub_id, kind, battery, "
                                "clock_offset_s, firmware, model, manufacturer, last_seen, "
                                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                "ON CONFLICT (serial) DO UPDATE SET hub_id = excluded.hub_id, "
                                "kind = excluded.kind, "
                                "battery = COALESCE(excluded.battery, device_status.battery), "
                                "clock_offset_s = excluded.clock_offset_s, "
                                "firmware = excluded.firmware, model = excluded.model, "
                                "manufacturer = excluded.manufacturer, "
                                "last_seen = excluded.last_seen, updated_at = excluded.updated_at"
                                " WHERE excluded.last_seen >= device_status.last_seen",
                           (d.serial, d.hub_id, d.kind, d.battery, d.clock_offset_s, d.firmware,
                            d.model, d.manufacturer, self._ts(d.last_seen),
                            self._ts(updated_at)))

    def list_device_status(self, hub_id: str | None = None) -> list[DeviceStatus]:
        """Device reports (of one hub, or all), by serial."""
        sql = ("SELECT serial, hub_id, kind, battery, clock_offset_s, firmware, model, "
               "manufacturer, last_seen FROM device_status")
        params: tuple[Any, ...] = ()
        if hub_id is not None:
            sql += " WHERE hub_id = ?"
            params = (hub_id,)
        out = []
        for r in self._all(sql + " ORDER BY serial", params):
            seen = self._from_ts(r[8])
            assert seen is not None
            out.append(DeviceStatus(serial=r[0], hub_id=r[1], kind=r[2], battery=r[3],
                                    clock_offset_s=r[4], firmware=r[5], model=r[6],
                                    manufacturer=r[7], last_seen=seen))
        return out
