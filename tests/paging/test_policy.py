"""Policy parsing and the on-call rotation (DST, overrides)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.escalations import Severity
from rules.paging.policy import (
    ON_CALL,
    QUEUE,
    SUPERVISING,
    PolicyError,
    default_policy,
    load_policy,
    load_policy_file,
    on_call_at,
    parse_duration,
    parse_policy,
)

NY = ZoneInfo("America/New_York")

POLICY = {
    "timezone": "America/New_York",
    "contacts": {"a": {"name": "Dr A", "webhook": "http://x"}, "b": {"name": "Dr B"},
                 "c": {"name": "Dr C"}},
    "oncall": {
        "rotation": [{"person": "a", "from": "mon 08:00"}, {"person": "b", "from": "thu 08:00"},
                     # a handover inside the spring-forward gap and the autumn repeated hour
                     {"person": "c", "from": "sun 01:30"}],
        "overrides": [{"person": "c", "start": "2026-12-24T17:00:00",
                       "end": "2026-12-26T08:00:00"}],
    },
    "severities": {"emergency": [{"who": "supervising_physician", "channels": ["webhook"],
                                  "wait": "5m", "repeat": 2},
                                 {"who": "on_call_physician", "channels": ["webhook"]}]},
}


def ny(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NY, fold=fold)  # type: ignore[misc]


@pytest.mark.parametrize("instant, who", [
    (ny(2026, 3, 2, 7, 59), "c"),                # Monday before the handover
    (ny(2026, 3, 2, 8, 0), "a"),                 # Monday 08:00 local
    (ny(2026, 3, 5, 7, 59), "a"),
    (ny(2026, 3, 5, 8, 0), "b"),
    # 2026-03-08: clocks go 02:00 EST -> 03:00 EDT; Mon 9th 08:00 is EDT (12:00 UTC)
    (datetime(2026, 3, 9, 11, 59, tzinfo=UTC), "c"),
    (datetime(2026, 3, 9, 12, 0, tzinfo=UTC), "a"),
    (datetime(2026, 3, 2, 13, 0, tzinfo=UTC), "a"),   # the week before: 08:00 EST = 13:00Z
    (datetime(2026, 3, 2, 12, 59, tzinfo=UTC), "c"),
    # 2026-11-01: clocks go 02:00 EDT -> 01:00 EST; sun 01:30 happens first at 05:30Z
    (datetime(2026, 11, 1, 5, 29, tzinfo=UTC), "b"),
    (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "c"),
    (datetime(2026, 11, 1, 6, 45, tzinfo=UTC), "c"),  # second 01:45 (EST): still c
    # Mon 2 Nov 08:00 is EST = 13:00Z
    (datetime(2026, 11, 2, 12, 59, tzinfo=UTC), "c"),
    (datetime(2026, 11, 2, 13, 0, tzinfo=UTC), "a"),
    # override over Christmas beats the rotation (Thursday 24th after 17:00 local)
    (ny(2026, 12, 24, 16, 59), "b"),
    (ny(2026, 12, 24, 17, 0), "c"),
    (ny(2026, 12, 26, 7, 59), "c"),
    (ny(2026, 12, 26, 8, 0), "b"),
])
def test_on_call_table(instant: datetime, who: str) -> None:
    policy = parse_policy(POLICY)
    assert on_call_at(policy.oncall, instant) == who


def test_on_call_spring_gap_handover() -> None:
    # sun 2026-03-08 01:30 EST exists; a handover at 02:30 (in the gap) fires at 07:30Z
    policy = parse_policy({**POLICY, "oncall": {"rotation": [
        {"person": "a", "from": "mon 08:00"}, {"person": "c", "from": "sun 02:30"}]}})
    assert on_call_at(policy.oncall, datetime(2026, 3, 8, 7, 29, tzinfo=UTC)) == "a"
    assert on_call_at(policy.oncall, datetime(2026, 3, 8, 7, 30, tzinfo=UTC)) == "c"


def test_on_call_requires_aware_and_empty_rotation() -> None:
    policy = parse_policy({"contacts": {}})
    assert on_call_at(policy.oncall, datetime(2026, 1, 1, tzinfo=UTC)) is None
    with pytest.raises(ValueError):
        on_call_at(policy.oncall, datetime(2026, 1, 1))


def test_parse_steps() -> None:
    p = parse_policy(POLICY)
    steps = p.steps_for(Severity.EMERGENCY)
    assert steps[0].who == SUPERVISING and steps[0].wait == timedelta(minutes=5)
    assert steps[0].repeat == 2 and steps[1].who == ON_CALL
    assert p.steps_for(Severity.ROUTINE) == ()


@pytest.mark.parametrize("patch, message", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"severities": {"critical": []}}, "unknown severity"),
    ({"severities": {"urgent": [{"who": "nobody"}]}}, "severities.urgent[0].who"),
    ({"severities": {"urgent": [{"who": "a", "channels": ["fax"]}]}}, "channels"),
    ({"severities": {"urgent": [{"who": "a", "wait": "soon"}]}}, "wait"),
    ({"severities": {"urgent": [{"who": "a", "repeat": 2}]}}, "repeat needs a positive wait"),
    ({"severities": {"urgent": [{"who": "a", "repeat": -1, "wait": "1m"}]}}, "repeat"),
    ({"oncall": {"rotation": [{"person": "a", "from": "someday 8"}]}}, "rotation[0].from"),
    ({"oncall": {"rotation": [{"person": "zed", "from": "mon 08:00"}]}}, "not in contacts"),
    ({"oncall": {"overrides": [{"person": "a", "start": "2026-01-02",
                                "end": "2026-01-01"}]}}, "end must be after start"),
    ({"pager": 1}, "unknown field"),
])
def test_validation_errors(patch: dict[str, object], message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_policy({**POLICY, **patch})


def test_durations() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("2h") == timedelta(hours=2)
    assert parse_duration(30) == timedelta(seconds=30)
    with pytest.raises(PolicyError):
        parse_duration("15 minutes")


def test_load_policy_names_file(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("severities: {urgent: [{who: ghost}]}\n")
    with pytest.raises(PolicyError, match=r"p\.yaml"):
        load_policy(f)


def test_default_policy_follows_clinical() -> None:
    p = default_policy()
    em = p.steps_for(Severity.EMERGENCY)
    assert em[0].who == SUPERVISING and em[0].wait == timedelta(minutes=5) and em[0].repeat == 2
    assert em[1].who == ON_CALL
    ur = p.steps_for(Severity.URGENT)
    assert ur[0].who == QUEUE and ur[0].wait == timedelta(hours=2) and not ur[0].pages
    assert ur[1].who == SUPERVISING
    assert [s.who for s in p.steps_for(Severity.ROUTINE)] == [QUEUE]


def test_policies_per_practice(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text("""
contacts: {a: {name: A}}
severities: {emergency: [{who: a, channels: [webhook]}]}
channels: {webhook: {secret: x}}
practices:
  p2:
    contacts: {b: {name: B}}
    severities: {emergency: [{who: b, channels: [email]}]}
""")
    policies, raw = load_policy_file(f)
    assert policies("p1").steps_for(Severity.EMERGENCY)[0].who == "a"
    assert policies("p2").steps_for(Severity.EMERGENCY)[0].who == "b"
    assert raw["channels"] == {"webhook": {"secret": "x"}}
    f.write_text("practices: {p2: {severities: {emergency: [{who: ghost}]}}}\n")
    with pytest.raises(PolicyError, match=r"practices\.p2: severities\.emergency"):
        load_policy_file(f)
