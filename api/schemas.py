"""HTTP schemas: one pydantic model per use (Create / Update / Public).

Pydantic lives only here, at the HTTP edge; handlers convert to and from the
frozen dataclasses of :mod:`gateway.model` and :mod:`gateway.store.api_store`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gateway.model import Condition, DeviceKind, Program

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
_RULE_ID = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$")


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def _email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not an e-mail address")
    return value.lower()


#: Instants the API accepts: anything a practice can mean, and safely inside what
#: Python and both databases can represent once converted to UTC.
_EARLIEST, _LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must carry a time zone (e.g. 2026-03-01T12:00:00Z)")
    try:
        in_range = _EARLIEST <= value.astimezone(UTC) < _LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError("datetime must be between 1900 and 2200")
    return value


Id = Annotated[str, Field(pattern=_ID, max_length=64)]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_zone)]
Email = Annotated[str, Field(max_length=254), AfterValidator(_email)]
Aware = Annotated[datetime, AfterValidator(_aware)]
HumanRole = Literal["admin", "physician", "coordinator", "biller"]
Password = Annotated[str, Field(min_length=12, max_length=256)]
Name = Annotated[str, Field(min_length=1, max_length=100)]


#: Ids in paths and query strings: bounded, printable (never a NUL for PostgreSQL).
PathId = Annotated[str, Path(pattern=_ID, max_length=64)]
QueryId = Annotated[str | None, Query(pattern=_ID, max_length=64)]
#: Integer row ids in paths, within the 64-bit range both databases store.
PathInt = Annotated[int, Path(ge=1, le=2**62)]


def has_nul(value: Any) -> bool:
    """True when a string anywhere in ``value`` contains a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


# -- auth ---------------------------------------------------------------------
class Token(BaseModel):
    """OAuth2 bearer token response."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - OAuth2 token type
    expires_in: int


# -- practices ----------------------------------------------------------------
class PracticePublic(BaseModel):
    """A practice as callers see it."""

    id: str
    name: str
    timezone: str
    display_units: Literal["us", "si"] | str


class PracticeUpdate(_In):
    """Change a practice's name, zone or display units."""

    name: Name | None = None
    timezone: TimeZone | None = None
    display_units: Literal["us", "si"] | None = None


# -- users ----------------------------------------------------------------------
class UserCreate(_In):
    """A new user of the caller's practice."""

    email: Email
    full_name: Annotated[str, Field(max_length=200)] = ""
    role: HumanRole
    #: Omitted: the user signs in only through the OIDC provider (single sign-on must be on).
    password: Password | None = None


class UserUpdate(_In):
    """Change a user's name, role, password or active flag."""

    full_name: Annotated[str, Field(max_length=200)] | None = None
    role: HumanRole | None = None
    password: Password | None = None
    active: bool | None = None


class PasswordChange(_In):
    """Change one's own password."""

    current_password: Annotated[str, Field(max_length=256)]
    new_password: Password


class UserPublic(BaseModel):
    """A user without the password hash."""

    id: str
    practice_id: str
    email: str
    full_name: str
    role: str
    active: bool


# -- patients & enrolment ---------------------------------------------------------
class PatientCreate(_In):
    """A new patient; ``id`` is generated when omitted."""

    id: Id | None = None
    mrn: Annotated[str, Field(min_length=1, max_length=64)]
    given_name: Name
    family_name: Name
    birth_date: date | None = None
    timezone: TimeZone


class PatientUpdate(_In):
    """Change a patient's demographics or time zone."""

    mrn: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    given_name: Name | None = None
    family_name: Name | None = None
    birth_date: date | None = None
    timezone: TimeZone | None = None


class PatientPublic(BaseModel):
    """A patient record."""

    id: str
    mrn: str
    given_name: str
    family_name: str
    birth_date: date | None
    timezone: str


class EnrollmentPut(_In):
    """Programs, conditions, consent, time zone and supervising physician."""

    programs: Annotated[list[Program], Field(max_length=3)]
    conditions: Annotated[list[Condition], Field(max_length=4)] = []
    consent_date: date | None = None
    timezone: TimeZone | None = None
    supervising_physician_id: Id | None = None
    monitoring_start: date | None = None
    active: bool = True


class EnrollmentPublic(BaseModel):
    """A patient's enrolment."""

    patient_id: str
    programs: list[str]
    conditions: list[str]
    consent_date: date | None
    timezone: str
    supervising_physician_id: str | None
    monitoring_start: date | None
    active: bool


# -- devices, hubs, assignments ------------------------------------------------------
class DeviceCreate(_In):
    """A new device of the practice."""

    serial: Id
    kind: DeviceKind
    model: Annotated[str, Field(max_length=100)] = ""
    manufacturer: Annotated[str, Field(max_length=100)] = ""


class DeviceUpdate(_In):
    """Change a device's model or manufacturer."""

    model: Annotated[str, Field(max_length=100)] | None = None
    manufacturer: Annotated[str, Field(max_length=100)] | None = None


class DevicePublic(BaseModel):
    """A device with its health as last reported."""

    serial: str
    kind: str
    model: str
    manufacturer: str
    patient_id: str | None = None
    last_reading_at: datetime | None = None
    battery: float | None = None
    clock_offset_s: float | None = None


class HubCreate(_In):
    """A hub to provision; ``patient_id`` when it already has a home."""

    id: Id
    patient_id: Id | None = None


class HubPublic(BaseModel):
    """A hub (never its password)."""

    id: str
    patient_id: str | None
    mqtt_username: str | None


class HubProvisioned(HubPublic):
    """Provisioning result: the MQTT password is shown this once and never stored."""

    mqtt_password: str


class AssignmentCreate(_In):
    """Lend a device to the patient through a hub from ``start`` (now when omitted)."""

    device_serial: Id
    hub_id: Id
    start: Aware | None = None


class AssignmentEnd(_In):
    """Close a device assignment at ``end`` (now when omitted)."""

    end: Aware | None = None


class AssignmentPublic(BaseModel):
    """A device assignment."""

    device_serial: str
    patient_id: str
    hub_id: str
    start: datetime
    end: datetime | None


# -- care plans ---------------------------------------------------------------------
class CarePlanOverrideCreate(_In):
    """A physician's override of one rule for this patient."""

    rule_id: Annotated[str, Field(pattern=_RULE_ID, max_length=64)]
    params: Annotated[dict[str, float | int | bool | str], Field(max_length=20)] = {}
    enabled: bool = True
    expires_at: Aware | None = None


class CarePlanOverridePublic(BaseModel):
    """A care-plan override with who ordered it and until when."""

    id: int
    patient_id: str
    rule_id: str
    params: dict[str, Any]
    enabled: bool
    ordered_by: str
    ordered_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    in_force: bool


# -- readings -------------------------------------------------------------------------
class ReadingPublic(BaseModel):
    """One reading with its four times and canonical values."""

    id: str
    device_serial: str
    hub_id: str
    kind: str
    measured_at: datetime
    received_at: datetime
    ingested_at: datetime | None
    clock_offset_s: float | None
    source: str
    flags: list[str]
    values: dict[str, float | None]
    units: dict[str, str]


class ReadingPage(BaseModel):
    """A page of readings; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[ReadingPublic]
    next_cursor: str | None


# -- quarantine ---------------------------------------------------------------------
class QuarantinePublic(BaseModel):
    """A quarantined payload (the payload itself only in detail)."""

    id: int
    topic: str
    reason_code: str
    reason: str
    payload_size: int
    received_at: datetime
    status: str
    hub_id: str | None
    reading_id: str | None
    field: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    payload: str | None = None


# -- audit ---------------------------------------------------------------------------
class AuditPublic(BaseModel):
    """One audit entry."""

    id: int
    at: datetime
    user_id: str
    action: str
    resource_type: str
    resource_id: str | None
    patient_id: str | None
    client_ip: str | None


# -- escalations ------------------------------------------------------------------------
class EscalationPublic(BaseModel):
    """An escalation in the queue."""

    id: str
    patient_id: str
    rule_id: str
    rule_title: str
    severity: str
    status: str
    opened_at: datetime
    updated_at: datetime | None
    assignee: str | None
    snoozed_until: datetime | None
    evidence: str
    disposition: str | None = None


class EscalationEventPublic(BaseModel):
    """One step of an escalation's history."""

    at: datetime
    action: str
    actor: str | None
    detail: str


class EscalationDetail(EscalationPublic):
    """An escalation with its history and the readings behind it."""

    events: list[EscalationEventPublic]
    reading_ids: list[str]
    thresholds: dict[str, Any]
    notifications: list[dict[str, Any]] | None = None  # None: no notifier trace configured


class AssignBody(_In):
    """Assign to a user of the practice."""

    assignee: Id


class SnoozeBody(_In):
    """Snooze until ``until`` (required, in the future)."""

    until: Aware
    comment: Annotated[str, Field(max_length=2000)] = ""


class CommentBody(_In):
    """A free-text comment."""

    text: Annotated[str, Field(min_length=1, max_length=2000)]


class ResolveBody(_In):
    """Resolve with a disposition from the escalation module's list."""

    disposition: Annotated[str, Field(min_length=1, max_length=64)]
    comment: Annotated[str, Field(max_length=2000)] = ""


# -- medications ----------------------------------------------------------------------
class MedicationCreate(_In):
    """A medication as the patient takes it, recorded by the care team."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    dose: Annotated[str, Field(max_length=100)] = ""
    frequency: Annotated[str, Field(max_length=100)] = ""
    started_on: date | None = None
    note: Annotated[str, Field(max_length=2000)] = ""


class MedicationStop(_In):
    """Why a medication was stopped (optional)."""

    reason: Annotated[str, Field(max_length=500)] = ""


class MedicationPublic(BaseModel):
    """A recorded medication with who recorded and who stopped it."""

    id: int
    patient_id: str
    name: str
    dose: str
    frequency: str
    started_on: date | None
    note: str
    recorded_by: str
    recorded_at: datetime
    stopped_at: datetime | None
    stopped_by: str | None
    stop_reason: str | None
    active: bool


# -- time tracking --------------------------------------------------------------------
class TimeEntryCreate(_In):
    """Minutes spent on a patient's care (counted toward CCM/PCM/RPM management codes)."""

    program: Program
    activity: Annotated[str, Field(min_length=1, max_length=100)]
    started_at: Aware
    minutes: Annotated[int, Field(ge=1, le=480)]
    interactive: bool = False
    note: Annotated[str, Field(max_length=2000)] = ""


class TimeEntryPublic(BaseModel):
    """A logged time entry; ``warnings`` flags minutes that would count twice."""

    id: int
    patient_id: str
    user_id: str
    program: str
    activity: str
    started_at: datetime
    minutes: int
    interactive: bool
    performed_by: str
    note: str
    warnings: list[str] = []
