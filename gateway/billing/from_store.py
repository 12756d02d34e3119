"""Month-end billing over a practice, from the store (the same pure evaluation).

Reads device days from the day rollup and time entries from the store, builds
the inputs of :func:`gateway.billing.evaluate_month` and runs it per patient.
The CLI's file-based ``billing evaluate`` and this function share that one
pure function, so the biller's page and the CLI agree on the same data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gateway.billing.bulk import PanelCodes, evaluate_panel
from gateway.billing.evaluate import evaluate_month
from gateway.billing.model import BillingProfile, MonthReport, TimeEntry
from gateway.billing.rules import DEFAULT_RULES, BillingMonth, BillingRules

#: How far back device days are read to place RPM periods and the one-time 99453.
HISTORY = timedelta(days=400)


def entries_by_patient(store: Any, practice_id: str, start: datetime, end: datetime,
                       patient_ids: Sequence[str] | None = None) -> dict[str, list[TimeEntry]]:
    """A practice's time entries started in ``[start, end)``, per patient, for billing
    (of the patients ``patient_ids`` only, when given)."""
    entries: dict[str, list[TimeEntry]] = defaultdict(list)
    if patient_ids is None:
        stored = store.list_time_entries(practice_id, start, end)
    else:
        stored = [te for pid in patient_ids
                  for te in store.list_time_entries(practice_id, start, end, patient_id=pid)]
    for te in stored:
        entries[te.patient_id].append(te.to_billing())
    return entries


def _month_instants(month: BillingMonth, tz: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(month.first_day, datetime.min.time(), tz).astimezone(UTC)
    end = datetime.combine(month.last_day + timedelta(days=1), datetime.min.time(),
                           tz).astimezone(UTC)
    return start, end


def practice_month(store: Any, practice_id: str, month: BillingMonth, *,
                   rules: BillingRules = DEFAULT_RULES,
                   patient_ids: Sequence[str] | None = None) -> list[MonthReport]:
    """Evaluate ``month`` for every enrolled patient of a practice, with every reason
    and the evidence (or for the enrolled patients among ``patient_ids``)."""
    practice = store.get_practice(practice_id)
    tz = ZoneInfo(practice.timezone)
    patients = {p.id: p for p in store.list_patients(practice_id, patient_ids)}
    enrollments = [e for e in store.list_enrollments(practice_id, patient_ids)
                   if e.patient_id in patients]
    if patient_ids is not None:
        patient_ids = [e.patient_id for e in enrollments]
    first = month.first_day - HISTORY
    # all days the store holds around the month: the evaluation decides what counts
    days = store.device_days(practice_id, first, month.last_day + HISTORY, patient_ids)
    start, end = _month_instants(month, tz)
    entries = entries_by_patient(store, practice_id, start - timedelta(days=1),
                                 end + timedelta(days=1), patient_ids)
    complex_months = store.complex_ccm_months(practice_id, patient_ids)
    reports = []
    for e in enrollments:
        profile = BillingProfile(
            patient_id=e.patient_id, timezone=patients[e.patient_id].timezone,
            programs=e.programs, conditions=frozenset(c.value for c in e.conditions),
            consent_date=e.consent_date, monitoring_start=e.monitoring_start,
            complex_ccm_months=frozenset(BillingMonth.of(d) for d in
                                         complex_months.get(e.patient_id, ())))
        reports.append(evaluate_month(profile, days.get(e.patient_id, ()),
                                      entries.get(e.patient_id, ()), month,
                                      practice_tz=practice.timezone, rules=rules))
    return reports


def practice_month_codes(store: Any, practice_id: str, month: BillingMonth, *,
                         rules: BillingRules = DEFAULT_RULES) -> PanelCodes:
    """Billable codes and units of ``month`` for every enrolled patient, at once.

    The same inputs and decisions as :func:`practice_month` (checked by the tests),
    read lean by the store (``billing_panel_inputs``: enrolments, device days as
    per-month bit masks and the month's time entries, as arrays) and evaluated with
    :func:`gateway.billing.bulk.evaluate_panel`.
    Reasons and evidence for a patient come from :func:`practice_month` /
    :func:`gateway.billing.evaluate_month`.
    """
    tz = ZoneInfo(store.get_practice(practice_id).timezone)
    start, end = _month_instants(month, tz)
    inputs = store.billing_panel_inputs(practice_id, window=month.first_day - HISTORY,
                                        through=month.last_day, month=month.first_day,
                                        entries_from=start - timedelta(days=1),
                                        entries_to=end + timedelta(days=1), tz=tz)
    return evaluate_panel(inputs, month, rules=rules)
