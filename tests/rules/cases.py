"""Boundary cases of every default rule: the table the tests run and docs/rules.md shows.

A case is a list of steps at local times (patient zone, default
America/New_York) and whether ``rule`` must fire.  Step values are in display
units: weight in lb, glucose in mg/dL (or "LO"/"HI"), SpO2/battery in %.
Special steps: ``{"clock_offset_min": m}`` (uncorrected device clock report),
``{"hub_seen": True}``.  ``until`` lets timers fire up to that local time.
Cases with ``doc=True`` appear in docs/rules.md (one that fires, one that
must not, per rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL = ("CHF", "COPD", "HTN", "DM")
NON_COPD = ("CHF", "HTN", "DM")
DROP_ON = {"copd.spo2_drop": {"enabled": True, "ordered_by": "dr-test",
                              "ordered_at": "2026-01-01T00:00:00+00:00"}}


@dataclass(frozen=True)
class Case:
    """One boundary example."""

    rule: str
    name: str
    steps: tuple[tuple[str, dict[str, Any]], ...]
    fires: bool
    conditions: tuple[str, ...] = ALL
    tz: str = "America/New_York"
    until: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    doc: bool = False


def _w(*pairs: tuple[str, float]) -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((t, {"weight": v}) for t, v in pairs)


def _bp(times: list[str], sys_: float, dia: float) -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((t, {"systolic": sys_, "diastolic": dia, "pulse": 70}) for t in times)


def _twice_daily(first_day: int, days: int, month: str = "2026-04") -> list[str]:
    out = []
    for d in range(first_day, first_day + days):
        out += [f"{month}-{d:02d} 08:00", f"{month}-{d:02d} 20:00"]
    return out


def _g(*pairs: tuple[str, Any]) -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((t, {"glucose": v}) for t, v in pairs)


def _s(*pairs: tuple[str, float]) -> tuple[tuple[str, dict[str, Any]], ...]:
    return tuple((t, {"spo2": v}) for t, v in pairs)


CASES: tuple[Case, ...] = (
    # ---- chf.weight_gain_24h
    Case("chf.weight_gain_24h", "up exactly 2.0 lb day to day",
         _w(("2026-04-01 08:00", 183.8), ("2026-04-02 08:00", 185.8)), True, doc=True),
    Case("chf.weight_gain_24h", "up 1.99 lb",
         _w(("2026-04-01 08:00", 183.80), ("2026-04-02 08:00", 185.79)), False, doc=True),
    Case("chf.weight_gain_24h", "only the first weight of the day counts",
         _w(("2026-04-01 08:00", 183.8), ("2026-04-02 07:00", 184.0),
            ("2026-04-02 12:00", 190.0)), False),
    Case("chf.weight_gain_24h", "no weight the previous day: no evaluation",
         _w(("2026-04-01 08:00", 183.8), ("2026-04-03 08:00", 190.0)), False),
    Case("chf.weight_gain_24h", "DST start: 23-hour Mar 8 is its own local day",
         _w(("2026-03-07 08:00", 183.8), ("2026-03-08 23:30", 185.8)), True),
    Case("chf.weight_gain_24h", "DST end: 23:30 on the 25-hour Nov 1 is still Nov 1",
         _w(("2026-10-31 08:00", 183.8), ("2026-11-01 00:30", 184.0),
            ("2026-11-01 23:30", 190.0)), False),
    Case("chf.weight_gain_24h", "DST end: Nov 2 00:30 compared with Nov 1's first",
         _w(("2026-11-01 00:30", 183.8), ("2026-11-02 00:30", 185.8)), True),
    Case("chf.weight_gain_24h", "not CHF: rule not applied",
         _w(("2026-04-01 08:00", 183.8), ("2026-04-02 08:00", 190.0)), False,
         conditions=("HTN",)),
    # ---- chf.weight_gain_7d
    Case("chf.weight_gain_7d", "up exactly 5.0 lb vs 7 days earlier",
         _w(("2026-04-01 08:00", 180.0), ("2026-04-08 08:00", 185.0)), True, doc=True),
    Case("chf.weight_gain_7d", "up 4.9 lb vs 7 days earlier",
         _w(("2026-04-01 08:00", 180.0), ("2026-04-08 08:00", 184.9)), False, doc=True),
    Case("chf.weight_gain_7d", "falls back to 6 days earlier",
         _w(("2026-04-02 08:00", 180.0), ("2026-04-08 08:00", 185.0)), True),
    Case("chf.weight_gain_7d", "falls back to 8 days earlier",
         _w(("2026-03-31 08:00", 180.0), ("2026-04-08 08:00", 185.0)), True),
    Case("chf.weight_gain_7d", "9 days earlier is too far",
         _w(("2026-03-30 08:00", 180.0), ("2026-04-08 08:00", 185.0)), False),
    Case("chf.weight_gain_7d", "7 days earlier preferred over 6",
         _w(("2026-04-01 08:00", 182.0), ("2026-04-02 08:00", 180.0),
            ("2026-04-08 08:00", 185.5)), False),
    Case("chf.weight_gain_7d", "DST start inside the week (local days, not 168 h)",
         _w(("2026-03-02 23:30", 180.0), ("2026-03-09 23:30", 185.0)), True),
    # ---- spo2.low
    Case("spo2.low", "92 % twice within 59 min",
         _s(("2026-04-01 10:00", 92), ("2026-04-01 10:59", 92)), True,
         conditions=NON_COPD, doc=True),
    Case("spo2.low", "93 % then 92 %",
         _s(("2026-04-01 10:00", 93), ("2026-04-01 10:30", 92)), False,
         conditions=NON_COPD, doc=True),
    Case("spo2.low", "92 % twice exactly 60 min apart",
         _s(("2026-04-01 10:00", 92), ("2026-04-01 11:00", 92)), True, conditions=NON_COPD),
    Case("spo2.low", "92 % twice 61 min apart",
         _s(("2026-04-01 10:00", 92), ("2026-04-01 11:01", 92)), False, conditions=NON_COPD),
    Case("spo2.low", "a single 85 % reading",
         _s(("2026-04-01 10:00", 85),), False, conditions=NON_COPD),
    Case("spo2.low", "COPD patient: replaced by copd.spo2_low",
         _s(("2026-04-01 10:00", 90), ("2026-04-01 10:10", 90)), False, conditions=("COPD",)),
    # ---- copd.spo2_low
    Case("copd.spo2_low", "87 % twice within 30 min",
         _s(("2026-04-01 10:00", 87), ("2026-04-01 10:30", 87)), True, doc=True),
    Case("copd.spo2_low", "88 % then 87 %",
         _s(("2026-04-01 10:00", 88), ("2026-04-01 10:30", 87)), False, doc=True),
    Case("copd.spo2_low", "87 % twice 59 min apart",
         _s(("2026-04-01 10:00", 87), ("2026-04-01 10:59", 87)), True),
    Case("copd.spo2_low", "87 % twice 61 min apart",
         _s(("2026-04-01 10:00", 87), ("2026-04-01 11:01", 87)), False),
    # ---- copd.spo2_drop (opt-in)
    Case("copd.spo2_drop", "3 points below the 7-day median twice (opted in)",
         _s(("2026-04-01 10:00", 95), ("2026-04-02 10:00", 95), ("2026-04-03 10:00", 95),
            ("2026-04-04 10:00", 92), ("2026-04-04 10:45", 92)), True,
         conditions=("COPD",), overrides=DROP_ON, doc=True),
    Case("copd.spo2_drop", "2 points below the median (opted in)",
         _s(("2026-04-01 10:00", 95), ("2026-04-02 10:00", 95), ("2026-04-03 10:00", 95),
            ("2026-04-04 10:00", 93), ("2026-04-04 10:45", 93)), False,
         conditions=("COPD",), overrides=DROP_ON, doc=True),
    Case("copd.spo2_drop", "off by default",
         _s(("2026-04-01 10:00", 95), ("2026-04-02 10:00", 95), ("2026-04-03 10:00", 95),
            ("2026-04-04 10:00", 92), ("2026-04-04 10:45", 92)), False, conditions=("COPD",)),
    # ---- bp.severe
    Case("bp.severe", "systolic 181", _bp(["2026-04-01 08:00"], 181, 90), True, doc=True),
    Case("bp.severe", "180/120", _bp(["2026-04-01 08:00"], 180, 120), False, doc=True),
    Case("bp.severe", "diastolic 121", _bp(["2026-04-01 08:00"], 150, 121), True),
    # ---- bp.low
    Case("bp.low", "systolic 79", _bp(["2026-04-01 08:00"], 79, 50), True, doc=True),
    Case("bp.low", "systolic 80", _bp(["2026-04-01 08:00"], 80, 50), False, doc=True),
    # ---- htn.bp_sustained
    Case("htn.bp_sustained", "12 readings on 6 days averaging 140/85",
         _bp(_twice_daily(1, 6), 140, 85), True, doc=True),
    Case("htn.bp_sustained", "12 readings on 6 days averaging 139/89",
         _bp(_twice_daily(1, 6), 139, 89), False, doc=True),
    Case("htn.bp_sustained", "diastolic mean 90",
         _bp(_twice_daily(1, 6), 120, 90), True),
    Case("htn.bp_sustained", "only 11 readings",
         _bp(_twice_daily(1, 6)[:11], 150, 95), False),
    Case("htn.bp_sustained", "12 readings on only 2 days",
         _bp([f"2026-04-0{d} {h:02d}:00" for d in (1, 2) for h in range(8, 20, 2)], 150, 95),
         False),
    Case("htn.bp_sustained", "high readings 7 local days back are outside the window",
         _bp(["2026-04-01 08:00", "2026-04-01 20:00"], 250, 100)
         + _bp(_twice_daily(2, 5)[:9], 135, 85)
         + _bp(["2026-04-08 08:00", "2026-04-08 12:00", "2026-04-08 20:00"], 135, 85), False),
    Case("htn.bp_sustained", "the same high readings 6 days back are inside",
         _bp(["2026-04-02 06:00", "2026-04-02 06:30"], 250, 100)
         + _bp(_twice_daily(2, 5)[:9], 135, 85)
         + _bp(["2026-04-08 08:00", "2026-04-08 12:00", "2026-04-08 20:00"], 135, 85), True),
    Case("htn.bp_sustained", "not HTN: rule not applied",
         _bp(_twice_daily(1, 6), 150, 95), False, conditions=("CHF",)),
    # ---- pulse.abnormal
    Case("pulse.abnormal", "pulse 39", (("2026-04-01 08:00", {"pulse": 39}),), True, doc=True),
    Case("pulse.abnormal", "pulse 40", (("2026-04-01 08:00", {"pulse": 40}),), False, doc=True),
    Case("pulse.abnormal", "pulse 111", (("2026-04-01 08:00", {"pulse": 111}),), True),
    Case("pulse.abnormal", "pulse 110", (("2026-04-01 08:00", {"pulse": 110}),), False),
    # ---- dm.glucose_very_low
    Case("dm.glucose_very_low", "glucose 53", _g(("2026-04-01 08:00", 53)), True, doc=True),
    Case("dm.glucose_very_low", "glucose 54", _g(("2026-04-01 08:00", 54)), False, doc=True),
    Case("dm.glucose_very_low", "meter LO", _g(("2026-04-01 08:00", "LO")), True),
    Case("dm.glucose_very_low", "not DM", _g(("2026-04-01 08:00", 40)), False,
         conditions=("CHF",)),
    # ---- dm.glucose_low
    Case("dm.glucose_low", "69 twice within 7 days",
         _g(("2026-04-01 08:00", 69), ("2026-04-07 08:00", 69)), True, doc=True),
    Case("dm.glucose_low", "70 then 69",
         _g(("2026-04-01 08:00", 70), ("2026-04-02 08:00", 69)), False, doc=True),
    Case("dm.glucose_low", "54 twice", _g(("2026-04-01 08:00", 54), ("2026-04-01 12:00", 54)),
         True),
    Case("dm.glucose_low", "53 is very low, not in 54-69",
         _g(("2026-04-01 08:00", 53), ("2026-04-01 12:00", 60)), False),
    Case("dm.glucose_low", "exactly 7 days apart",
         _g(("2026-04-01 08:00", 65), ("2026-04-08 08:00", 65)), True),
    Case("dm.glucose_low", "7 days and 1 min apart",
         _g(("2026-04-01 08:00", 65), ("2026-04-08 08:01", 65)), False),
    Case("dm.glucose_low", "a single low reading (call prep only)",
         _g(("2026-04-01 08:00", 60),), False),
    # ---- dm.glucose_very_high
    Case("dm.glucose_very_high", "meter HI", _g(("2026-04-01 08:00", "HI")), True, doc=True),
    Case("dm.glucose_very_high", "250 then 251",
         _g(("2026-04-01 08:00", 250), ("2026-04-01 20:00", 251)), False, doc=True),
    Case("dm.glucose_very_high", "251 twice within 24 h",
         _g(("2026-04-01 08:00", 251), ("2026-04-02 08:00", 251)), True),
    Case("dm.glucose_very_high", "251 twice 24 h 1 min apart",
         _g(("2026-04-01 08:00", 251), ("2026-04-02 08:01", 251)), False),
    # ---- dm.glucose_out_of_range
    Case("dm.glucose_out_of_range", "4 of 7 readings over 14 days > 180",
         _g(*[(f"2026-04-{d:02d} 08:00", 181 if d <= 4 else 120) for d in range(1, 8)]),
         True, doc=True),
    Case("dm.glucose_out_of_range", "7 readings at exactly 180",
         _g(*[(f"2026-04-{d:02d} 08:00", 180) for d in range(1, 8)]), False, doc=True),
    Case("dm.glucose_out_of_range", "3 of 7 > 180",
         _g(*[(f"2026-04-{d:02d} 08:00", 181 if d <= 3 else 120) for d in range(1, 8)]),
         False),
    Case("dm.glucose_out_of_range", "4 of 8 > 180: exactly 50 %",
         _g(*[(f"2026-04-{d:02d} 08:00", 181 if d % 2 else 120) for d in range(1, 9)]), True),
    Case("dm.glucose_out_of_range", "only 6 readings",
         _g(*[(f"2026-04-{d:02d} 08:00", 200) for d in range(1, 7)]), False),
    Case("dm.glucose_out_of_range", "high readings older than 14 days do not count",
         _g(*[(f"2026-04-{d:02d} 08:00", 200) for d in range(1, 5)],
            *[(f"2026-04-{d:02d} 08:00", 120) for d in range(16, 21)]), False),
    # ---- adherence.no_data
    Case("adherence.no_data", "no reading for 3 full days (due 00:00 on day 4)",
         (("2026-04-06 10:00", {"weight": 180.0}),), True, until="2026-04-10 00:00", doc=True),
    Case("adherence.no_data", "a minute before the 3rd full day ends",
         (("2026-04-06 10:00", {"weight": 180.0}),), False, until="2026-04-09 23:59", doc=True),
    Case("adherence.no_data", "a new reading resets the timer",
         (("2026-04-06 10:00", {"weight": 180.0}), ("2026-04-09 22:00", {"weight": 180.0})),
         False, until="2026-04-12 23:59"),
    Case("adherence.no_data", "DST start: due Mar 11 00:00 EDT",
         (("2026-03-07 10:00", {"weight": 180.0}),), True, until="2026-03-11 00:00"),
    Case("adherence.no_data", "DST start: not at Mar 10 23:59 EDT",
         (("2026-03-07 10:00", {"weight": 180.0}),), False, until="2026-03-10 23:59"),
    Case("adherence.no_data", "DST end: due Nov 4 00:00 EST",
         (("2026-10-31 10:00", {"weight": 180.0}),), True, until="2026-11-04 00:00"),
    Case("adherence.no_data", "DST end: not at Nov 3 23:59 EST",
         (("2026-10-31 10:00", {"weight": 180.0}),), False, until="2026-11-03 23:59"),
    # ---- device.battery_low
    Case("device.battery_low", "battery 15 %", (("2026-04-01 08:00", {"battery": 15}),), True,
         doc=True),
    Case("device.battery_low", "battery 16 %", (("2026-04-01 08:00", {"battery": 16}),), False,
         doc=True),
    # ---- device.clock
    Case("device.clock", "uncorrected offset 10 min 1 s",
         (("2026-04-01 08:00", {"clock_offset_min": 10 + 1 / 60}),), True, doc=True),
    Case("device.clock", "uncorrected offset exactly 10 min",
         (("2026-04-01 08:00", {"clock_offset_min": 10}),), False, doc=True),
    Case("device.clock", "corrected offset of 2 h",
         (("2026-04-01 08:00", {"clock_offset_min": 120, "corrected": True}),), False),
    # ---- hub.offline
    Case("hub.offline", "hub silent for 24 h",
         (("2026-04-01 08:00", {"hub_seen": True}),), True, until="2026-04-02 08:00", doc=True),
    Case("hub.offline", "hub silent for 23 h 59 min",
         (("2026-04-01 08:00", {"hub_seen": True}),), False, until="2026-04-02 07:59",
         doc=True),
    Case("hub.offline", "a reading counts as contact",
         (("2026-04-01 08:00", {"hub_seen": True}), ("2026-04-02 07:00", {"weight": 180.0})),
         False, until="2026-04-02 09:00"),
)
