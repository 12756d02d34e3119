"""The demo practice: a seeded panel with history, live readings and real escalations.

:func:`build_demo_panel` makes a practice of ``n_patients`` with a realistic
mix of conditions, time zones and adherence, and scripts courses into some of
them so that the queue has something true to show: a CHF decompensation and a
COPD exacerbation in the last days of the history, poorly controlled
hypertension, diabetic lows and highs, a patient who stopped measuring for a
week and one measuring too rarely for 99454.  The panel covers ``days`` of
history before ``now`` plus ``live_days`` after it; :func:`split_history`
cuts its stream at ``now``, and :func:`run_demo` provisions a store, publishes
the history (compressed) and then the live readings as their time comes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from gateway.model import Condition
from gateway.store import Store
from simulators.fleet import PublishStats, open_publisher, publish_samples, publish_status
from simulators.panel import Panel, build_panel, provision
from simulators.physiology import (
    Adherence,
    ChfDecompensation,
    CopdExacerbation,
    Course,
    DiabetesEpisodes,
    HypertensionTreated,
    PatientProfile,
    Sample,
    stable_profile,
)

DEMO_PRACTICE_ID = "demo"
DEMO_PRACTICE_NAME = "Riverside Family Medicine (demo)"
DEMO_TZ = "America/New_York"
#: Patient time zones, most in the practice's zone.
ZONES = ("America/New_York",) * 6 + ("America/Chicago",) * 2 + ("America/Denver",
                                                                 "America/Los_Angeles")
#: Condition sets and their weights in the demo mix (comorbidity is the rule).
CONDITION_MIX: tuple[tuple[tuple[Condition, ...], float], ...] = (
    ((Condition.CHF,), 0.10),
    ((Condition.CHF, Condition.HTN), 0.15),
    ((Condition.COPD,), 0.12),
    ((Condition.COPD, Condition.CHF), 0.05),
    ((Condition.HTN,), 0.23),
    ((Condition.DM,), 0.10),
    ((Condition.DM, Condition.HTN), 0.20),
    ((Condition.DM, Condition.CHF, Condition.HTN), 0.05),
)


@dataclass(frozen=True, slots=True)
class DemoPanel:
    """The demo panel and where its history ends."""

    panel: Panel
    now: datetime
    history_days: int

    def history(self) -> Iterator[Sample]:
        """Samples measured before ``now`` (time order)."""
        return (s for s in self.panel.samples() if s.measured_at < self.now)

    def live(self) -> Iterator[Sample]:
        """Samples measured at or after ``now`` (time order)."""
        return (s for s in self.panel.samples() if s.measured_at >= self.now)


_STORIES: tuple[tuple[Condition, str], ...] = (
    (Condition.CHF, "chf"), (Condition.COPD, "copd"), (Condition.HTN, "htn"), (Condition.DM, "dm"))


def _courses(conds: tuple[Condition, ...], days: int, used: dict[str, int]) -> tuple[Course, ...]:
    """Scripted course for a patient with a story: the least told story that fits
    the patient's conditions (history ends on day ``days - 1``)."""
    fitting = [name for cond, name in _STORIES if cond in conds]
    if not fitting:
        return ()
    story = min(fitting, key=lambda n: used[n])
    used[story] += 1
    last = days - 1
    if story == "chf":
        return (ChfDecompensation(start_day=last - 2),)
    if story == "copd":
        return (CopdExacerbation(start_day=last - 4, drop=7.0, ramp_days=2, duration_days=7),)
    if story == "htn":
        return (HypertensionTreated(treated_day=days + 5),)
    return (DiabetesEpisodes(hypo_days=(last - 9, last - 5), very_low_days=(last - 1,),
                             high_days=(last - 3,)),)


def build_demo_panel(seed: int, n_patients: int = 50, days: int = 30, *, now: datetime,
                     live_days: int = 7) -> DemoPanel:
    """The demo practice: ``n_patients`` with ``days`` of history before ``now``.

    Deterministic in ``(seed, n_patients, days, now's local date)``.  About one
    patient in four with CHF, COPD or DM, and one in four with HTN, has a
    scripted course ending in a real escalation; a few patients pause for a
    week or measure on only 12 days.
    """
    rng = np.random.default_rng([seed, 0xDE30])
    start = now.astimezone(ZoneInfo(DEMO_TZ)).date() - timedelta(days=days)
    weights = np.array([w for _, w in CONDITION_MIX])
    profiles: list[PatientProfile] = []
    used = dict.fromkeys((name for _, name in _STORIES), 0)
    for i in range(n_patients):
        conds = CONDITION_MIX[int(rng.choice(len(CONDITION_MIX), p=weights / weights.sum()))][0]
        tz = ZONES[int(rng.integers(len(ZONES)))]
        story = rng.random() < 0.3
        courses = _courses(conds, days, used) if story else ()
        adherence: Adherence | None = None
        if not courses:
            roll = rng.random()
            if roll < 0.08:
                pause_start = int(rng.integers(1, max(2, days - 8)))
                adherence = Adherence(skip_prob=0.05, pauses=((pause_start, 7),))
            elif roll < 0.14:
                adherence = Adherence(measured_days=12)
        profiles.append(stable_profile(f"pt{i + 1:04d}", conds, seed=seed, timezone=tz,
                                       courses=courses, adherence=adherence))
    panel = build_panel(profiles, start=start, days=days + live_days, seed=seed,
                        practice_id=DEMO_PRACTICE_ID, practice_name=DEMO_PRACTICE_NAME,
                        practice_tz=DEMO_TZ)
    return DemoPanel(panel, now, days)


def provision_demo(store: Store, demo: DemoPanel) -> None:
    """Register the demo practice, patients, devices and hubs in ``store``."""
    provision(store, demo.panel)


def run_demo(demo: DemoPanel, broker_url: str, *, live: bool = True, live_speed: float = 1.0,
             stop: threading.Event | None = None, window: int = 100,
             progress: Callable[..., None] | None = None,
             credentials: Mapping[str, str] | None = None, mqtt5: bool = False,
             wall_clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> PublishStats:
    """Publish the demo's history at once (compressed), then its live readings.

    Live readings go out when their measured time comes, at ``live_speed`` x
    real time from ``demo.now``; ``stop`` ends the live phase early.  With
    ``credentials`` (hub id -> password) each hub logs in as itself (brokers
    with the shipped ACL).  Returns the combined publish statistics.
    """
    pub = open_publisher(broker_url, client_id="vitalgate-demo", credentials=credentials,
                         window=window, mqtt5=mqtt5)
    halt = stop or threading.Event()

    def stoppable_sleep(seconds: float) -> None:
        if halt.wait(seconds):
            raise _Stopped

    try:
        publish_status(pub, (h.id for h in demo.panel.hubs), demo.now)
        history = sorted(demo.history(), key=lambda s: (s.patient_id, s.kind, s.measured_at))
        publish_samples(broker_url, history, batch=50, publisher=pub, progress=progress)
        if live:
            with contextlib.suppress(_Stopped):
                publish_samples(broker_url, demo.live(), speed=live_speed, publisher=pub,
                                sim_start=demo.now, progress=progress, wall_clock=wall_clock,
                                sleep=stoppable_sleep if stop is not None else sleep)
    finally:
        pub.close()
    return pub.stats


class _Stopped(Exception):
    pass
