"""JSON API routes under ``/api/v1``.

Every handler takes its caller from a role alias of :mod:`api.deps` (the
role check), reads and writes only rows of ``principal.practice_id`` (a row
of another practice is ``NotFound`` -> 404, indistinguishable from absent),
and records patient-data reads and changes with the request's auditor.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import (
    AdminUser,
    Audit,
    BillingUser,
    CareTeamUser,
    ClinicalUser,
    Ctx,
    CurrentUser,
    PhysicianUser,
    QuarantineUser,
    ReaderUser,
    client_ip,
)
from api.fhir import patient_bundle
from api.schemas import (
    AssignBody,
    AssignmentCreate,
    AssignmentEnd,
    AssignmentPublic,
    AuditPublic,
    Aware,
    CarePlanOverrideCreate,
    CarePlanOverridePublic,
    CommentBody,
    DeviceCreate,
    DevicePublic,
    DeviceUpdate,
    EnrollmentPublic,
    EnrollmentPut,
    EscalationDetail,
    EscalationEventPublic,
    EscalationPublic,
    HubCreate,
    HubProvisioned,
    HubPublic,
    MedicationCreate,
    MedicationPublic,
    MedicationStop,
    PasswordChange,
    PathId,
    PathInt,
    PatientCreate,
    PatientPublic,
    PatientUpdate,
    PracticePublic,
    PracticeUpdate,
    QuarantinePublic,
    QueryId,
    ReadingPage,
    ReadingPublic,
    ResolveBody,
    SnoozeBody,
    TimeEntryCreate,
    TimeEntryPublic,
    Token,
    UserCreate,
    UserPublic,
    UserUpdate,
    has_nul,
)
from api.security import (
    LOGIN_MAX_FAILURES,
    LOGIN_WINDOW,
    AuthError,
    ForbiddenError,
    Principal,
    Role,
    generate_secret,
    hash_password,
    verify_password,
)
from api.text import evidence_reading_ids, rule_title
from gateway.billing.from_store import practice_month, practice_month_codes
from gateway.billing.rules import BillingMonth
from gateway.callprep import CallPrep, callprep_from_store
from gateway.escalations import Action, Disposition, Escalation, Severity, Status
from gateway.model import (
    Condition,
    Device,
    DeviceAssignment,
    Enrollment,
    Hub,
    Patient,
    Practice,
    Reading,
)
from gateway.store import Conflict, NotFound, QuarantineItem
from gateway.store.api_store import CarePlanOverride, HubCredentials, Medication, User
from gateway.units import CANONICAL_UNIT, Metric

Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]

# -- conversions -----------------------------------------------------------------


def practice_public(p: Practice) -> PracticePublic:
    """HTTP view of a practice."""
    return PracticePublic(id=p.id, name=p.name, timezone=p.timezone,
                          display_units=p.display_units)


def user_public(u: User) -> UserPublic:
    """HTTP view of a user (no hash)."""
    return UserPublic(id=u.id, practice_id=u.practice_id, email=u.email,
                      full_name=u.full_name, role=u.role, active=u.active)


def patient_public(p: Patient) -> PatientPublic:
    """HTTP view of a patient."""
    return PatientPublic(id=p.id, mrn=p.mrn, given_name=p.given_name,
                         family_name=p.family_name, birth_date=p.birth_date,
                         timezone=p.timezone)


def reading_public(r: Reading) -> ReadingPublic:
    """HTTP view of a reading."""
    return ReadingPublic(
        id=r.id, device_serial=r.device_serial, hub_id=r.hub_id, kind=r.kind.value,
        measured_at=r.measured_at, received_at=r.received_at, ingested_at=r.ingested_at,
        clock_offset_s=r.clock_offset_s, source=r.source.value,
        flags=sorted(f.value for f in r.flags),
        values={m.metric.value: m.value for m in r.measurements},
        units={m.metric.value: CANONICAL_UNIT[m.metric].value for m in r.measurements})


def quarantine_public(q: QuarantineItem, with_payload: bool = False) -> QuarantinePublic:
    """HTTP view of a quarantined item."""
    return QuarantinePublic(
        id=q.id, topic=q.topic, reason_code=q.reason_code, reason=q.reason,
        payload_size=q.payload_size, received_at=q.received_at, status=q.status,
        hub_id=q.hub_id, reading_id=q.reading_id, field=q.field, resolved_at=q.resolved_at,
        resolved_by=q.resolved_by, payload=q.payload if with_payload else None)


def override_public(o: CarePlanOverride, now: datetime) -> CarePlanOverridePublic:
    """HTTP view of a care-plan override."""
    assert o.id is not None
    return CarePlanOverridePublic(
        id=o.id, patient_id=o.patient_id, rule_id=o.rule_id, params=o.params,
        enabled=o.enabled, ordered_by=o.ordered_by, ordered_at=o.ordered_at,
        expires_at=o.expires_at, revoked_at=o.revoked_at, revoked_by=o.revoked_by,
        in_force=o.in_force(now))


def escalation_public(e: Escalation) -> EscalationPublic:
    """HTTP view of an escalation."""
    return EscalationPublic(
        id=e.id, patient_id=e.patient_id, rule_id=e.rule_id, rule_title=rule_title(e.rule_id),
        severity=e.severity.value, status=e.status.value, opened_at=e.opened_at,
        updated_at=e.updated_at, assignee=e.assignee, snoozed_until=e.snoozed_until,
        evidence=e.summary, disposition=e.disposition.value if e.disposition else None)


def encode_cursor(r: Reading) -> str:
    """Opaque cursor after reading ``r``."""
    raw = json.dumps([r.measured_at.isoformat(), r.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(measured_at, id) from a cursor; 422 when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, rid = json.loads(raw)
        when = datetime.fromisoformat(at)
        if when.tzinfo is None or not isinstance(rid, str):
            raise ValueError("bad cursor")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid cursor") from exc
    return when, rid


# -- auth ------------------------------------------------------------------------
auth_router = APIRouter(prefix="/auth", tags=["auth"])


def password_login(ctx: Any, username: str, password: str, ip: str) -> User:
    """Check a password login with the rate limit; return the user or raise."""
    now = ctx.clock()
    if has_nul(username) or has_nul(password):
        raise AuthError("wrong e-mail or password")
    username = username.strip().lower()[:254]
    if ctx.store.count_login_failures(username, ip, now - LOGIN_WINDOW) >= LOGIN_MAX_FAILURES:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            "too many failed logins; try again in a few minutes",
                            headers={"Retry-After": str(int(LOGIN_WINDOW.total_seconds()))})
    try:
        user: User | None = ctx.store.get_user_by_email(username)
    except NotFound:
        user = None
    ok = verify_password(user.password_hash if user else None, password)
    ok = ok and user is not None and user.active
    ctx.store.record_login_attempt(username, ip, now, ok)
    if not ok or user is None:
        raise AuthError("wrong e-mail or password")
    if user.role == Role.HUB:
        raise ForbiddenError("hub credentials are for MQTT only")
    return user


@auth_router.post("/token", response_model=Token)
def login_for_token(
    ctx: Ctx, request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()]
) -> Token:
    """OAuth2 password login: a bearer token signed by Vitalgate."""
    user = password_login(ctx, form.username, form.password, client_ip(request))
    token, ttl = ctx.tokens.issue(user)
    return Token(access_token=token, expires_in=ttl)


# -- practices -------------------------------------------------------------------
practices_router = APIRouter(prefix="/practices", tags=["practices"])


@practices_router.get("/{practice_id}", response_model=PracticePublic)
def get_practice(practice_id: PathId, ctx: Ctx, principal: ReaderUser) -> PracticePublic:
    """The caller's own practice (any other id is 404)."""
    if practice_id != principal.practice_id:
        raise NotFound(f"practice {practice_id}")
    return practice_public(ctx.store.get_practice(practice_id))


@practices_router.patch("/{practice_id}", response_model=PracticePublic)
def update_practice(practice_id: PathId, body: PracticeUpdate, ctx: Ctx,
                    principal: AdminUser) -> PracticePublic:
    """Change the caller's practice."""
    if practice_id != principal.practice_id:
        raise NotFound(f"practice {practice_id}")
    p = ctx.store.get_practice(practice_id)
    p = replace(p, **body.model_dump(exclude_unset=True, exclude_none=True))
    ctx.store.upsert_practice(p)
    return practice_public(p)


# -- users -----------------------------------------------------------------------
users_router = APIRouter(prefix="/users", tags=["users"])


@users_router.get("/me", response_model=UserPublic)
def me(ctx: Ctx, principal: CurrentUser) -> UserPublic:
    """The caller."""
    return user_public(ctx.store.get_user(principal.user_id, principal.practice_id))


@users_router.post("/me/password", status_code=204)
def change_own_password(body: PasswordChange, ctx: Ctx, request: Request,
                        principal: ReaderUser) -> Response:
    """Change the caller's password (the current one is checked, with the login rate limit)."""
    password_login(ctx, principal.email, body.current_password, client_ip(request))
    user = ctx.store.get_user(principal.user_id, principal.practice_id)
    ctx.store.update_user(replace(user, password_hash=hash_password(body.new_password)))
    return Response(status_code=204)


@users_router.get("", response_model=list[UserPublic])
def list_users(ctx: Ctx, principal: AdminUser) -> list[UserPublic]:
    """Users of the practice."""
    return [user_public(u) for u in ctx.store.list_users(principal.practice_id)]


@users_router.post("", response_model=UserPublic, status_code=201)
def create_user(body: UserCreate, ctx: Ctx, principal: AdminUser) -> UserPublic:
    """Create a user of the caller's practice.

    Without a password the user signs in only through the organisation's OIDC
    provider, which must then be configured (``oidc_client_id``).
    """
    if body.password is None and ctx.sso is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "a password is required unless single sign-on is configured")
    user = User(id=uuid.uuid4().hex, practice_id=principal.practice_id, email=body.email,
                full_name=body.full_name, role=body.role,
                password_hash=hash_password(body.password) if body.password else None,
                created_at=ctx.clock())
    ctx.store.create_user(user)
    return user_public(ctx.store.get_user(user.id))


@users_router.get("/{user_id}", response_model=UserPublic)
def get_user(user_id: PathId, ctx: Ctx, principal: AdminUser) -> UserPublic:
    """One user of the practice."""
    return user_public(ctx.store.get_user(user_id, principal.practice_id))


@users_router.patch("/{user_id}", response_model=UserPublic)
def update_user(user_id: PathId, body: UserUpdate, ctx: Ctx, principal: AdminUser) -> UserPublic:
    """Change a user's name, role, password or active flag."""
    u = ctx.store.get_user(user_id, principal.practice_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "password" in changes:
        changes["password_hash"] = hash_password(changes.pop("password"))
    if user_id == principal.user_id and (changes.get("active") is False
                                         or changes.get("role", Role.ADMIN) != Role.ADMIN):
        raise HTTPException(status.HTTP_409_CONFLICT, "admins cannot demote or disable "
                                                      "themselves")
    u = replace(u, **changes)
    ctx.store.update_user(u)
    return user_public(u)


# -- patients & enrolment ----------------------------------------------------------
patients_router = APIRouter(prefix="/patients", tags=["patients"])


@patients_router.get("", response_model=list[PatientPublic])
def list_patients(ctx: Ctx, principal: ReaderUser, audit: Audit) -> list[PatientPublic]:
    """Patients of the practice."""
    audit.record(principal, "list", "patient")
    return [patient_public(p) for p in ctx.store.list_patients(principal.practice_id)]


@patients_router.post("", response_model=PatientPublic, status_code=201)
def create_patient(body: PatientCreate, ctx: Ctx, principal: AdminUser,
                   audit: Audit) -> PatientPublic:
    """Register a patient."""
    pid = body.id or uuid.uuid4().hex
    try:
        ctx.store.get_patient(pid)
    except NotFound:
        pass
    else:
        raise Conflict("patient id in use")
    if any(p.mrn == body.mrn for p in ctx.store.list_patients(principal.practice_id)):
        raise Conflict("a patient with this MRN exists")
    p = Patient(id=pid, practice_id=principal.practice_id, mrn=body.mrn,
                given_name=body.given_name, family_name=body.family_name,
                birth_date=body.birth_date, timezone=body.timezone)
    ctx.store.upsert_patient(p)
    audit.record(principal, "create", "patient", pid, pid)
    return patient_public(p)


@patients_router.get("/{patient_id}", response_model=PatientPublic)
def get_patient(patient_id: PathId, ctx: Ctx, principal: ReaderUser,
                audit: Audit) -> PatientPublic:
    """One patient."""
    p = ctx.store.get_patient(patient_id, principal.practice_id)
    audit.record(principal, "read", "patient", patient_id, patient_id)
    return patient_public(p)


@patients_router.patch("/{patient_id}", response_model=PatientPublic)
def update_patient(patient_id: PathId, body: PatientUpdate, ctx: Ctx, principal: AdminUser,
                   audit: Audit) -> PatientPublic:
    """Change a patient's demographics."""
    p = ctx.store.get_patient(patient_id, principal.practice_id)
    changes = body.model_dump(exclude_unset=True)
    for key in ("mrn", "given_name", "family_name", "timezone"):
        if changes.get(key, "") is None:
            changes.pop(key)
    if "mrn" in changes and changes["mrn"] != p.mrn and any(
            o.mrn == changes["mrn"] for o in ctx.store.list_patients(principal.practice_id)):
        raise Conflict("a patient with this MRN exists")
    p = replace(p, **changes)
    ctx.store.upsert_patient(p)
    audit.record(principal, "update", "patient", patient_id, patient_id)
    return patient_public(p)


def _enrollment_public(e: Enrollment, p: Patient) -> EnrollmentPublic:
    return EnrollmentPublic(
        patient_id=e.patient_id, programs=sorted(e.programs), conditions=sorted(e.conditions),
        consent_date=e.consent_date, timezone=p.timezone,
        supervising_physician_id=e.supervising_physician_id,
        monitoring_start=e.monitoring_start, active=e.active)


@patients_router.get("/{patient_id}/enrollment", response_model=EnrollmentPublic)
def get_enrollment(patient_id: PathId, ctx: Ctx, principal: ReaderUser,
                   audit: Audit) -> EnrollmentPublic:
    """A patient's enrolment."""
    p = ctx.store.get_patient(patient_id, principal.practice_id)
    e = ctx.store.get_enrollment(patient_id)
    audit.record(principal, "read", "enrollment", patient_id, patient_id)
    return _enrollment_public(e, p)


@patients_router.put("/{patient_id}/enrollment", response_model=EnrollmentPublic)
def put_enrollment(patient_id: PathId, body: EnrollmentPut, ctx: Ctx, principal: AdminUser,
                   audit: Audit) -> EnrollmentPublic:
    """Enrol a patient (programs, conditions, consent, time zone, supervising physician)."""
    p = ctx.store.get_patient(patient_id, principal.practice_id)
    if body.supervising_physician_id is not None:
        doc = ctx.store.get_user(body.supervising_physician_id, principal.practice_id)
        if doc.role != Role.PHYSICIAN:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "supervising_physician_id is not a physician")
    if body.timezone and body.timezone != p.timezone:
        p = replace(p, timezone=body.timezone)
        ctx.store.upsert_patient(p)
    e = Enrollment(patient_id=patient_id, practice_id=principal.practice_id,
                   programs=frozenset(body.programs), conditions=frozenset(body.conditions),
                   consent_date=body.consent_date,
                   supervising_physician_id=body.supervising_physician_id,
                   monitoring_start=body.monitoring_start, active=body.active)
    ctx.store.upsert_enrollment(e)
    audit.record(principal, "update", "enrollment", patient_id, patient_id)
    return _enrollment_public(e, p)


# -- assignments -------------------------------------------------------------------
def _assignment_public(a: DeviceAssignment) -> AssignmentPublic:
    return AssignmentPublic(device_serial=a.device_serial, patient_id=a.patient_id,
                            hub_id=a.hub_id, start=a.start, end=a.end)


def _own_device(ctx: Any, serial: str, practice_id: str) -> Device:
    d: Device = ctx.store.get_device(serial)
    if d.practice_id != practice_id:
        raise NotFound(f"device {serial}")
    return d


def _own_hub(ctx: Any, hub_id: str, practice_id: str) -> Hub:
    h: Hub = ctx.store.get_hub(hub_id)
    if h.practice_id != practice_id:
        raise NotFound(f"hub {hub_id}")
    return h


@patients_router.get("/{patient_id}/assignments", response_model=list[AssignmentPublic])
def list_assignments(patient_id: PathId, ctx: Ctx, principal: ReaderUser,
                     audit: Audit) -> list[AssignmentPublic]:
    """Devices lent to a patient, oldest first."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    audit.record(principal, "list", "assignment", None, patient_id)
    return [_assignment_public(a)
            for a in ctx.store.patient_assignments(patient_id, principal.practice_id)]


@patients_router.post("/{patient_id}/assignments", response_model=AssignmentPublic,
                      status_code=201)
def create_assignment(patient_id: PathId, body: AssignmentCreate, ctx: Ctx,
                      principal: AdminUser, audit: Audit) -> AssignmentPublic:
    """Lend a device to the patient through a hub."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    _own_device(ctx, body.device_serial, principal.practice_id)
    _own_hub(ctx, body.hub_id, principal.practice_id)
    a = DeviceAssignment(device_serial=body.device_serial, patient_id=patient_id,
                         hub_id=body.hub_id, practice_id=principal.practice_id,
                         start=body.start or ctx.clock())
    ctx.store.assign_device(a)
    audit.record(principal, "create", "assignment", body.device_serial, patient_id)
    return _assignment_public(a)


@patients_router.post("/{patient_id}/assignments/{serial}/end", status_code=204)
def end_assignment(*, patient_id: PathId, serial: PathId, body: AssignmentEnd, ctx: Ctx,
                   principal: AdminUser, audit: Audit) -> Response:
    """Take a device back from the patient."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    ctx.store.end_assignment(serial, patient_id, principal.practice_id,
                             body.end or ctx.clock())
    audit.record(principal, "end", "assignment", serial, patient_id)
    return Response(status_code=204)


# -- readings & day counts --------------------------------------------------------
@patients_router.get("/{patient_id}/readings", response_model=ReadingPage)
def list_readings(
    *, patient_id: PathId, ctx: Ctx, principal: ReaderUser, audit: Audit,
    metric: Metric | None = None, start: Aware | None = None, end: Aware | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> ReadingPage:
    """Readings of a patient by measured time, oldest first, one page at a time."""
    for value in (start, end):
        if value is not None and value.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "start/end must carry a time zone")
    ctx.store.get_patient(patient_id, principal.practice_id)
    after = decode_cursor(cursor) if cursor else None
    rows = ctx.store.readings_page(patient_id, principal.practice_id, start=start, end=end,
                                   metric=metric, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    audit.record(principal, "list", "reading", None, patient_id)
    return ReadingPage(items=[reading_public(r) for r in rows],
                       next_cursor=encode_cursor(rows[-1]) if more else None)


@patients_router.get("/{patient_id}/day-counts")
def day_counts(*, patient_id: PathId, start: date, end: date, ctx: Ctx, principal: ReaderUser,
               audit: Audit) -> list[dict[str, Any]]:
    """Per local day and metric: device and manual reading counts (billing)."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    if end < start or (end - start) > timedelta(days=400):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "bad date range")
    audit.record(principal, "list", "day_count", None, patient_id)
    return [{"day": c.day.isoformat(), "metric": c.metric.value,
             "device_count": c.device_count, "manual_count": c.manual_count}
            for c in ctx.store.day_counts(patient_id, start, end)]


# -- care plan ----------------------------------------------------------------------
@patients_router.get("/{patient_id}/care-plan", response_model=list[CarePlanOverridePublic])
def list_care_plan(patient_id: PathId, ctx: Ctx, principal: ClinicalUser,
                   audit: Audit) -> list[CarePlanOverridePublic]:
    """The patient's rule overrides (history included; ``in_force`` marks current ones)."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    audit.record(principal, "list", "care_plan", None, patient_id)
    now = ctx.clock()
    return [override_public(o, now)
            for o in ctx.store.list_care_plan_overrides(patient_id, principal.practice_id)]


@patients_router.post("/{patient_id}/care-plan", response_model=CarePlanOverridePublic,
                      status_code=201)
def add_care_plan_override(patient_id: PathId, body: CarePlanOverrideCreate, ctx: Ctx,
                           principal: PhysicianUser, audit: Audit) -> CarePlanOverridePublic:
    """Order an override of one rule for this patient (physicians only)."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    now = ctx.clock()
    if body.expires_at is not None and body.expires_at <= now:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "expires_at must be in the future")
    o = CarePlanOverride(practice_id=principal.practice_id, patient_id=patient_id,
                         rule_id=body.rule_id, ordered_by=principal.user_id, ordered_at=now,
                         params=dict(body.params), enabled=body.enabled,
                         expires_at=body.expires_at)
    oid = ctx.store.add_care_plan_override(o)
    audit.record(principal, "create", "care_plan", str(oid), patient_id)
    return override_public(replace(o, id=oid), now)


@patients_router.post("/{patient_id}/care-plan/{override_id}/revoke",
                      response_model=CarePlanOverridePublic)
def revoke_care_plan_override(patient_id: PathId, override_id: PathInt, ctx: Ctx,
                              principal: PhysicianUser, audit: Audit) -> CarePlanOverridePublic:
    """End an override now (kept in the history)."""
    o = ctx.store.get_care_plan_override(override_id, principal.practice_id)
    if o.patient_id != patient_id:
        raise NotFound(f"care plan override {override_id}")
    now = ctx.clock()
    ctx.store.revoke_care_plan_override(override_id, principal.practice_id,
                                        principal.user_id, now)
    audit.record(principal, "revoke", "care_plan", str(override_id), patient_id)
    return override_public(ctx.store.get_care_plan_override(override_id,
                                                            principal.practice_id), now)


# -- medications ----------------------------------------------------------------------
def medication_public(m: Medication, now: datetime) -> MedicationPublic:
    """HTTP view of a recorded medication."""
    return MedicationPublic(id=m.id or 0, patient_id=m.patient_id, name=m.name, dose=m.dose,
                            frequency=m.frequency, started_on=m.started_on, note=m.note,
                            recorded_by=m.recorded_by, recorded_at=m.recorded_at,
                            stopped_at=m.stopped_at, stopped_by=m.stopped_by,
                            stop_reason=m.stop_reason, active=m.active_at(now))


def record_medication(ctx: Any, principal: Principal, audit: Any, patient_id: str, *,
                      name: str, dose: str = "", frequency: str = "",
                      started_on: date | None = None, note: str = "") -> Medication:
    """Store a medication for one of the practice's patients and audit it (API and web)."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    m = Medication(practice_id=principal.practice_id, patient_id=patient_id, name=name.strip(),
                   recorded_by=principal.user_id, recorded_at=ctx.clock(), dose=dose.strip(),
                   frequency=frequency.strip(), started_on=started_on, note=note)
    mid = ctx.store.add_medication(m)
    audit.record(principal, "create", "medication", str(mid), patient_id)
    return replace(m, id=mid)


def end_medication(ctx: Any, principal: Principal, audit: Any, patient_id: str, *,
                   medication_id: int, reason: str) -> Medication:
    """Mark one of the patient's medications stopped now and audit it (API and web)."""
    m = ctx.store.get_medication(medication_id, principal.practice_id)
    if m.patient_id != patient_id:
        raise NotFound(f"medication {medication_id}")
    ctx.store.stop_medication(medication_id, principal.practice_id, principal.user_id,
                              ctx.clock(), reason.strip())
    audit.record(principal, "update", "medication", str(medication_id), patient_id)
    stopped: Medication = ctx.store.get_medication(medication_id, principal.practice_id)
    return stopped


@patients_router.get("/{patient_id}/medications", response_model=list[MedicationPublic])
def list_medications(patient_id: PathId, ctx: Ctx, principal: ClinicalUser,
                     audit: Audit) -> list[MedicationPublic]:
    """The patient's medications as recorded (stopped ones included; ``active`` marks
    current ones)."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    audit.record(principal, "list", "medication", None, patient_id)
    now = ctx.clock()
    return [medication_public(m, now)
            for m in ctx.store.list_medications(patient_id, principal.practice_id)]


@patients_router.post("/{patient_id}/medications", response_model=MedicationPublic,
                      status_code=201)
def add_medication(patient_id: PathId, body: MedicationCreate, ctx: Ctx,
                   principal: CareTeamUser, audit: Audit) -> MedicationPublic:
    """Record a medication the patient takes (care team; e.g. reconciled on a call)."""
    m = record_medication(ctx, principal, audit, patient_id, name=body.name, dose=body.dose,
                          frequency=body.frequency, started_on=body.started_on,
                          note=body.note)
    return medication_public(m, m.recorded_at)


@patients_router.post("/{patient_id}/medications/{medication_id}/stop",
                      response_model=MedicationPublic)
def stop_medication(patient_id: PathId, medication_id: PathInt, body: MedicationStop, *,
                    ctx: Ctx, principal: CareTeamUser, audit: Audit) -> MedicationPublic:
    """Mark a medication stopped now (kept in the history)."""
    m = end_medication(ctx, principal, audit, patient_id, medication_id=medication_id,
                       reason=body.reason)
    return medication_public(m, m.stopped_at or ctx.clock())


# -- complex CCM care plans -----------------------------------------------------------
MonthPath = Annotated[str, Path(pattern=r"^\d{4}-\d{2}$")]


def _complex_months(ctx: Any, practice_id: str, patient_id: str) -> list[str]:
    months = ctx.store.complex_ccm_months(practice_id, [patient_id]).get(patient_id, [])
    return [f"{d:%Y-%m}" for d in months]


def billing_month(text: str) -> BillingMonth:
    """``YYYY-MM`` from a request, or 422 (years 1900-2199, as for instants)."""
    try:
        month = BillingMonth.parse(text)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if not 1900 <= month.year < 2200:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "month must be between 1900 and 2200")
    return month


@patients_router.get("/{patient_id}/ccm-complex-months", response_model=list[str])
def list_complex_ccm_months(patient_id: PathId, ctx: Ctx, principal: ReaderUser,
                            audit: Audit) -> list[str]:
    """Months (``YYYY-MM``) in which the patient's complex CCM care plan was established
    or substantially revised: what 99487/99489 need besides the minutes."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    audit.record(principal, "list", "care_plan", "ccm-complex", patient_id)
    return _complex_months(ctx, principal.practice_id, patient_id)


@patients_router.put("/{patient_id}/ccm-complex-months/{month}", response_model=list[str])
def set_complex_ccm_month(patient_id: PathId, month: MonthPath, ctx: Ctx,
                          principal: PhysicianUser, audit: Audit) -> list[str]:
    """Record that the complex CCM care plan was established or revised in ``month``
    (physicians; idempotent)."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    first = billing_month(month).first_day
    ctx.store.set_complex_ccm_month(principal.practice_id, patient_id, first,
                                    principal.user_id, ctx.clock())
    audit.record(principal, "update", "care_plan", f"ccm-complex:{month}", patient_id)
    return _complex_months(ctx, principal.practice_id, patient_id)


@patients_router.delete("/{patient_id}/ccm-complex-months/{month}", response_model=list[str])
def clear_complex_ccm_month(patient_id: PathId, month: MonthPath, ctx: Ctx,
                            principal: PhysicianUser, audit: Audit) -> list[str]:
    """Withdraw a month recorded in error (physicians)."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    if not ctx.store.clear_complex_ccm_month(principal.practice_id, patient_id,
                                             billing_month(month).first_day):
        raise NotFound(f"complex CCM month {month}")
    audit.record(principal, "delete", "care_plan", f"ccm-complex:{month}", patient_id)
    return _complex_months(ctx, principal.practice_id, patient_id)


# -- devices & hubs -------------------------------------------------------------------
devices_router = APIRouter(prefix="/devices", tags=["devices"])


def device_public(ctx: Any, d: Device, practice_id: str) -> DevicePublic:
    """A device with the patient it is lent to and its last reported health."""
    now = ctx.clock()
    active = ctx.store.active_assignment(d.serial, now)
    last = ctx.store.latest_device_readings(d.serial, practice_id)
    return DevicePublic(
        serial=d.serial, kind=d.kind.value, model=d.model, manufacturer=d.manufacturer,
        patient_id=active.patient_id if active else None,
        last_reading_at=last.measured_at if last else None,
        battery=last.value(Metric.BATTERY) if last else None,
        clock_offset_s=last.clock_offset_s if last else None)


@devices_router.get("", response_model=list[DevicePublic])
def list_devices(ctx: Ctx, principal: ReaderUser) -> list[DevicePublic]:
    """Devices of the practice with their health."""
    return [device_public(ctx, d, principal.practice_id)
            for d in ctx.store.list_devices(principal.practice_id)]


@devices_router.post("", response_model=DevicePublic, status_code=201)
def create_device(body: DeviceCreate, ctx: Ctx, principal: AdminUser) -> DevicePublic:
    """Register a device."""
    try:
        ctx.store.get_device(body.serial)
    except NotFound:
        pass
    else:
        raise Conflict("device serial already registered")
    d = Device(serial=body.serial, practice_id=principal.practice_id, kind=body.kind,
               model=body.model, manufacturer=body.manufacturer)
    ctx.store.upsert_device(d)
    return device_public(ctx, d, principal.practice_id)


@devices_router.get("/{serial}", response_model=DevicePublic)
def get_device(serial: PathId, ctx: Ctx, principal: ReaderUser) -> DevicePublic:
    """One device with its health."""
    return device_public(ctx, _own_device(ctx, serial, principal.practice_id),
                         principal.practice_id)


@devices_router.patch("/{serial}", response_model=DevicePublic)
def update_device(serial: PathId, body: DeviceUpdate, ctx: Ctx,
                  principal: AdminUser) -> DevicePublic:
    """Change a device's model or manufacturer."""
    d = _own_device(ctx, serial, principal.practice_id)
    d = replace(d, **body.model_dump(exclude_unset=True, exclude_none=True))
    ctx.store.upsert_device(d)
    return device_public(ctx, d, principal.practice_id)


hubs_router = APIRouter(prefix="/hubs", tags=["hubs"])


def _hub_public(h: Hub) -> HubPublic:
    return HubPublic(id=h.id, patient_id=h.patient_id, mqtt_username=h.mqtt_username)


def provision_credentials(ctx: Any, hub: Hub) -> HubProvisioned:
    """Generate MQTT credentials for ``hub``; the password is returned once, only its hash kept."""
    password = generate_secret()
    username = f"hub-{hub.id}"
    ctx.store.set_hub_credentials(HubCredentials(
        hub_id=hub.id, practice_id=hub.practice_id, mqtt_username=username,
        password_hash=hash_password(password), created_at=ctx.clock()))
    return HubProvisioned(id=hub.id, patient_id=hub.patient_id, mqtt_username=username,
                          mqtt_password=password)


@hubs_router.get("", response_model=list[HubPublic])
def list_hubs(ctx: Ctx, principal: AdminUser) -> list[HubPublic]:
    """Hubs of the practice."""
    return [_hub_public(h) for h in ctx.store.list_hubs(principal.practice_id)]


@hubs_router.post("", response_model=HubProvisioned, status_code=201)
def provision_hub(body: HubCreate, ctx: Ctx, principal: AdminUser) -> HubProvisioned:
    """Register a hub and generate its MQTT credentials (password shown once)."""
    try:
        ctx.store.get_hub(body.id)
    except NotFound:
        pass
    else:
        raise Conflict("hub id already registered")
    if body.patient_id is not None:
        ctx.store.get_patient(body.patient_id, principal.practice_id)
    hub = Hub(id=body.id, practice_id=principal.practice_id, patient_id=body.patient_id)
    ctx.store.upsert_hub(hub)
    return provision_credentials(ctx, hub)


@hubs_router.get("/{hub_id}", response_model=HubPublic)
def get_hub(hub_id: PathId, ctx: Ctx, principal: AdminUser) -> HubPublic:
    """One hub."""
    return _hub_public(_own_hub(ctx, hub_id, principal.practice_id))


@hubs_router.post("/{hub_id}/credentials", response_model=HubProvisioned)
def rotate_hub_credentials(hub_id: PathId, ctx: Ctx, principal: AdminUser) -> HubProvisioned:
    """Replace a hub's MQTT password (the new one is shown once)."""
    return provision_credentials(ctx, _own_hub(ctx, hub_id, principal.practice_id))


# -- quarantine -----------------------------------------------------------------------
quarantine_router = APIRouter(prefix="/quarantine", tags=["quarantine"])


def _own_quarantine(ctx: Any, item_id: int, practice_id: str) -> QuarantineItem:
    q: QuarantineItem = ctx.store.get_quarantine(item_id)
    if q.practice_id != practice_id:
        raise NotFound(f"quarantine item {item_id}")
    return q


@quarantine_router.get("", response_model=list[QuarantinePublic])
def list_quarantine(ctx: Ctx, principal: QuarantineUser,
                    status_: Annotated[str | None, Query(alias="status",
                                                         pattern="^(pending|released|"
                                                                 "discarded)$")] = "pending",
                    limit: Limit = 100) -> list[QuarantinePublic]:
    """Quarantined payloads of the practice, newest first."""
    return [quarantine_public(q) for q in ctx.store.list_quarantine(
        status=status_, practice_id=principal.practice_id, limit=limit)]


@quarantine_router.get("/{item_id}", response_model=QuarantinePublic)
def get_quarantine(item_id: PathInt, ctx: Ctx, principal: QuarantineUser,
                   audit: Audit) -> QuarantinePublic:
    """One quarantined payload, with the payload."""
    q = _own_quarantine(ctx, item_id, principal.practice_id)
    audit.record(principal, "read", "quarantine", str(item_id))
    return quarantine_public(q, with_payload=True)


@quarantine_router.post("/{item_id}/release", response_model=QuarantinePublic)
def release_quarantine(item_id: PathInt, ctx: Ctx, principal: QuarantineUser,
                       audit: Audit) -> QuarantinePublic:
    """Re-validate a pending item and store its readings (ingest's release), then mark it."""
    q = _own_quarantine(ctx, item_id, principal.practice_id)
    if q.status != "pending":
        raise NotFound(f"pending quarantine item {item_id}")
    if ctx.quarantine_release is None:
        raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED,
                            "re-ingest is not wired in this process; use "
                            "`vitalgate quarantine release`")
    try:
        result = ctx.quarantine_release(item_id, principal.user_id, ctx.clock())
    except Exception as exc:
        # ingest's ReviewError (api does not import ingest): the item cannot be released
        if type(exc).__name__ == "ReviewError":
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        raise
    if not getattr(result, "released", False):
        refused = getattr(result, "still_refused", None)
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"still refused: {getattr(refused, 'reason', refused)}")
    audit.record(principal, "release", "quarantine", str(item_id))
    return quarantine_public(ctx.store.get_quarantine(item_id))


@quarantine_router.post("/{item_id}/discard", response_model=QuarantinePublic)
def discard_quarantine(item_id: PathInt, ctx: Ctx, principal: QuarantineUser,
                       audit: Audit) -> QuarantinePublic:
    """Mark a pending item discarded."""
    _own_quarantine(ctx, item_id, principal.practice_id)
    ctx.store.resolve_quarantine(item_id, "discarded", principal.user_id, ctx.clock())
    audit.record(principal, "discard", "quarantine", str(item_id))
    return quarantine_public(ctx.store.get_quarantine(item_id))


# -- escalations ----------------------------------------------------------------------
escalations_router = APIRouter(prefix="/escalations", tags=["escalations"])


@escalations_router.get("", response_model=list[EscalationPublic])
def list_escalations(
    *, ctx: Ctx, principal: ClinicalUser, audit: Audit,
    status_: Annotated[list[Status] | None, Query(alias="status")] = None,
    severity: Severity | None = None,
    assignee: QueryId = None,
    condition: Condition | None = None,
    patient_id: QueryId = None,
    limit: Limit = 100, offset: Offset = 0,
) -> list[EscalationPublic]:
    """The queue: most severe first, then oldest; open and acknowledged by default."""
    patient_ids = (ctx.store.patients_with_condition(principal.practice_id, condition.value)
                   if condition is not None else None)
    rows = ctx.store.list_escalations(
        principal.practice_id, status=tuple(status_) if status_ else
        (Status.OPEN, Status.ACKNOWLEDGED), severity=severity, assignee=assignee,
        patient_id=patient_id, patient_ids=patient_ids, limit=limit, offset=offset)
    audit.record(principal, "list", "escalation", None, patient_id)
    return [escalation_public(e) for e in rows]


def escalation_detail(ctx: Any, e: Escalation) -> EscalationDetail:
    """An escalation with its events and evidence reading ids."""
    events = [EscalationEventPublic(at=ev.at, action=ev.action.value, actor=ev.actor,
                                    detail=", ".join(f"{k}: {v}" for k, v in ev.detail.items()))
              for ev in ctx.store.escalation_events(e.id)]
    base = escalation_public(e).model_dump()
    trace = ctx.notification_trace
    return EscalationDetail(**base, events=events, reading_ids=evidence_reading_ids(e),
                            thresholds=dict(e.thresholds),
                            notifications=[dict(n) for n in trace(e.id)] if trace else None)


@escalations_router.get("/{escalation_id}", response_model=EscalationDetail)
def get_escalation(escalation_id: PathId, ctx: Ctx, principal: ClinicalUser,
                   audit: Audit) -> EscalationDetail:
    """One escalation with its evidence and history."""
    e = ctx.store.get_escalation(escalation_id, principal.practice_id)
    audit.record(principal, "read", "escalation", escalation_id, e.patient_id)
    return escalation_detail(ctx, e)


def act(ctx: Any, principal: Principal, audit: Any, escalation_id: str, action: Action,
        **fields: Any) -> EscalationDetail:
    """Apply a person's action to an escalation of the caller's practice, audited."""
    e = ctx.store.transition(escalation_id, action, principal.user_id, ctx.clock(),
                             practice_id=principal.practice_id, **fields)
    audit.record(principal, action.value, "escalation", escalation_id, e.patient_id)
    return escalation_detail(ctx, e)


@escalations_router.post("/{escalation_id}/acknowledge", response_model=EscalationDetail)
def acknowledge(escalation_id: PathId, ctx: Ctx, principal: CareTeamUser,
                audit: Audit) -> EscalationDetail:
    """Acknowledge (stops re-paging)."""
    return act(ctx, principal, audit, escalation_id, Action.ACKNOWLEDGE)


@escalations_router.post("/{escalation_id}/assign", response_model=EscalationDetail)
def assign(escalation_id: PathId, body: AssignBody, ctx: Ctx, principal: CareTeamUser,
           audit: Audit) -> EscalationDetail:
    """Assign to a user of the practice."""
    ctx.store.get_escalation(escalation_id, principal.practice_id)
    ctx.store.get_user(body.assignee, principal.practice_id)
    return act(ctx, principal, audit, escalation_id, Action.ASSIGN, assignee=body.assignee)


@escalations_router.post("/{escalation_id}/snooze", response_model=EscalationDetail)
def snooze(escalation_id: PathId, body: SnoozeBody, ctx: Ctx, principal: CareTeamUser,
           audit: Audit) -> EscalationDetail:
    """Snooze until a required expiry in the future."""
    return act(ctx, principal, audit, escalation_id, Action.SNOOZE, until=body.until,
               comment=body.comment or None)


@escalations_router.post("/{escalation_id}/comment", response_model=EscalationDetail)
def comment(escalation_id: PathId, body: CommentBody, ctx: Ctx, principal: CareTeamUser,
            audit: Audit) -> EscalationDetail:
    """Add a comment."""
    return act(ctx, principal, audit, escalation_id, Action.COMMENT, comment=body.text)


@escalations_router.post("/{escalation_id}/resolve", response_model=EscalationDetail)
def resolve(escalation_id: PathId, body: ResolveBody, ctx: Ctx, principal: CareTeamUser,
            audit: Audit) -> EscalationDetail:
    """Resolve with a disposition."""
    try:
        disposition = Disposition(body.disposition)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"disposition must be one of {[d.value for d in Disposition]}"
                            ) from exc
    return act(ctx, principal, audit, escalation_id, Action.RESOLVE, disposition=disposition,
               comment=body.comment or None)


# -- time tracking and billing ----------------------------------------------------------
#: A time entry may start at most this far after the server's now (clock drift).
TIME_ENTRY_FUTURE_SLACK = timedelta(minutes=5)


@patients_router.get("/{patient_id}/time-entries", response_model=list[TimeEntryPublic])
def list_time_entries(
    *, patient_id: PathId, start: Aware, end: Aware, ctx: Ctx, principal: ReaderUser,
    audit: Audit,
) -> list[TimeEntryPublic]:
    """Time logged for a patient with entries starting in ``[start, end)``."""
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "start/end must carry a time zone and end must follow start")
    ctx.store.get_patient(patient_id, principal.practice_id)
    audit.record(principal, "list", "time_entry", None, patient_id)
    return [TimeEntryPublic(id=t.id, patient_id=t.patient_id, user_id=t.user_id,
                            program=t.program.value, activity=t.activity,
                            started_at=t.started_at, minutes=t.minutes,
                            interactive=t.interactive, performed_by=t.performed_by, note=t.note)
            for t in ctx.store.list_time_entries(principal.practice_id, start, end,
                                                 patient_id=patient_id)]


@patients_router.post("/{patient_id}/time-entries", response_model=TimeEntryPublic,
                      status_code=201)
def add_time_entry(patient_id: PathId, body: TimeEntryCreate, ctx: Ctx,
                   principal: CareTeamUser, audit: Audit) -> TimeEntryPublic:
    """Log minutes spent by the caller (physician time counts as the physician's own)."""
    ctx.store.get_patient(patient_id, principal.practice_id)
    now = ctx.clock()
    if body.started_at > now + TIME_ENTRY_FUTURE_SLACK:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "started_at is in the future")
    performed_by = "physician" if principal.role == Role.PHYSICIAN else "clinical_staff"
    t, warnings = ctx.store.add_time_entry(
        practice_id=principal.practice_id, patient_id=patient_id, user_id=principal.user_id,
        program=body.program, activity=body.activity, started_at=body.started_at,
        minutes=body.minutes, interactive=body.interactive, performed_by=performed_by,
        note=body.note, now=now)
    audit.record(principal, "create", "time_entry", str(t.id), patient_id)
    return TimeEntryPublic(id=t.id, patient_id=t.patient_id, user_id=t.user_id,
                           program=t.program.value, activity=t.activity,
                           started_at=t.started_at, minutes=t.minutes,
                           interactive=t.interactive, performed_by=t.performed_by,
                           note=t.note, warnings=warnings)


def load_callprep(ctx: Any, patient: Patient, days: int) -> CallPrep:
    """Build the call-prep page of ``patient`` for the last ``days`` days from the store."""
    return callprep_from_store(ctx.store, patient, days=days, now=ctx.clock())


@patients_router.get("/{patient_id}/call-prep")
def call_prep(patient_id: PathId, ctx: Ctx, principal: ClinicalUser, audit: Audit,
              days: Annotated[int, Query(ge=1, le=90)] = 30) -> dict[str, Any]:
    """CCM call preparation: trends, escalations, adherence, minutes, talking points."""
    patient = ctx.store.get_patient(patient_id, principal.practice_id)
    audit.record(principal, "read", "call_prep", patient_id, patient_id)
    return load_callprep(ctx, patient, days).to_dict()


@patients_router.get("/{patient_id}/fhir")
def fhir_export(patient_id: PathId, *, ctx: Ctx, principal: ReaderUser, audit: Audit,
                since: Aware | None = None,
                what: Annotated[str, Query(pattern="^(readings|escalations|medications)$")]
                = "readings",
                ) -> dict[str, Any]:
    """FHIR R4 transaction Bundle: readings as Observations, escalations as Flag + Task, or
    the medications as recorded as MedicationStatements.

    Conditional PUTs by identifier, so a re-export never duplicates in the EHR.
    """
    if since is not None and since.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since needs a zone offset")
    if what == "medications" and principal.role not in (Role.ADMIN, Role.PHYSICIAN,
                                                         Role.COORDINATOR):
        raise ForbiddenError("medications are for the clinical team")
    patient = ctx.store.get_patient(patient_id, principal.practice_id)
    audit.record(principal, "export", "fhir", what, patient_id)
    return patient_bundle(ctx.store, patient, what=what, since=since)


billing_router = APIRouter(prefix="/billing", tags=["billing"])


@billing_router.get("/{month}")
def month_billing(
    month: MonthPath, ctx: Ctx, principal: BillingUser,
    audit: Audit, patient_id: QueryId = None,
) -> list[dict[str, Any]]:
    """Month-end billing per enrolled patient: billable codes with the evidence behind them."""
    when = billing_month(month)
    if patient_id is not None:
        ctx.store.get_patient(patient_id, principal.practice_id)
    reports = practice_month(ctx.store, principal.practice_id, when,
                             patient_ids=None if patient_id is None else [patient_id])
    audit.record(principal, "list", "billing", month, patient_id)
    return [r.to_dict() for r in reports]


@billing_router.get("/{month}/summary")
def month_billing_summary(
    month: MonthPath, ctx: Ctx, principal: BillingUser,
    audit: Audit,
) -> dict[str, Any]:
    """Month-end totals and every enrolled patient's billable codes and units (no
    reasons: ``GET /billing/{month}?patient_id=`` explains one patient).  Computed for
    the whole practice at once; the same decisions as the full reports."""
    when = billing_month(month)
    codes = practice_month_codes(ctx.store, principal.practice_id, when)
    audit.record(principal, "list", "billing", f"{month}/summary")
    return {"month": month, "totals": codes.totals(),
            "patients": [{"patient_id": pid, "codes": units}
                         for pid, units in sorted(codes.by_patient().items())]}


# -- audit ------------------------------------------------------------------------------
audit_router = APIRouter(prefix="/audit", tags=["audit"])


@audit_router.get("", response_model=list[AuditPublic])
def list_audit(
    *, ctx: Ctx, principal: AdminUser,
    user_id: QueryId = None,
    patient_id: QueryId = None,
    resource_type: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_]+$")] = None,
    since: Aware | None = None, until: Aware | None = None,
    limit: Limit = 100, offset: Offset = 0,
) -> list[AuditPublic]:
    """The practice's audit log, newest first (read-only: no update or delete exists)."""
    for value in (since, until):
        if value is not None and value.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                "since/until must carry a time zone")
    rows = ctx.store.list_audit(principal.practice_id, user_id=user_id, patient_id=patient_id,
                                resource_type=resource_type, since=since, until=until,
                                limit=limit, offset=offset)
    return [AuditPublic(id=a.id or 0, at=a.at, user_id=a.user_id, action=a.action,
                        resource_type=a.resource_type, resource_id=a.resource_id,
                        patient_id=a.patient_id, client_ip=a.client_ip) for a in rows]


ROUTERS = (auth_router, practices_router, users_router, patients_router, devices_router,
           hubs_router, quarantine_router, escalations_router, billing_router, audit_router)
