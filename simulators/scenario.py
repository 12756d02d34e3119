"""Scenario files: a patient set, their courses, and the outcomes expected.

How this works
--------------
A scenario (YAML, see ``simulators/scenarios/``) lists patients with their
conditions, baseline, scripted courses and adherence, the simulated span
(``start``, ``days``, ``seed``) and what must come out:

* ``expect.escalations``: ``{patient, rule, severity, count | min | max,
  from_day, to_day}``: escalations *opened* for that patient and rule (day
  numbers are 0-based local days of the scenario; the window bounds the
  opening instant);
* ``expect.others``: ``forbid`` (default) makes any opened escalation not
  listed a mismatch; ``allow`` ignores them;
* ``expect.billing``: ``{patient, device_days, codes, not_codes}`` for the
  patient's first 30-day RPM period.  Device days are counted here; codes are
  checked with :func:`gateway.billing.evaluate_month` when that package is
  installed, else derived from the device-day thresholds of BILLING.md.

:func:`run_in_process` pushes the simulated readings through the pure rules
engine (``rules.cli.replay``: readings in measured-time order, timers fired
at their due time up to the end of the last day), no broker involved.
:func:`run_against_gateway` provisions the panel into the gateway's database,
publishes the readings to its broker and reads back the stored escalations.
"""

from __future__ import annotations

import dataclasses
import time as _time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from gateway.model import Condition, DeviceKind
from simulators.panel import Panel, build_panel, sample_to_reading
from simulators.physiology import (
    PERFECT,
    Adherence,
    Baseline,
    ChfDecompensation,
    CopdExacerbation,
    Course,
    DiabetesEpisodes,
    HypertensionTreated,
    PatientProfile,
    stable_profile,
)

SCENARIO_DIR = Path(__file__).with_name("scenarios")
#: Timer-driven rules a live gateway may fire *while* a compressed history is
#: still arriving (a timer due in the past fires between two batches of the
#: backlog); against a gateway their unlisted escalations are reported, not judged.
REPLAY_TIMER_RULES = frozenset({"adherence.no_data", "hub.offline"})
RPM_PERIOD_DAYS = 30


class ScenarioError(ValueError):
    """A scenario file that cannot be used; ``where`` names the file and field."""

    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class ExpectedEscalation:
    """Escalations of ``rule`` opened for ``patient`` (all patients when ``None``)."""

    rule: str
    patient: str | None = None
    severity: str | None = None
    count: int | None = 1
    min: int | None = None
    max: int | None = None
    from_day: int | None = None
    to_day: int | None = None

    def accepts(self, n: int) -> bool:
        """True when ``n`` matches the expected count / bounds."""
        if self.count is not None and n != self.count:
            return False
        if self.min is not None and n < self.min:
            return False
        return self.max is None or n <= self.max

    def describe(self) -> str:
        """The expectation in words."""
        if self.count is not None:
            return f"{self.count}"
        lo = "" if self.min is None else f">= {self.min}"
        hi = "" if self.max is None else f"<= {self.max}"
        return " and ".join(x for x in (lo, hi) if x) or "any"


@dataclass(frozen=True, slots=True)
class ExpectedBilling:
    """Billing outcome of a patient's first RPM period."""

    patient: str
    device_days: int | None = None
    codes: tuple[str, ...] = ()
    not_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    """A parsed scenario file."""

    name: str
    description: str
    seed: int
    start: date
    days: int
    practice_id: str
    practice_tz: str
    profiles: tuple[PatientProfile, ...]
    escalations: tuple[ExpectedEscalation, ...]
    billing: tuple[ExpectedBilling, ...]
    others: str = "forbid"
    path: str = ""

    def panel(self) -> Panel:
        """The simulated practice of this scenario."""
        return build_panel(self.profiles, start=self.start, days=self.days, seed=self.seed,
                           practice_id=self.practice_id, practice_tz=self.practice_tz)


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation compared with what happened."""

    what: str
    expected: str
    actual: str
    ok: bool


@dataclass(frozen=True, slots=True)
class OpenedEscalation:
    """An escalation opened during a run (the facts the checks need)."""

    patient_id: str
    rule_id: str
    severity: str
    at: datetime
    summary: str = ""


@dataclass(slots=True)
class ScenarioResult:
    """Outcome of a scenario run: every check, and what was opened."""

    scenario: str
    mode: str
    checks: list[Check] = field(default_factory=list)
    opened: list[OpenedEscalation] = field(default_factory=list)
    readings: int = 0

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    def report(self) -> str:
        """Expected vs actual, one line per check."""
        lines = [f"scenario {self.scenario} ({self.mode}): {self.readings} readings, "
                 f"{len(self.opened)} escalations opened"]
        for c in self.checks:
            mark = "ok  " if c.ok else "FAIL"
            lines.append(f"  {mark} {c.what}: expected {c.expected}, got {c.actual}")
        lines.append("PASS" if self.ok else "MISMATCH")
        return "\n".join(lines)


# --------------------------------------------------------------------------- loading

_COURSES: dict[str, type] = {
    "chf_decompensation": ChfDecompensation,
    "copd_exacerbation": CopdExacerbation,
    "hypertension_treated": HypertensionTreated,
    "diabetes_episodes": DiabetesEpisodes,
}
_TUPLE_FIELDS = {"hypo_days", "very_low_days", "high_days"}


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise ScenarioError(where, "expected a mapping")
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise ScenarioError(where, f"unknown field(s) {sorted(unknown)}; "
                            f"allowed: {sorted(fields)}")
    kwargs = {k: tuple(v) if k in _TUPLE_FIELDS or (k == "pauses" and v is not None) else v
              for k, v in data.items()}
    if "pauses" in kwargs:
        kwargs["pauses"] = tuple(tuple(p) for p in kwargs["pauses"])
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ScenarioError(where, str(e)) from None


def _course(data: Any, where: str) -> Course:
    if not isinstance(data, Mapping) or len(data) != 1:
        raise ScenarioError(where, f"a course is a one-key mapping, one of {sorted(_COURSES)}")
    (name, params), = data.items()
    if name not in _COURSES:
        raise ScenarioError(where, f"unknown course {name!r}; known: {sorted(_COURSES)}")
    course: Course = _build(_COURSES[name], params or {}, f"{where}.{name}")
    return course


def _profile(data: Any, where: str, seed: int, default_tz: str) -> PatientProfile:
    if not isinstance(data, Mapping) or "id" not in data:
        raise ScenarioError(where, "a patient needs at least an id")
    allowed = {"id", "conditions", "timezone", "baseline", "courses", "adherence", "devices"}
    unknown = set(data) - allowed
    if unknown:
        raise ScenarioError(where, f"unknown field(s) {sorted(unknown)}")
    try:
        conditions = [Condition(c) for c in data.get("conditions", [])]
    except ValueError as e:
        raise ScenarioError(f"{where}.conditions", str(e)) from None
    tz = str(data.get("timezone", default_tz))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScenarioError(f"{where}.timezone", f"unknown time zone {tz!r}") from None
    courses = [_course(c, f"{where}.courses[{i}]") for i, c in enumerate(data.get("courses", []))]
    adh_data = data.get("adherence", "perfect")
    adherence: Adherence | None
    if adh_data == "perfect":
        adherence = PERFECT
    elif adh_data == "random":
        adherence = None
    else:
        adherence = _build(Adherence, adh_data, f"{where}.adherence")
    profile = stable_profile(str(data["id"]), conditions, seed=seed, timezone=tz,
                             courses=courses, adherence=adherence)
    if "baseline" in data:
        if not isinstance(data["baseline"], Mapping):
            raise ScenarioError(f"{where}.baseline", "expected a mapping")
        merged = {f: getattr(profile.baseline, f) for f in Baseline.__dataclass_fields__}
        merged.update(data["baseline"])
        base = _build(Baseline, merged, f"{where}.baseline")
        profile = PatientProfile(profile.patient_id, profile.conditions, tz, base,
                                 profile.courses, profile.adherence)
    if "devices" in data:
        try:
            kinds = tuple(DeviceKind(k) for k in data["devices"])
        except ValueError as e:
            raise ScenarioError(f"{where}.devices", str(e)) from None
        profile = PatientProfile(profile.patient_id, profile.conditions, tz, profile.baseline,
                                 profile.courses, profile.adherence, kinds)
    return profile


def parse_scenario(doc: Any, where: str = "<scenario>") -> Scenario:
    """Build a :class:`Scenario` from a parsed YAML document."""
    if not isinstance(doc, Mapping):
        raise ScenarioError(where, "a scenario is a mapping")
    for key in ("name", "start", "days", "patients"):
        if key not in doc:
            raise ScenarioError(where, f"missing {key!r}")
    seed = int(doc.get("seed", 0))
    start = doc["start"]
    if not isinstance(start, date):
        try:
            start = date.fromisoformat(str(start))
        except ValueError:
            raise ScenarioError(f"{where}: start", f"not a date: {start!r}") from None
    practice = doc.get("practice", {}) or {}
    practice_tz = str(practice.get("timezone", "America/New_York"))
    profiles = tuple(_profile(p, f"{where}: patients[{i}]", seed, practice_tz)
                     for i, p in enumerate(doc["patients"]))
    ids = [p.patient_id for p in profiles]
    if len(set(ids)) != len(ids):
        raise ScenarioError(f"{where}: patients", "patient ids repeat")
    expect = doc.get("expect", {}) or {}
    escalations: list[ExpectedEscalation] = []
    for i, e in enumerate(expect.get("escalations", []) or []):
        e_where = f"{where}: expect.escalations[{i}]"
        item = dict(e)
        if "count" not in item and ("min" in item or "max" in item):
            item["count"] = None
        exp: ExpectedEscalation = _build(ExpectedEscalation, item, e_where)
        if exp.patient is not None and exp.patient not in ids:
            raise ScenarioError(e_where, f"unknown patient {exp.patient!r}")
        escalations.append(exp)
    billing: list[ExpectedBilling] = []
    for i, b in enumerate(expect.get("billing", []) or []):
        b_where = f"{where}: expect.billing[{i}]"
        item = dict(b)
        item["codes"] = tuple(str(c) for c in item.get("codes", ()))
        item["not_codes"] = tuple(str(c) for c in item.get("not_codes", ()))
        bill: ExpectedBilling = _build(ExpectedBilling, item, b_where)
        if bill.patient not in ids:
            raise ScenarioError(b_where, f"unknown patient {bill.patient!r}")
        billing.append(bill)
    others = str(expect.get("others", "forbid"))
    if others not in ("forbid", "allow"):
        raise ScenarioError(f"{where}: expect.others", "must be 'forbid' or 'allow'")
    return Scenario(str(doc["name"]), str(doc.get("description", "")), seed, start,
                    int(doc["days"]), str(practice.get("id", "sim-practice")), practice_tz,
                    profiles, tuple(escalations), tuple(billing), others, where)


def load_scenario(path: str | Path) -> Scenario:
    """Read and parse a scenario file; raises :class:`ScenarioError` naming the file."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ScenarioError(str(p), e.strerror or str(e)) from None
    except yaml.YAMLError as e:
        raise ScenarioError(str(p), f"invalid YAML: {e}") from None
    return parse_scenario(doc, str(p))


def shipped_scenarios() -> list[Path]:
    """The scenario files shipped with Vitalgate."""
    return sorted(SCENARIO_DIR.glob("*.yaml"))


# --------------------------------------------------------------------------- checking

def check_outcomes(sc: Scenario, opened: Sequence[OpenedEscalation],
                   device_days: Mapping[str, set[date]], *,
                   tolerate: frozenset[str] = frozenset()) -> list[Check]:
    """Compare what was opened (and the device days) with the expectations.

    Unlisted escalations of the rules in ``tolerate`` are reported in an
    informational check that always passes (see :data:`REPLAY_TIMER_RULES`).
    """
    checks: list[Check] = []
    zones = {p.patient_id: ZoneInfo(p.timezone) for p in sc.profiles}
    claimed: set[int] = set()
    for exp in sc.escalations:
        matched = []
        for i, o in enumerate(opened):
            if o.rule_id != exp.rule or (exp.patient and o.patient_id != exp.patient):
                continue
            if exp.severity and o.severity != exp.severity:
                continue
            day = (o.at.astimezone(zones[o.patient_id]).date() - sc.start).days
            if exp.from_day is not None and day < exp.from_day:
                continue
            if exp.to_day is not None and day > exp.to_day:
                continue
            matched.append(i)
        claimed.update(i for i, o in enumerate(opened)
                       if o.rule_id == exp.rule and (not exp.patient
                                                     or o.patient_id == exp.patient))
        window = ""
        if exp.from_day is not None or exp.to_day is not None:
            window = f" on days {exp.from_day if exp.from_day is not None else 0}.." \
                     f"{exp.to_day if exp.to_day is not None else sc.days - 1}"
        who = exp.patient or "any patient"
        sev = f" {exp.severity}" if exp.severity else ""
        checks.append(Check(f"{exp.rule}{sev} for {who}{window}", exp.describe(),
                            str(len(matched)), exp.accepts(len(matched))))
    if sc.others == "forbid":
        extra = Counter((opened[i].patient_id, opened[i].rule_id)
                        for i in range(len(opened)) if i not in claimed)
        tolerated = Counter({k: n for k, n in extra.items() if k[1] in tolerate})
        extra -= tolerated

        def words(c: Counter[tuple[str, str]]) -> str:
            return ", ".join(f"{r} for {p} x{n}" for (p, r), n in sorted(c.items())) or "none"

        checks.append(Check("no other escalation", "none", words(extra), not extra))
        if tolerated:
            checks.append(Check("timer rules during the history replay (not judged)", "any",
                                words(tolerated), True))
    for b in sc.billing:
        checks.extend(_billing_checks(sc, b, device_days.get(b.patient, set())))
    return checks


def _period_days(days: set[date]) -> tuple[date | None, list[date]]:
    if not days:
        return None, []
    first = min(days)
    end = first + timedelta(days=RPM_PERIOD_DAYS)
    return first, sorted(d for d in days if first <= d < end)


def _billing_checks(sc: Scenario, b: ExpectedBilling, days: set[date]) -> list[Check]:
    start, in_period = _period_days(days)
    out: list[Check] = []
    if b.device_days is not None:
        out.append(Check(f"device days of {b.patient} in RPM period 1", str(b.device_days),
                         str(len(in_period)), len(in_period) == b.device_days))
    if not (b.codes or b.not_codes):
        return out
    codes, source = _device_codes(sc, b.patient, days, start)
    for code in b.codes:
        out.append(Check(f"{code} billable for {b.patient} ({source})", "billed",
                         "billed" if code in codes else "not billed", code in codes))
    for code in b.not_codes:
        out.append(Check(f"{code} not billable for {b.patient} ({source})", "not billed",
                         "billed" if code in codes else "not billed", code not in codes))
    return out


def _device_codes(sc: Scenario, patient_id: str, days: set[date],
                  start: date | None) -> tuple[set[str], str]:
    """Codes of period 1: via ``gateway.billing`` when present, else BILLING.md thresholds."""
    if start is None:
        return set(), "no device days"
    try:
        from gateway import billing  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        n = len([d for d in days if start <= d < start + timedelta(days=RPM_PERIOD_DAYS)])
        codes = {"99454"} if n >= 16 else {"99445"} if n >= 2 else set()
        return codes, "device-day thresholds"
    from gateway.model import Program

    profile = sc.profiles[[p.patient_id for p in sc.profiles].index(patient_id)]
    bp = billing.BillingProfile(patient_id, profile.timezone, frozenset({Program.RPM}),
                                frozenset(str(c) for c in profile.conditions),
                                consent_date=sc.start - timedelta(days=1))
    period_end = start + timedelta(days=RPM_PERIOD_DAYS - 1)
    month = billing.BillingMonth(period_end.year, period_end.month)
    report = billing.evaluate_month(bp, days, (), month)
    return set(report.code_units()), "gateway.billing"


# --------------------------------------------------------------------------- running

def _ruleset() -> Any:
    from rules.definitions import RuleSet, load_rules

    rs = load_rules()
    # simulated readings carry no hub status: hub.offline would only measure the simulator
    return RuleSet(rs.version, tuple(r for r in rs.rules if r.kind != "hub_offline"))


def run_in_process(sc: Scenario) -> ScenarioResult:
    """Run the scenario's physiology through the rules engine directly (no broker)."""
    from rules.cli import PatientSpec, replay

    panel = sc.panel()
    readings = [sample_to_reading(s, panel.practice.id) for s in panel.samples()]
    patients = [PatientSpec(p.patient_id, tuple(sorted(p.conditions)), p.timezone, ())
                for p in sc.profiles]
    effects = replay(patients, readings, _ruleset(), until=panel.end())
    opened = [OpenedEscalation(e.patient_id, e.rule_id, str(e.severity), e.at, e.summary)
              for e in effects if str(e.event) == "opened"]
    days: dict[str, set[date]] = {}
    zones = {p.patient_id: ZoneInfo(p.timezone) for p in sc.profiles}
    for r in readings:
        days.setdefault(r.patient_id, set()).add(
            r.measured_at.astimezone(zones[r.patient_id]).date())
    result = ScenarioResult(sc.name, "in-process", opened=opened, readings=len(readings))
    result.checks = check_outcomes(sc, opened, days)
    return result


def anchored(sc: Scenario, today: date) -> Scenario:
    """The scenario moved in time so that its last day is the day before ``today``.

    A running gateway judges data by its own clock: history from another
    season would look late, the hubs offline and the patients silent.  Day
    numbers (courses, expectation windows) are relative, so they still hold.
    """
    return dataclasses.replace(sc, start=today - timedelta(days=sc.days))


def run_against_gateway(sc: Scenario, *, broker_url: str, database_url: str,
                        now: datetime, timeout_s: float = 120.0,
                        credentials: Mapping[str, str] | None = None,
                        progress: Callable[..., None] | None = None) -> ScenarioResult:
    """Provision the scenario into a running gateway, publish, and read back.

    The scenario is :func:`anchored` to end the day before ``now`` (the
    gateway's clock); the panel is written to ``database_url``; hubs report
    ``online`` and the readings go to ``broker_url`` (QoS 1; one connection
    per hub with ``credentials``); then the store is polled until every
    reading is stored (or ``timeout_s``) and the escalations the gateway
    opened are compared with the expectations.
    """
    from gateway.escalations import Status
    from gateway.store import open_store
    from simulators.fleet import open_publisher, publish_samples, publish_status
    from simulators.panel import provision

    sc = anchored(sc, now.astimezone(ZoneInfo(sc.practice_tz)).date())
    panel = sc.panel()
    samples = list(panel.samples())
    store = open_store(database_url)
    try:
        provision(store, panel)
        pub = open_publisher(broker_url, client_id=f"scenario-{sc.name}",
                             credentials=credentials)
        try:
            publish_status(pub, (h.id for h in panel.hubs), now)
            stats = publish_samples(broker_url, samples, progress=progress, publisher=pub)
        finally:
            pub.close()
        deadline = _time.monotonic() + timeout_s
        ids = {p.patient_id for p in sc.profiles}
        while _time.monotonic() < deadline:
            stored = sum(store.count_readings(pid) for pid in ids)
            if stored >= len(samples):
                break
            _time.sleep(0.5)
        _time.sleep(1.0)  # let the rules worker finish the last readings
        escalations = [e for pid in sorted(ids)
                       for e in store.list_escalations(
                           panel.practice.id, patient_id=pid, limit=10_000,
                           status=list(Status))]
        opened = [OpenedEscalation(e.patient_id, e.rule_id, str(e.severity), e.trigger_at,
                                   e.summary) for e in escalations]
        days: dict[str, set[date]] = {}
        for pid in ids:
            tz = ZoneInfo(panel.profile(pid).timezone)
            for r in store.get_readings(pid, limit=1_000_000):
                days.setdefault(pid, set()).add(r.measured_at.astimezone(tz).date())
    finally:
        store.close()
    result = ScenarioResult(sc.name, "gateway", opened=opened, readings=stats.acknowledged)
    result.checks = [Check("readings acknowledged by the broker", str(len(samples)),
                           str(stats.acknowledged), stats.acknowledged == len(samples))]
    result.checks += check_outcomes(sc, opened, days, tolerate=REPLAY_TIMER_RULES)
    return result
