"""Paging policy as data: contacts, on-call rotation, and per-severity steps.

A policy is a plain dict (usually YAML)::

    timezone: America/New_York
    contacts:
      dr_a: {name: Dr A, email: a@example.org, phone: "+15550001",
             webhook: https://hooks.example.org/a, pagerduty: ROUTINGKEY}
    oncall:
      rotation:
        - {person: dr_a, from: "mon 08:00"}
        - {person: dr_b, from: "thu 08:00"}
      overrides:
        - {person: dr_c, start: 2026-12-24T17:00:00-05:00, end: 2026-12-26T08:00:00-05:00}
    severities:
      emergency:
        - {who: supervising_physician, channels: [webhook, pagerduty], wait: 5m, repeat: 2}
        - {who: on_call_physician, channels: [webhook, pagerduty], wait: 5m, repeat: 2}

``on_call_at`` is pure and works in the practice's time zone: a handover at
"mon 08:00" happens at 08:00 local wall time whatever the UTC offset that day.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from gateway.escalations import Severity

SUPERVISING = "supervising_physician"
ON_CALL = "on_call_physician"
QUEUE = "coordinator_queue"
ROLES = (SUPERVISING, ON_CALL, QUEUE)
CHANNELS = ("webhook", "pagerduty", "email", "sms")
#: Channels that can close what they opened (a ``resolve`` page).
RESOLVABLE_CHANNELS = frozenset({"webhook", "pagerduty"})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Same-day review window before an urgent escalation pages the physician.
DEFAULT_SAME_DAY_WINDOW = timedelta(hours=2)
DEFAULT_EMERGENCY_REPAGE = timedelta(minutes=5)


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the offending field."""


@dataclass(frozen=True, slots=True)
class Contact:
    """A person who can be paged and how to reach them."""

    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    webhook: str | None = None
    pagerduty: str | None = None  # routing key

    def address(self, channel: str) -> str | None:
        """Where this contact is reached on ``channel`` (None when not set up)."""
        return {"webhook": self.webhook, "pagerduty": self.pagerduty, "email": self.email,
                "sms": self.phone}.get(channel)


@dataclass(frozen=True, slots=True)
class Handover:
    """From this local weekday/time, ``person`` is on call (until the next handover)."""

    person: str
    weekday: int  # 0 = Monday
    at: time


@dataclass(frozen=True, slots=True)
class OnCallOverride:
    """``person`` is on call in [start, end) whatever the rotation says."""

    person: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class OnCallSchedule:
    """A weekly rotation in a time zone plus dated overrides."""

    timezone: str = "America/New_York"
    rotation: tuple[Handover, ...] = ()
    overrides: tuple[OnCallOverride, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """Page ``who`` on ``channels``; wait; re-page ``repeat`` times; then the next step."""

    who: str
    channels: tuple[str, ...] = ()
    wait: timedelta = timedelta(0)
    repeat: int = 0

    @property
    def pages(self) -> bool:
        """False for the coordinator queue (visible in the queue, no page)."""
        return self.who != QUEUE and bool(self.channels)


@dataclass(frozen=True, slots=True)
class Policy:
    """The paging policy of one practice."""

    timezone: str = "America/New_York"
    contacts: Mapping[str, Contact] = field(default_factory=dict)
    oncall: OnCallSchedule = field(default_factory=OnCallSchedule)
    steps: Mapping[Severity, tuple[Step, ...]] = field(default_factory=dict)

    def steps_for(self, severity: Severity) -> tuple[Step, ...]:
        """The ordered steps for a severity (empty: nothing to do)."""
        return self.steps.get(severity, ())


# -- parsing ---------------------------------------------------------------
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, where: str = "wait") -> timedelta:
    """``"15m"``, ``"2h"``, ``"30s"``, ``"1d"`` or a number of seconds."""
    if isinstance(value, bool):
        raise PolicyError(f"{where}: expected a duration like '15m', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise PolicyError(f"{where}: duration must not be negative")
        return timedelta(seconds=value)
    m = _DURATION.match(str(value))
    if not m:
        raise PolicyError(f"{where}: expected a duration like '15m', '2h', got {value!r}")
    return timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)])


def _parse_handover(raw: Any, where: str) -> Handover:
    if not isinstance(raw, Mapping) or "person" not in raw or "from" not in raw:
        raise PolicyError(f"{where}: expected {{person, from: 'mon 08:00'}}")
    parts = str(raw["from"]).strip().lower().split()
    if len(parts) != 2 or parts[0][:3] not in WEEKDAYS:
        raise PolicyError(f"{where}.from: expected '<weekday> HH:MM', got {raw['from']!r}")
    try:
        at = time.fromisoformat(parts[1])
    except ValueError:
        raise PolicyError(f"{where}.from: bad time {parts[1]!r}") from None
    return Handover(str(raw["person"]), WEEKDAYS.index(parts[0][:3]), at)


def _parse_instant(value: Any, tz: ZoneInfo, where: str) -> datetime:
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            raise PolicyError(f"{where}: not an ISO date-time: {value!r}") from None
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt


def _parse_step(raw: Any, where: str, contacts: Mapping[str, Contact]) -> Step:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{where}: expected a mapping with who/channels/wait/repeat")
    unknown = set(raw) - {"who", "channels", "wait", "repeat"}
    if unknown:
        raise PolicyError(f"{where}: unknown field(s) {sorted(unknown)}")
    who = str(raw.get("who", ""))
    if who not in ROLES and who not in contacts:
        raise PolicyError(f"{where}.who: {who!r} is neither one of {list(ROLES)} "
                          "nor a contact id")
    channels = raw.get("channels", [] if who == QUEUE else list(CHANNELS))
    if not isinstance(channels, list) or any(c not in CHANNELS for c in channels):
        raise PolicyError(f"{where}.channels: expected a list of {list(CHANNELS)}, "
                          f"got {channels!r}")
    repeat = raw.get("repeat", 0)
    if not isinstance(repeat, int) or isinstance(repeat, bool) or not 0 <= repeat <= 100:
        raise PolicyError(f"{where}.repeat: expected an integer 0..100, got {repeat!r}")
    wait = parse_duration(raw.get("wait", 0), f"{where}.wait")
    if repeat and not wait:
        raise PolicyError(f"{where}: repeat needs a positive wait")
    return Step(who, tuple(channels), wait, repeat)


def parse_policy(raw: Any) -> Policy:
    """Validate a policy dict; raises :class:`PolicyError` naming the bad field."""
    if not isinstance(raw, Mapping):
        raise PolicyError("policy: expected a mapping")
    unknown = set(raw) - {"timezone", "contacts", "oncall", "severities", "channels"}
    if unknown:
        raise PolicyError(f"policy: unknown field(s) {sorted(unknown)}")
    tz_name = str(raw.get("timezone", "America/New_York"))
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"timezone: unknown time zone {tz_name!r}") from None
    contacts: dict[str, Contact] = {}
    for pid, c in (raw.get("contacts") or {}).items():
        if not isinstance(c, Mapping):
            raise PolicyError(f"contacts.{pid}: expected a mapping")
        unknown = set(c) - {"name", "email", "phone", "webhook", "pagerduty"}
        if unknown:
            raise PolicyError(f"contacts.{pid}: unknown field(s) {sorted(unknown)}")
        contacts[str(pid)] = Contact(str(pid), str(c.get("name", pid)),
                                     *(None if c.get(k) is None else str(c[k])
                                       for k in ("email", "phone", "webhook", "pagerduty")))
    oc = raw.get("oncall") or {}
    if not isinstance(oc, Mapping):
        raise PolicyError("oncall: expected a mapping with rotation/overrides")
    rotation = tuple(_parse_handover(h, f"oncall.rotation[{i}]")
                     for i, h in enumerate(oc.get("rotation") or []))
    overrides = []
    for i, o in enumerate(oc.get("overrides") or []):
        where = f"oncall.overrides[{i}]"
        if not isinstance(o, Mapping) or not {"person", "start", "end"} <= set(o):
            raise PolicyError(f"{where}: expected {{person, start, end}}")
        ov = OnCallOverride(str(o["person"]), _parse_instant(o["start"], tz, f"{where}.start"),
                            _parse_instant(o["end"], tz, f"{where}.end"))
        if ov.end <= ov.start:
            raise PolicyError(f"{where}: end must be after start")
        overrides.append(ov)
    for who in [h.person for h in rotation] + [o.person for o in overrides]:
        if contacts and who not in contacts:
            raise PolicyError(f"oncall: {who!r} is not in contacts")
    steps: dict[Severity, tuple[Step, ...]] = {}
    for sev, lst in (raw.get("severities") or {}).items():
        try:
            severity = Severity(sev)
        except ValueError:
            raise PolicyError(f"severities: unknown severity {sev!r}") from None
        if not isinstance(lst, list):
            raise PolicyError(f"severities.{sev}: expected a list of steps")
        steps[severity] = tuple(_parse_step(s, f"severities.{sev}[{i}]", contacts)
                                for i, s in enumerate(lst))
    return Policy(tz_name, contacts, OnCallSchedule(tz_name, rotation, tuple(overrides)), steps)


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Policies per practice with a fallback; callable as ``policy_for_practice``."""

    default: Policy
    practices: Mapping[str, Policy] = field(default_factory=dict)

    def __call__(self, practice_id: str) -> Policy:
        return self.practices.get(practice_id, self.default)


def parse_policies(raw: Any) -> PolicySet:
    """A file's top level is the default policy; ``practices: {id: policy}`` overrides
    it per practice (each a complete policy)."""
    if not isinstance(raw, Mapping):
        raise PolicyError("policy: expected a mapping")
    practices = raw.get("practices") or {}
    if not isinstance(practices, Mapping):
        raise PolicyError("practices: expected a mapping of practice id -> policy")
    default = parse_policy({k: v for k, v in raw.items() if k != "practices"})
    per: dict[str, Policy] = {}
    for pid, sub in practices.items():
        try:
            per[str(pid)] = parse_policy(sub)
        except PolicyError as exc:
            raise PolicyError(f"practices.{pid}: {exc}") from None
    return PolicySet(default, per)


def load_policy_file(path: str | Path) -> tuple[PolicySet, dict[str, Any]]:
    """Read and validate a YAML policy file: (policies, the raw mapping)."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        return parse_policies(raw), dict(raw)
    except (OSError, yaml.YAMLError, PolicyError) as exc:
        raise PolicyError(f"{p}: {exc}") from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a YAML policy file (errors name the file)."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PolicyError(f"{p}: {exc}") from None
    try:
        return parse_policy(raw)
    except PolicyError as exc:
        raise PolicyError(f"{p}: {exc}") from None


def default_policy(contacts: Mapping[str, Contact] | None = None,
                   oncall: OnCallSchedule | None = None,
                   same_day_window: timedelta = DEFAULT_SAME_DAY_WINDOW,
                   channels: tuple[str, ...] = CHANNELS) -> Policy:
    """CLINICAL.md routing: emergency pages at once, urgent after the same-day window."""
    every = DEFAULT_EMERGENCY_REPAGE
    return Policy(
        contacts=dict(contacts or {}), oncall=oncall or OnCallSchedule(),
        steps={
            Severity.EMERGENCY: (Step(SUPERVISING, channels, every, 2),
                                 Step(ON_CALL, channels, every, 2)),
            Severity.URGENT: (Step(QUEUE, (), same_day_window, 0),
                              Step(SUPERVISING, channels, every, 2),
                              Step(ON_CALL, channels, every, 2)),
            Severity.ROUTINE: (Step(QUEUE),),
        })


def queue_only_policy() -> Policy:
    """Every severity goes to the coordinator queue; nothing is paged."""
    return Policy(steps={s: (Step(QUEUE),) for s in Severity})


# -- on call -----------------------------------------------------------------
def on_call_at(schedule: OnCallSchedule, instant: datetime) -> str | None:
    """Who is on call at ``instant`` (aware): the latest override covering it, else
    the rotation's latest handover at or before it (local wall time, DST-safe)."""
    if instant.tzinfo is None:
        raise ValueError("on_call_at needs an aware datetime")
    covering = [o for o in schedule.overrides if o.start <= instant < o.end]
    if covering:
        return max(covering, key=lambda o: o.start).person
    if not schedule.rotation:
        return None
    tz = ZoneInfo(schedule.timezone)
    local = instant.astimezone(tz)
    monday = local.date() - timedelta(days=local.weekday())
    best: tuple[datetime, str] | None = None
    for week in (-1, 0):
        for h in schedule.rotation:
            day = monday + timedelta(days=7 * week + h.weekday)
            # fold=0: a handover in the autumn's repeated hour happens the first time;
            # one in the spring gap happens at the same offset (an hour later on the clock).
            at = datetime.combine(day, h.at, tzinfo=tz).astimezone(UTC)
            if at <= instant and (best is None or at > best[0]):
                best = (at, h.person)
    return best[1] if best else None
