"""Cached registry lookups and recent weights for validation.

The registry changes rarely (enrolment, device hand-out) and is read for
every payload, so lookups are cached.  Positive entries live until
:meth:`Registry.invalidate` (the hook the API calls after a registry
change); negative ones ("unknown hub") expire after :data:`NEGATIVE_TTL_S`
so a hub registered after its first publish is picked up without a hook.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from gateway.model import Device, DeviceAssignment, Hub
from gateway.store import NotFound, Store
from gateway.units import Metric

#: Seconds an "unknown" answer is trusted before asking the store again.
NEGATIVE_TTL_S = 30.0
#: How far back a previous weight counts for the day-to-day change flag.
WEIGHT_LOOKBACK = timedelta(days=7)


class Registry:
    """Read-through cache over the store's hubs, devices and assignments."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._hubs: dict[str, tuple[Hub | None, float]] = {}
        self._devices: dict[str, tuple[Device | None, float]] = {}
        self._assignments: dict[str, list[DeviceAssignment]] = {}

    def _fresh(self, entry: tuple[object, float] | None) -> bool:
        return entry is not None and (entry[0] is not None or entry[1] > self._clock())

    def hub(self, hub_id: str) -> Hub | None:
        """The hub, or ``None`` when unknown."""
        entry = self._hubs.get(hub_id)
        if entry is None or not self._fresh(entry):
            try:
                value: Hub | None = self._store.get_hub(hub_id)
            except NotFound:
                value = None
            entry = (value, self._clock() + NEGATIVE_TTL_S)
            with self._lock:
                self._hubs[hub_id] = entry
        return entry[0]

    def device(self, serial: str) -> Device | None:
        """The device, or ``None`` when unknown."""
        entry = self._devices.get(serial)
        if entry is None or not self._fresh(entry):
            try:
                value: Device | None = self._store.get_device(serial)
            except NotFound:
                value = None
            entry = (value, self._clock() + NEGATIVE_TTL_S)
            with self._lock:
                self._devices[serial] = entry
        return entry[0]

    def assignments(self, serial: str) -> Sequence[DeviceAssignment]:
        """Assignments of a device, oldest first (empty lists are re-read after the TTL)."""
        cached = self._assignments.get(serial)
        if cached is None:
            cached = self._store.device_assignments(serial)
            if cached:
                with self._lock:
                    self._assignments[serial] = cached
        return cached

    def invalidate(self, *, hub_id: str | None = None, serial: str | None = None) -> None:
        """Forget cached entries (all of them when called without arguments)."""
        with self._lock:
            if hub_id is None and serial is None:
                self._hubs.clear()
                self._devices.clear()
                self._assignments.clear()
                return
            if hub_id is not None:
                self._hubs.pop(hub_id, None)
            if serial is not None:
                self._devices.pop(serial, None)
                self._assignments.pop(serial, None)


class WeightHistory:
    """Recent accepted weights per patient, loaded lazily from the store."""

    def __init__(self, store: Store | None) -> None:
        self._store = store
        self._by_patient: dict[str, list[tuple[datetime, float]]] = {}

    def _load(self, patient_id: str, around: datetime) -> list[tuple[datetime, float]]:
        series = self._by_patient.get(patient_id)
        if series is None:
            series = []
            if self._store is not None:
                for r in self._store.get_readings(patient_id, start=around - WEIGHT_LOOKBACK,
                                                  end=around, metric=Metric.WEIGHT, limit=100):
                    kg = r.value(Metric.WEIGHT)
                    if kg is not None and r.alerting and "possibly_other_person" not in r.flags:
                        series.append((r.measured_at, kg))
                series.sort()
            self._by_patient[patient_id] = series
        return series

    def previous_weight(self, patient_id: str, before: datetime) -> float | None:
        """Latest remembered weight measured in the week before ``before``."""
        series = self._load(patient_id, before)
        i = bisect.bisect_left(series, (before, float("-inf")))
        if i == 0:
            return None
        at, kg = series[i - 1]
        return kg if before - at <= WEIGHT_LOOKBACK else None

    def note_weight(self, patient_id: str, at: datetime, kg: float) -> None:
        """Remember an accepted weight."""
        series = self._load(patient_id, at)
        bisect.insort(series, (at, kg))
        if len(series) > 64:
            del series[:-64]
