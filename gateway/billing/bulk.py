"""Month-end billing for a whole practice at once: billable codes and units, vectorised.

:func:`gateway.billing.evaluate_month` is the reference: one patient, every
code considered, with its reason and evidence.  At month end a biller first
needs the totals and each patient's codes for the whole panel; evaluating the
reference 100,000 times costs ~100 us a patient, mostly building reasons and
evidence nobody reads for the patients that bill normally.  This module makes
the same decisions for every patient at once with numpy arrays:

- device days arrive as (patient, day) pairs (from the per-month day masks);
  periods, their day counts, the once-per-episode 99453 and the device-supply
  code of every period ending in the month are array operations;
- time entries arrive as arrays; minutes per program and performer are
  ``bincount`` sums, and the RPM/CCM/PCM thresholds are masks.

It returns codes and units (and the periods ending in the month), not reasons:
the reasons for one patient come from the reference on demand.  The two must
agree; ``tests/billing/test_bulk.py`` checks it on random panels and on every
boundary of the table-driven tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from gateway.billing.model import BillingProfile, Performer, TimeEntry, zone
from gateway.billing.rules import DEFAULT_RULES, BillingMonth, BillingRules
from gateway.model import Program

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: The codes this module decides, in column order of :attr:`PanelCodes.units`.
CODES: tuple[str, ...] = (
    "99453", "99454", "99445", "99470", "99457", "99458",
    "99490", "99439", "99491", "99437", "99487", "99489",
    "99424", "99425", "99426", "99427",
)
_COL = {code: i for i, code in enumerate(CODES)}
#: "No date" in the ordinal-date arrays (real ordinals are >= 1).
NO_DATE = -1
#: Column of each program in :attr:`PanelInputs.te_program` (``Program`` is a str enum:
#: the stored text looks it up too).
PROGRAM_COLUMN: dict[str, int] = {Program.RPM: 0, Program.CCM: 1, Program.PCM: 2}
_FAR = np.iinfo(np.int64).max


@dataclass(frozen=True, slots=True)
class PanelInputs:
    """One practice month as arrays (dates as ``date.toordinal()``).

    Per patient ``i`` (length n): programs, number of chronic conditions,
    consent and enrolment monitoring start (``NO_DATE`` when absent), and
    whether a complex CCM care plan was established or revised this month.
    Device days are (patient index, local day) pairs in any order, repeats
    allowed.  Time entries are parallel arrays; ``te_local_day`` is the
    entry's start date in the practice's time zone, ``te_program`` 0/1/2 for
    RPM/CCM/PCM.
    """

    patient_ids: Sequence[str]
    rpm: Bools
    ccm: Bools
    pcm: Bools
    n_conditions: Ints
    consent: Ints
    monitoring_start: Ints
    complex_month: Bools
    day_patient: Ints
    day: Ints
    te_patient: Ints
    te_program: Ints
    te_physician: Bools
    te_minutes: Ints
    te_interactive: Bools
    te_local_day: Ints


@dataclass(frozen=True, slots=True)
class PanelCodes:
    """Billable units per patient and code, and the RPM periods ending in the month."""

    month: BillingMonth
    patient_ids: Sequence[str]
    #: units[i, j]: units of ``CODES[j]`` billed for patient ``i``.
    units: Ints
    #: One entry per RPM period ending in the month: patient index, first and last
    #: day (ordinals, inclusive) and device days counted.
    period_patient: Ints
    period_start: Ints
    period_end: Ints
    period_days: Ints

    def code_units(self, i: int) -> dict[str, int]:
        """Billed units per code for patient ``i`` (codes with no units left out)."""
        row = self.units[i]
        return {CODES[j]: int(row[j]) for j in np.flatnonzero(row)}

    def by_patient(self) -> dict[str, dict[str, int]]:
        """Billed units per code for every patient."""
        return {pid: self.code_units(i) for i, pid in enumerate(self.patient_ids)}

    def totals(self) -> dict[str, int]:
        """Units per code over the panel (codes billed at least once)."""
        sums = self.units.sum(axis=0)
        return {CODES[j]: int(sums[j]) for j in np.flatnonzero(sums)}

    def patients_billing(self) -> int:
        """How many patients bill at least one code."""
        return int(np.count_nonzero(self.units.any(axis=1)))


def _count(index: Ints, n: int, weights: Ints | None = None) -> Ints:
    if weights is None:
        return np.bincount(index, minlength=n).astype(np.int64)
    # minutes are small integers: float64 sums are exact
    return np.bincount(index, weights=weights, minlength=n).astype(np.int64)


def evaluate_panel(inputs: PanelInputs, month: BillingMonth, *,
                   rules: BillingRules = DEFAULT_RULES) -> PanelCodes:
    """Billable codes and units for every patient of ``inputs`` in ``month``."""
    n = len(inputs.patient_ids)
    first, last = month.first_day.toordinal(), month.last_day.toordinal()
    units = np.zeros((n, len(CODES)), dtype=np.int64)
    consent = inputs.consent
    has_consent = consent != NO_DATE

    # --- device days and RPM periods --------------------------------------------
    # Counted days: on or after consent.  Days after the month's end cannot change a
    # period ending in it (nor, being later, the first period that reached the 99453
    # minimum before it), so they are left out.
    dp, dd = inputs.day_patient, inputs.day
    keep = has_consent[dp] & (dd >= consent[dp]) & (dd <= last)
    dp, dd = dp[keep], dd[keep]
    first_day = np.full(n, _FAR, dtype=np.int64)
    np.minimum.at(first_day, dp, dd)
    derived = np.where(first_day < _FAR, first_day, NO_DATE)
    start = np.where(inputs.monitoring_start != NO_DATE, inputs.monitoring_start, derived)
    active = inputs.rpm & (start != NO_DATE) & (start <= last)
    size = rules.period_days
    n_periods = np.where(active, (last - start) // size + 1, 0)
    base = np.concatenate(([0], np.cumsum(n_periods)))
    total = int(base[-1])
    # one slot per day of every period: a repeated day marks the same slot once
    in_period = active[dp] & (dd >= start[dp])
    offset = dd[in_period] - start[dp[in_period]]
    slots = np.zeros(total * size, dtype=np.bool_)
    slots[(base[dp[in_period]] + offset // size) * size + offset % size] = True
    counts = slots.reshape(total, size).sum(axis=1, dtype=np.int64)
    fp = np.repeat(np.arange(n, dtype=np.int64), n_periods)  # patient of each period
    fk = np.arange(total, dtype=np.int64) - base[fp]  # its 0-based index
    fstart = start[fp] + size * fk
    fend = fstart + size - 1
    consented = has_consent[fp] & (consent[fp] <= fend)
    schedule_from = np.array([d.toordinal() for d, _ in rules.setup_min_days], dtype=np.int64)
    schedule_min = np.array([m for _, m in rules.setup_min_days], dtype=np.int64)
    in_force = np.maximum(np.searchsorted(schedule_from, fend, side="right") - 1, 0)
    setup_ok = consented & (counts >= schedule_min[in_force])
    setup_k = np.full(n, _FAR, dtype=np.int64)
    np.minimum.at(setup_k, fp[setup_ok], fk[setup_ok])
    ending = (fend >= first) & (fend <= last)
    billed = ending & consented
    full = billed & (counts >= rules.full_supply_min_days)
    short = (billed & ~full & (counts >= rules.short_supply_min_days)
             & (fend >= rules.code_99445_from.toordinal()))
    units[:, _COL["99454"]] = _count(fp[full], n)
    units[:, _COL["99445"]] = _count(fp[short], n)
    units[:, _COL["99453"]] = _count(fp[billed & (setup_k[fp] == fk)], n)

    # --- time of the month (practice time zone), counted from consent -------------
    tp, day = inputs.te_patient, inputs.te_local_day
    counted = (day >= first) & (day <= last) & has_consent[tp] & (day >= consent[tp])

    def minutes(program: int, physician: bool | None = None) -> Ints:
        sel = counted & (inputs.te_program == program)
        if physician is not None:
            sel &= inputs.te_physician == physician
        return _count(tp[sel], n, inputs.te_minutes[sel])

    rpm_min = minutes(0)
    rpm_live = _count(tp[counted & (inputs.te_program == 0) & inputs.te_interactive], n) > 0
    rpm_ok = inputs.rpm & rpm_live & (rpm_min >= rules.rpm_first_10)
    rpm_20 = rpm_ok & (rpm_min >= rules.rpm_first_20)
    if rules.has_99470(month.last_day):
        units[:, _COL["99470"]] = rpm_ok & ~rpm_20
    units[:, _COL["99457"]] = rpm_20
    units[:, _COL["99458"]] = np.where(rpm_20, (rpm_min - rules.rpm_first_20) // rules.rpm_add_on,
                                       0)

    staff, phys = minutes(1, False), minutes(1, True)
    ccm_ok = inputs.ccm & (inputs.n_conditions >= rules.ccm_min_conditions)
    cx = ccm_ok & inputs.complex_month & (staff >= rules.ccm_complex_first)
    units[:, _COL["99487"]] = cx
    units[:, _COL["99489"]] = np.where(
        cx, (staff - rules.ccm_complex_first) // rules.ccm_complex_add_on, 0)
    by_phys = ccm_ok & ~cx & (phys >= rules.ccm_physician_first)
    units[:, _COL["99491"]] = by_phys
    units[:, _COL["99437"]] = np.where(
        by_phys, (phys - rules.ccm_physician_first) // rules.ccm_physician_add_on, 0)
    by_staff = ccm_ok & ~cx & ~by_phys & (staff >= rules.ccm_staff_first)
    units[:, _COL["99490"]] = by_staff
    units[:, _COL["99439"]] = np.where(
        by_staff, np.minimum((staff - rules.ccm_staff_first) // rules.ccm_staff_add_on,
                             rules.ccm_staff_add_on_max_units), 0)
    ccm_billed = cx | by_phys | by_staff

    p_staff, p_phys = minutes(2, False), minutes(2, True)
    pcm_ok = inputs.pcm & (inputs.n_conditions >= rules.pcm_min_conditions) & ~ccm_billed
    p_by_phys = pcm_ok & (p_phys >= rules.pcm_first)
    p_by_staff = pcm_ok & ~p_by_phys & (p_staff >= rules.pcm_first)
    units[:, _COL["99424"]] = p_by_phys
    units[:, _COL["99425"]] = np.where(p_by_phys, (p_phys - rules.pcm_first) // rules.pcm_add_on,
                                       0)
    units[:, _COL["99426"]] = p_by_staff
    units[:, _COL["99427"]] = np.where(p_by_staff,
                                       (p_staff - rules.pcm_first) // rules.pcm_add_on, 0)

    return PanelCodes(month=month, patient_ids=inputs.patient_ids, units=units,
                      period_patient=fp[ending], period_start=fstart[ending],
                      period_end=fend[ending], period_days=counts[ending])


def _ordinal(d: date | None) -> int:
    return NO_DATE if d is None else d.toordinal()


def panel_inputs(
    profiles: Sequence[BillingProfile],
    device_days: Mapping[str, Iterable[date]],
    time_entries: Mapping[str, Iterable[TimeEntry]],
    month: BillingMonth,
    *,
    practice_tz: str,
) -> PanelInputs:
    """Arrays from the reference's inputs (the same ones :func:`evaluate_month` takes)."""
    index = {p.patient_id: i for i, p in enumerate(profiles)}
    dp: list[int] = []
    dd: list[int] = []
    for pid, days in device_days.items():
        i = index.get(pid)
        if i is not None:
            for d in days:
                dp.append(i)
                dd.append(d.toordinal())
    tz = zone(practice_tz)
    te: list[tuple[int, int, bool, int, bool, int]] = []
    for pid, entries in time_entries.items():
        i = index.get(pid)
        if i is not None:
            te.extend((i, PROGRAM_COLUMN[e.program], e.performed_by == Performer.PHYSICIAN,
                       e.minutes, e.interactive, e.started_at.astimezone(tz).date().toordinal())
                      for e in entries)
    return PanelInputs(
        patient_ids=[p.patient_id for p in profiles],
        rpm=np.array([Program.RPM in p.programs for p in profiles], dtype=np.bool_),
        ccm=np.array([Program.CCM in p.programs for p in profiles], dtype=np.bool_),
        pcm=np.array([Program.PCM in p.programs for p in profiles], dtype=np.bool_),
        n_conditions=np.array([len(p.conditions) for p in profiles], dtype=np.int64),
        consent=np.array([_ordinal(p.consent_date) for p in profiles], dtype=np.int64),
        monitoring_start=np.array([_ordinal(p.monitoring_start) for p in profiles],
                                  dtype=np.int64),
        complex_month=np.array([month in p.complex_ccm_months for p in profiles],
                               dtype=np.bool_),
        day_patient=np.array(dp, dtype=np.int64),
        day=np.array(dd, dtype=np.int64),
        **entry_arrays(te),
    )


def entry_arrays(rows: Sequence[tuple[int, int, bool, int, bool, int]]) -> dict[str, Any]:
    """The ``te_*`` fields of :class:`PanelInputs` from ``(patient index, program column,
    physician, minutes, interactive, local day)`` rows."""
    cols = list(zip(*rows, strict=True)) if rows else [(), (), (), (), (), ()]
    return {
        "te_patient": np.array(cols[0], dtype=np.int64),
        "te_program": np.array(cols[1], dtype=np.int64),
        "te_physician": np.array(cols[2], dtype=np.bool_),
        "te_minutes": np.array(cols[3], dtype=np.int64),
        "te_interactive": np.array(cols[4], dtype=np.bool_),
        "te_local_day": np.array(cols[5], dtype=np.int64),
    }

