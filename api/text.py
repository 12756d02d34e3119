"""Plain-language text for people: rule titles and escalation views.

The rules package owns rule definitions; the queue only needs a short title
per rule id, so this module keeps the CLINICAL.md titles and falls back to
the rule id for anything new.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from gateway.escalations import Escalation

RULE_TITLES: dict[str, str] = {
    "chf.weight_gain_24h": "Weight up 2 lb or more in a day",
    "chf.weight_gain_7d": "Weight up 5 lb or more in a week",
    "spo2.low": "Oxygen saturation 92% or lower, twice within an hour",
    "copd.spo2_low": "Oxygen saturation below 88% (COPD), twice within an hour",
    "copd.spo2_drop": "Oxygen saturation 3 points below the patient's usual",
    "bp.severe": "Severely high blood pressure (above 180/120)",
    "bp.low": "Low blood pressure (systolic below 80)",
    "htn.bp_sustained": "Blood pressure averaging 140/90 or higher this week",
    "pulse.abnormal": "Pulse below 40 or above 110",
    "dm.glucose_very_low": "Very low blood glucose (below 54)",
    "dm.glucose_low": "Low blood glucose (54-69) twice in a week",
    "dm.glucose_very_high": "Very high blood glucose (above 250)",
    "dm.glucose_out_of_range": "Half of glucose readings above 180 over two weeks",
    "adherence.no_data": "No readings for 3 days",
    "device.battery_low": "Device battery low",
    "device.clock": "Device clock wrong",
    "hub.offline": "Home hub offline for a day",
}


def rule_title(rule_id: str) -> str:
    """A short plain-language title for ``rule_id``."""
    return RULE_TITLES.get(rule_id, rule_id.replace("_", " ").replace(".", ": "))


def age_words(since: datetime, now: datetime) -> str:
    """'5 min', '3 h', '2 d' since ``since``."""
    delta = max(now - since, timedelta(0))
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} d"


def evidence_reading_ids(esc: Escalation) -> list[str]:
    """Reading ids named in an escalation's evidence entries (any of the usual keys)."""
    ids: list[str] = []

    def add(values: Iterable[Any]) -> None:
        for v in values:
            if isinstance(v, str) and v not in ids:
                ids.append(v)
            elif isinstance(v, dict) and isinstance(v.get("id"), str) and v["id"] not in ids:
                ids.append(v["id"])

    for entry in esc.evidence:
        if not isinstance(entry, dict):
            continue
        for key in ("reading_id", "reading_ids", "readings"):
            value = entry.get(key)
            if isinstance(value, str):
                add([value])
            elif isinstance(value, list):
                add(value)
    return ids
