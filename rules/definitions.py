"""Rules as data: the rule file format, its loader and per-patient composition.

How this works
--------------
A rule file is YAML (``version: 1``) with a list of rules.  Each rule has an
``id``, a ``kind`` (one of :data:`KINDS`), ``severity``, ``applies_to``
(conditions, or ``all``), ``source``, optional ``enabled``/``replaces``/
``version`` and a ``params`` mapping whose keys depend on the kind.
Thresholds are canonical (kg, mmHg, %, mg/dL, /min) unless the mapping that
holds them says ``unit: lb`` (converted exactly, 1 lb = 0.45359237 kg).

The loader composes the YAML into nodes first so every error can name the
line it comes from: :class:`RuleFileError` carries ``line`` and ``reason``.

A patient's rules are :func:`compose`\\ d from the rule set, the patient's
conditions and the care-plan :class:`Override`\\ s in force at ``now``
(an override may change any parameter, using dotted paths such as
``clauses.0.le`` for nested ones, or ``{"enabled": false}``).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from gateway.escalations import Severity
from gateway.model import Condition, Flag
from gateway.units import Metric, Unit, UnitError, parse_unit, to_canonical

#: Rule kinds the engine knows.  A practice adds rules of these kinds as data.
KINDS = (
    "threshold",
    "delta",
    "baseline_drop",
    "window_average",
    "frequency",
    "no_data",
    "hub_offline",
    "device_clock",
)

SUPPORTED_FILE_VERSIONS = (1,)
DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")


class RuleError(ValueError):
    """Base class of rule definition errors."""


class RuleFileError(RuleError):
    """A rule file (or an override) is invalid; ``line`` is 1-based, 0 if unknown."""

    def __init__(self, line: int, reason: str, filename: str | None = None) -> None:
        self.line = line
        self.reason = reason
        self.filename = filename
        where = f"{filename}:" if filename else ""
        super().__init__(f"{where}{line}: {reason}" if line else f"{where}{reason}")


class OverrideError(RuleError):
    """A care-plan override does not fit the rule it names."""

    def __init__(self, rule_id: str, reason: str) -> None:
        self.rule_id = rule_id
        self.reason = reason
        super().__init__(f"override of {rule_id}: {reason}")


# --------------------------------------------------------------------------- specs

#: Comparison keys allowed in clauses, and their meaning.
OPS = ("ge", "gt", "le", "lt")
OP_SYMBOL = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
#: Tolerance for comparisons in canonical units: lb thresholds converted to kg
#: and values converted from lb are not exact binary floats; a 2.0 lb change
#: must compare equal to a 2.0 lb threshold.  Devices resolve >= 0.05 kg, so
#: 1e-6 never changes a real decision.
EPS = 1e-6


@dataclass(frozen=True, slots=True)
class Clause:
    """``metric`` compared against thresholds (all must hold), or a ``flag`` present.

    ``count`` readings matching within ``within`` are needed (default one).
    """

    metric: Metric | None = None
    flag: Flag | None = None
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    count: int = 1
    within: timedelta = timedelta(0)

    def test(self, v: float) -> bool:
        """True when ``v`` (canonical) satisfies every comparison of the clause."""
        if self.lt is not None and not v < self.lt - EPS:
            return False
        if self.le is not None and not v <= self.le + EPS:
            return False
        if self.gt is not None and not v > self.gt + EPS:
            return False
        return not (self.ge is not None and not v >= self.ge - EPS)

    def ops(self) -> list[tuple[str, float]]:
        """The (op, value) pairs of this clause."""
        return [(op, v) for op in OPS if (v := getattr(self, op)) is not None]


@dataclass(frozen=True, slots=True)
class ThresholdSpec:
    """Any clause firing fires the rule."""

    clauses: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class DeltaSpec:
    """First value of the trigger's local day minus first value ``days_back`` days earlier."""

    metric: Metric
    days_back: int
    fallback_days: tuple[int, ...]
    change: Clause  # comparison applied to the difference (canonical units)
    display_unit: Unit | None
    #: ``(days_back, *fallback_days)``: the reference days in the order tried.
    backs: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "backs", (self.days_back, *self.fallback_days))


@dataclass(frozen=True, slots=True)
class BaselineDropSpec:
    """Value at least ``drop`` below the median of the previous ``baseline_days``."""

    metric: Metric
    baseline_days: int
    min_baseline_readings: int
    drop: float
    count: int
    within: timedelta


@dataclass(frozen=True, slots=True)
class WindowAverageSpec:
    """Mean over the last ``days`` local days; fires if any clause holds on the means."""

    metrics: tuple[Metric, ...]
    days: int
    min_readings: int
    min_days: int
    clauses: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class FrequencySpec:
    """Share (or count) of readings matching ``clause`` over the last ``days`` local days."""

    clause: Clause
    days: int
    min_readings: int
    min_share: float | None
    min_count: int | None


@dataclass(frozen=True, slots=True)
class NoDataSpec:
    """No qualifying reading for ``full_days`` full local days."""

    full_days: int


@dataclass(frozen=True, slots=True)
class HubOfflineSpec:
    """No status or reading from a hub for ``after``."""

    after: timedelta


@dataclass(frozen=True, slots=True)
class DeviceClockSpec:
    """Uncorrected device clock offset larger than ``max_offset``."""

    max_offset: timedelta


Spec = (
    ThresholdSpec
    | DeltaSpec
    | BaselineDropSpec
    | WindowAverageSpec
    | FrequencySpec
    | NoDataSpec
    | HubOfflineSpec
    | DeviceClockSpec
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule, validated, thresholds canonical.  ``raw`` keeps the file's form."""

    id: str
    kind: str
    severity: Severity
    applies_to: frozenset[Condition] | None  # None: everyone
    source: str
    spec: Spec
    enabled: bool = True
    replaces: tuple[str, ...] = ()
    version: int = 1
    description: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    overrides: tuple[str, ...] = ()  # "ordered_by@ordered_at" of overrides applied

    def thresholds(self) -> dict[str, Any]:
        """The parameters in force, as given in the file/override (display units)."""
        params: dict[str, Any] = _copy_tree(self.raw.get("params", {}))
        return params


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A loaded rule file."""

    version: int
    rules: tuple[Rule, ...]

    def get(self, rule_id: str) -> Rule:
        """The rule with ``rule_id`` (KeyError if absent)."""
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


@dataclass(frozen=True, slots=True)
class Override:
    """A physician's per-patient change to one rule, from the care plan."""

    rule_id: str
    params: Mapping[str, Any]
    ordered_by: str
    ordered_at: datetime
    expires_at: datetime | None = None

    def in_force(self, now: datetime) -> bool:
        """True when the override applies at ``now``."""
        return self.ordered_at <= now and (self.expires_at is None or now < self.expires_at)


# --------------------------------------------------------------------------- YAML

class _Lines:
    """Line numbers of every path in a composed YAML document."""

    def __init__(self) -> None:
        self.of: dict[tuple[Any, ...], int] = {}

    def line(self, path: tuple[Any, ...]) -> int:
        while path and path not in self.of:
            path = path[:-1]
        return self.of.get(path, 0)


def _copy_tree(x: Any) -> Any:
    """A deep copy of parsed YAML (dicts and lists of immutable scalars).

    ``copy.deepcopy`` costs ~5x more, and this runs once per escalation event.
    """
    if isinstance(x, Mapping):
        return {k: _copy_tree(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_copy_tree(v) for v in x]
    return x  # str, int, float, bool, None, date: immutable


def _plain(node: yaml.Node, path: tuple[Any, ...], lines: _Lines) -> Any:
    lines.of[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = _plain(knode, (*path, "<key>"), lines)
            if not isinstance(key, str):
                raise RuleFileError(knode.start_mark.line + 1, f"key {key!r} is not a string")
            if key in out:
                raise RuleFileError(knode.start_mark.line + 1, f"duplicate key {key!r}")
            out[key] = _plain(vnode, (*path, key), lines)
            lines.of[(*path, key)] = knode.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v, (*path, i), lines) for i, v in enumerate(node.value)]
    return yaml.constructor.SafeConstructor().construct_object(node)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)\s*$")
_DURATION_UNIT = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> timedelta:
    """``"60m"``, ``"24h"``, ``"7d"``, ``"30s"`` (or a number of seconds) to a timedelta."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return timedelta(seconds=float(m.group(1)) * _DURATION_UNIT[m.group(2)])
    raise ValueError(f"not a duration (use e.g. 60m, 24h, 7d): {value!r}")


class _Parser:
    """Validates one rule mapping; ``path`` locates it for line numbers."""

    def __init__(self, lines: _Lines, path: tuple[Any, ...]) -> None:
        self.lines = lines
        self.path = path

    def fail(self, reason: str, *keys: Any) -> RuleFileError:
        return RuleFileError(self.lines.line((*self.path, *keys)), reason)

    def mapping(self, value: Any, *keys: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{'.'.join(map(str, keys)) or 'rule'} must be a mapping", *keys)
        return value

    def check_keys(self, d: Mapping[str, Any], allowed: Iterable[str], *keys: Any) -> None:
        allowed = set(allowed)
        for k in d:
            if k not in allowed:
                raise self.fail(f"unknown key {k!r} (allowed: {', '.join(sorted(allowed))})",
                                *keys, k)

    def req(self, d: Mapping[str, Any], key: str, *keys: Any) -> Any:
        if key not in d:
            raise self.fail(f"missing required key {key!r}", *keys)
        return d[key]

    def number(self, d: Mapping[str, Any], key: str, *keys: Any, default: Any = None,
               minimum: float | None = None) -> Any:
        v = d.get(key, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise self.fail(f"{key} must be a number, got {v!r}", *keys, key)
        if minimum is not None and v < minimum:
            raise self.fail(f"{key} must be >= {minimum}, got {v!r}", *keys, key)
        return v

    def integer(self, d: Mapping[str, Any], key: str, *keys: Any, default: int,
                minimum: int = 0) -> int:
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"{key} must be an integer, got {v!r}", *keys, key)
        if v < minimum:
            raise self.fail(f"{key} must be >= {minimum}, got {v}", *keys, key)
        return v

    def duration(self, d: Mapping[str, Any], key: str, *keys: Any,
                 default: Any = None) -> timedelta:
        v = d.get(key, default)
        try:
            td = parse_duration(v)
        except ValueError as e:
            raise self.fail(f"{key}: {e}", *keys, key) from None
        if td < timedelta(0):
            raise self.fail(f"{key} must not be negative", *keys, key)
        return td

    def metric(self, value: Any, *keys: Any) -> Metric:
        try:
            return Metric(value)
        except ValueError:
            raise self.fail(f"unknown metric {value!r} (known: {', '.join(Metric)})",
                            *keys) from None

    def unit_of(self, d: Mapping[str, Any], metric: Metric | None, *keys: Any) -> Unit | None:
        if "unit" not in d:
            return None
        try:
            unit = parse_unit(str(d["unit"]))
            if metric is not None:
                to_canonical(metric, 1, unit)
        except UnitError as e:
            raise self.fail(str(e), *keys, "unit") from None
        return unit

    def clause(self, d: Any, metric: Metric | None, *keys: Any,
               allow_window: bool = True, need_metric: bool = True) -> Clause:
        d = self.mapping(d, *keys)
        allowed = {*OPS, "unit"}
        if need_metric:
            allowed |= {"metric", "flag"}
        if allow_window:
            allowed |= {"count", "within"}
        self.check_keys(d, allowed, *keys)
        flag = None
        if need_metric:
            if "flag" in d:
                try:
                    flag = Flag(d["flag"])
                except ValueError:
                    raise self.fail(f"unknown flag {d['flag']!r}", *keys, "flag") from None
                if "metric" in d or any(op in d for op in OPS):
                    raise self.fail("a flag clause has no metric or comparison", *keys, "flag")
            else:
                metric = self.metric(self.req(d, "metric", *keys), *keys, "metric")
        unit = self.unit_of(d, metric, *keys)
        vals: dict[str, float] = {}
        for op in OPS:
            v = self.number(d, op, *keys)
            if v is not None:
                vals[op] = to_canonical(metric, v, unit) if (unit and metric) else float(v)
        if flag is None and not vals:
            raise self.fail("clause needs a comparison (lt, le, gt or ge)", *keys)
        count = self.integer(d, "count", *keys, default=1, minimum=1)
        within = self.duration(d, "within", *keys, default=0)
        if count > 1 and within <= timedelta(0):
            raise self.fail("count > 1 needs a positive 'within' window", *keys, "count")
        return Clause(metric=metric if flag is None else None, flag=flag, count=count,
                      within=within, **vals)

    def clauses(self, p: Mapping[str, Any], *keys: Any,
                allow_window: bool = True) -> tuple[Clause, ...]:
        raw = self.req(p, "clauses", *keys)
        if not isinstance(raw, list) or not raw:
            raise self.fail("clauses must be a non-empty list", *keys, "clauses")
        return tuple(self.clause(c, None, *keys, "clauses", i, allow_window=allow_window)
                     for i, c in enumerate(raw))

    def spec(self, kind: str, p: dict[str, Any]) -> Spec:
        k = ("params",)
        if kind == "threshold":
            self.check_keys(p, {"clauses"}, *k)
            return ThresholdSpec(self.clauses(p, *k))
        if kind == "delta":
            self.check_keys(p, {"metric", "days_back", "fallback_days", "unit", *OPS}, *k)
            metric = self.metric(self.req(p, "metric", *k), *k, "metric")
            fb = p.get("fallback_days", [])
            if not isinstance(fb, list) or not all(
                isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in fb
            ):
                raise self.fail("fallback_days must be a list of positive integers",
                                *k, "fallback_days")
            change = self.clause({o: p[o] for o in (*OPS, "unit") if o in p}, metric, *k,
                                 allow_window=False, need_metric=False)
            return DeltaSpec(metric, self.integer(p, "days_back", *k, default=1, minimum=1),
                             tuple(fb), change, self.unit_of(p, metric, *k))
        if kind == "baseline_drop":
            self.check_keys(p, {"metric", "baseline_days", "min_baseline_readings", "drop",
                                "count", "within"}, *k)
            count = self.integer(p, "count", *k, default=1, minimum=1)
            within = self.duration(p, "within", *k, default=0)
            if count > 1 and within <= timedelta(0):
                raise self.fail("count > 1 needs a positive 'within' window", *k, "count")
            return BaselineDropSpec(
                self.metric(self.req(p, "metric", *k), *k, "metric"),
                self.integer(p, "baseline_days", *k, default=7, minimum=1),
                self.integer(p, "min_baseline_readings", *k, default=3, minimum=1),
                float(self.number(p, "drop", *k, default=self.req(p, "drop", *k), minimum=0)),
                count, within)
        if kind == "window_average":
            self.check_keys(p, {"days", "min_readings", "min_days", "clauses"}, *k)
            cl = self.clauses(p, *k, allow_window=False)
            return WindowAverageSpec(
                tuple(dict.fromkeys(c.metric for c in cl if c.metric is not None)),
                self.integer(p, "days", *k, default=7, minimum=1),
                self.integer(p, "min_readings", *k, default=1, minimum=1),
                self.integer(p, "min_days", *k, default=1, minimum=1), cl)
        if kind == "frequency":
            self.check_keys(p, {"clause", "days", "min_readings", "min_share", "min_count"}, *k)
            share = self.number(p, "min_share", *k, minimum=0)
            cnt = p.get("min_count")
            if share is None and cnt is None:
                raise self.fail("frequency needs min_share or min_count", *k)
            if share is not None and share > 1:
                raise self.fail("min_share is a fraction (0-1)", *k, "min_share")
            return FrequencySpec(
                self.clause(self.req(p, "clause", *k), None, *k, "clause", allow_window=False),
                self.integer(p, "days", *k, default=14, minimum=1),
                self.integer(p, "min_readings", *k, default=1, minimum=1),
                None if share is None else float(share),
                None if cnt is None else self.integer(p, "min_count", *k, default=1, minimum=1))
        if kind == "no_data":
            self.check_keys(p, {"full_days"}, *k)
            return NoDataSpec(self.integer(p, "full_days", *k, default=3, minimum=1))
        if kind == "hub_offline":
            self.check_keys(p, {"after"}, *k)
            return HubOfflineSpec(self.duration(p, "after", *k, default="24h"))
        if kind == "device_clock":
            self.check_keys(p, {"max_offset"}, *k)
            return DeviceClockSpec(self.duration(p, "max_offset", *k, default="10m"))
        raise self.fail(f"unknown kind {kind!r} (known: {', '.join(KINDS)})", "kind")

    def rule(self, d: Any) -> Rule:
        d = self.mapping(d)
        self.check_keys(d, {"id", "kind", "severity", "applies_to", "source", "enabled",
                            "replaces", "version", "params", "description"})
        rid = self.req(d, "id")
        if not isinstance(rid, str) or not re.fullmatch(r"[a-z0-9_]+(\.[a-z0-9_]+)+", rid):
            raise self.fail(f"id must look like 'group.name', got {rid!r}", "id")
        kind = self.req(d, "kind")
        if kind not in KINDS:
            raise self.fail(f"unknown kind {kind!r} (known: {', '.join(KINDS)})", "kind")
        try:
            sev = Severity(self.req(d, "severity"))
        except ValueError:
            raise self.fail(f"severity must be one of {', '.join(Severity)}",
                            "severity") from None
        at = d.get("applies_to", "all")
        applies: frozenset[Condition] | None
        if at == "all":
            applies = None
        else:
            if isinstance(at, str):
                at = [at]
            if not isinstance(at, list) or not at:
                raise self.fail("applies_to must be 'all' or a list of conditions",
                                "applies_to")
            try:
                applies = frozenset(Condition(c) for c in at)
            except ValueError:
                raise self.fail(f"unknown condition in {at!r} (known: {', '.join(Condition)})",
                                "applies_to") from None
        enabled = d.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.fail("enabled must be true or false", "enabled")
        rep = d.get("replaces", [])
        if isinstance(rep, str):
            rep = [rep]
        if not isinstance(rep, list) or not all(isinstance(x, str) for x in rep):
            raise self.fail("replaces must be a rule id or a list of them", "replaces")
        src = self.req(d, "source")
        if not isinstance(src, str) or not src.strip():
            raise self.fail("source must be non-empty text", "source")
        params = self.mapping(d.get("params", {}), "params")
        return Rule(
            id=rid, kind=kind, severity=sev, applies_to=applies, source=src,
            spec=self.spec(kind, params), enabled=enabled, replaces=tuple(rep),
            version=self.integer(d, "version", default=1, minimum=1),
            description=str(d.get("description", "")), raw=d,
        )


def parse_rules(text: str, filename: str | None = None) -> RuleSet:
    """Parse and validate a rule file's text.  Raises :class:`RuleFileError`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise RuleFileError(mark.line + 1 if mark else 0, f"YAML syntax: {e.problem}",
                            filename) from None
    if node is None:
        raise RuleFileError(1, "empty rule file", filename)
    lines = _Lines()
    try:
        doc = _plain(node, (), lines)
        top = _Parser(lines, ())
        doc = top.mapping(doc)
        top.check_keys(doc, {"version", "rules"})
        version = top.req(doc, "version")
        if version not in SUPPORTED_FILE_VERSIONS:
            raise top.fail(f"unsupported rule file version {version!r} "
                           f"(supported: {SUPPORTED_FILE_VERSIONS})", "version")
        raw_rules = top.req(doc, "rules")
        if not isinstance(raw_rules, list):
            raise top.fail("rules must be a list", "rules")
        rules: list[Rule] = []
        seen: set[str] = set()
        for i, rd in enumerate(raw_rules):
            rule = _Parser(lines, ("rules", i)).rule(rd)
            if rule.id in seen:
                raise RuleFileError(lines.line(("rules", i, "id")), f"duplicate rule id {rule.id}")
            seen.add(rule.id)
            rules.append(rule)
        for i, rule in enumerate(rules):
            for rep in rule.replaces:
                if rep not in seen:
                    raise RuleFileError(lines.line(("rules", i, "replaces")),
                                        f"replaces unknown rule {rep!r}")
    except RuleFileError as e:
        if filename and e.filename is None:
            raise RuleFileError(e.line, e.reason, filename) from None
        raise
    return RuleSet(version=version, rules=tuple(rules))


def load_rules(path: str | Path | None = None) -> RuleSet:
    """Load a rule file (default: the packaged ``defaults.yaml``)."""
    p = Path(path) if path is not None else DEFAULTS_PATH
    return parse_rules(p.read_text(encoding="utf-8"), filename=str(p))


def load_defaults() -> RuleSet:
    """The default rules of CLINICAL.md."""
    return load_rules(None)


# --------------------------------------------------------------------------- composition

_TOP_LEVEL_OVERRIDABLE = ("severity", "enabled")


def _set_path(target: dict[str, Any], dotted: str, value: Any, rule_id: str) -> None:
    parts = dotted.split(".")
    cur: Any = target
    for part in parts[:-1]:
        if isinstance(cur, list):
            if not part.isdigit() or int(part) >= len(cur):
                raise OverrideError(rule_id, f"no element {part!r} in {dotted!r}")
            cur = cur[int(part)]
        elif isinstance(cur, dict):
            if part not in cur:
                raise OverrideError(rule_id, f"no parameter {part!r} in {dotted!r}")
            cur = cur[part]
        else:
            raise OverrideError(rule_id, f"cannot descend into {dotted!r}")
    last = parts[-1]
    if isinstance(cur, list):
        if not last.isdigit() or int(last) >= len(cur):
            raise OverrideError(rule_id, f"no element {last!r} in {dotted!r}")
        cur[int(last)] = value
    elif isinstance(cur, dict):
        cur[last] = value
    else:
        raise OverrideError(rule_id, f"cannot set {dotted!r}")


def apply_override(rule: Rule, override: Override) -> Rule:
    """The rule with ``override``'s parameters applied (validated like a rule file)."""
    raw = copy.deepcopy(dict(rule.raw))
    raw.setdefault("params", {})
    for key, value in override.params.items():
        if key in _TOP_LEVEL_OVERRIDABLE:
            raw[key] = value
        else:
            _set_path(raw["params"], key, value, rule.id)
    try:
        new = _Parser(_Lines(), ()).rule(raw)
    except RuleFileError as e:
        raise OverrideError(rule.id, e.reason) from None
    tag = f"{override.ordered_by}@{override.ordered_at.isoformat()}"
    return Rule(id=new.id, kind=new.kind, severity=new.severity, applies_to=new.applies_to,
                source=new.source, spec=new.spec, enabled=new.enabled, replaces=new.replaces,
                version=new.version, description=new.description, raw=new.raw,
                overrides=(*rule.overrides, tag))


def override_from_json(rule_id: str, data: Mapping[str, Any]) -> Override:
    """An :class:`Override` from ``{param: value, ..., ordered_by, ordered_at, expires_at}``."""
    params = {k: v for k, v in data.items()
              if k not in ("ordered_by", "ordered_at", "expires_at")}
    try:
        ordered_at = datetime.fromisoformat(
            str(data.get("ordered_at", "1970-01-01T00:00:00+00:00")))
        exp = data.get("expires_at")
        expires_at = datetime.fromisoformat(str(exp)) if exp is not None else None
    except ValueError as e:
        raise OverrideError(rule_id, str(e)) from None
    for dt in (ordered_at, expires_at):
        if dt is not None and dt.tzinfo is None:
            raise OverrideError(rule_id, "ordered_at/expires_at need a UTC offset")
    return Override(rule_id, params, str(data.get("ordered_by", "unknown")), ordered_at,
                    expires_at)


@dataclass(frozen=True, slots=True)
class Composed:
    """The rules in force for one patient at ``now``; valid until ``valid_until``."""

    rules: tuple[Rule, ...]
    valid_until: datetime | None  # next override start/expiry after now


def compose(ruleset: RuleSet, conditions: Iterable[Condition | str],
            overrides: Sequence[Override] = (), *, now: datetime) -> Composed:
    """Select the rules for ``conditions``, apply overrides in force at ``now``.

    Condition-selected rules first; a selected rule's ``replaces`` removes the
    rules it replaces; overrides (in ``ordered_at`` order) then change
    parameters or enable/disable rules; disabled rules are dropped.
    Overrides naming rules that do not apply to the patient are ignored.
    """
    conds = frozenset(Condition(c) for c in conditions)
    selected = [r for r in ruleset.rules if r.applies_to is None or r.applies_to & conds]
    replaced = {rep for r in selected for rep in r.replaces}
    selected = [r for r in selected if r.id not in replaced]
    by_id = {r.id: r for r in selected}
    changes: list[datetime] = []
    for ov in sorted(overrides, key=lambda o: o.ordered_at):
        if ov.ordered_at > now:
            changes.append(ov.ordered_at)
        if ov.expires_at is not None and ov.expires_at > now:
            changes.append(ov.expires_at)
        if ov.rule_id in by_id and ov.in_force(now):
            by_id[ov.rule_id] = apply_override(by_id[ov.rule_id], ov)
    rules = tuple(by_id[r.id] for r in selected if by_id[r.id].enabled)
    return Composed(rules, min(changes) if changes else None)
