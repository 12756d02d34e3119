"""Server-rendered coordinator web pages (Jinja2 + one small JS file).

Auth is the same JWT as the API, carried in an HttpOnly, SameSite=Lax cookie.
Every form post carries a CSRF token: before login a double-submit cookie,
after login an HMAC of the session token's id (``jti``) with the secret key.
Pages work without JavaScript (plain forms, a refresh link); ``app.js`` adds
the 10-second queue refresh and one-click acknowledge without a reload.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.charts import Threshold, line_chart, rule_threshold_lines
from api.deps import (
    SESSION_COOKIE,
    AppContext,
    Auditor,
    Ctx,
    client_ip,
    principal_from_token,
    user_from_claims,
)
from api.routes import device_public, load_callprep, password_login, provision_credentials
from api.schemas import PathId, has_nul
from api.security import (
    AuthError,
    ForbiddenError,
    Principal,
    Role,
    csrf_ok,
    csrf_token,
    generate_secret,
)
from api.sso import CALLBACK_PATH, PENDING_COOKIE, SsoError
from api.text import age_words, evidence_reading_ids, rule_title
from gateway.escalations import Action, Disposition, Escalation, LifecycleError, Status
from gateway.model import (
    Condition,
    Device,
    DeviceAssignment,
    DeviceKind,
    Enrollment,
    Hub,
    Patient,
    Program,
)
from gateway.store import Conflict, NotFound
from gateway.store.api_store import User
from gateway.units import CANONICAL_UNIT, Metric, kg_to_lb, lb_to_kg

log = logging.getLogger(__name__)

LOGIN_CSRF_COOKIE = "vg_login_csrf"
QUEUE_REFRESH_S = 10
#: Rows on the queue page (most urgent first); the page says when there are more.
QUEUE_PAGE_ROWS = 200

web_router = APIRouter(include_in_schema=False)

#: Metrics charted per rule family, and on the patient page.
RULE_METRICS: dict[str, tuple[Metric, ...]] = {
    "chf": (Metric.WEIGHT,), "spo2": (Metric.SPO2,), "copd": (Metric.SPO2,),
    "bp": (Metric.SYSTOLIC, Metric.DIASTOLIC), "htn": (Metric.SYSTOLIC, Metric.DIASTOLIC),
    "pulse": (Metric.PULSE,), "dm": (Metric.GLUCOSE,), "device": (Metric.BATTERY,),
}
PATIENT_METRICS = (Metric.WEIGHT, Metric.SYSTOLIC, Metric.DIASTOLIC, Metric.PULSE,
                   Metric.SPO2, Metric.GLUCOSE)
METRIC_NAMES = {Metric.WEIGHT: "Weight", Metric.SYSTOLIC: "Systolic BP",
                Metric.DIASTOLIC: "Diastolic BP", Metric.PULSE: "Pulse",
                Metric.SPO2: "Oxygen saturation", Metric.GLUCOSE: "Glucose",
                Metric.BATTERY: "Battery", Metric.MEAN_ARTERIAL: "Mean arterial pressure",
                Metric.PERFUSION_INDEX: "Perfusion index"}


def web_principal(ctx: Ctx, request: Request) -> Principal:
    """The signed-in user from the session cookie (redirect to /login when absent)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise AuthError("not signed in")
    principal = principal_from_token(ctx, token)
    request.state.principal = principal
    return principal


WebUser = Annotated[Principal, Depends(web_principal)]


def _clinical(p: Principal) -> None:
    if p.role not in (Role.ADMIN, Role.PHYSICIAN, Role.COORDINATOR):
        raise ForbiddenError("this page is for the care team")


def _care_team(p: Principal) -> None:
    if p.role not in (Role.PHYSICIAN, Role.COORDINATOR):
        raise ForbiddenError("only physicians and coordinators act on escalations")


def _admin(p: Principal) -> None:
    if p.role != Role.ADMIN:
        raise ForbiddenError("admins only")


def _check_csrf(ctx: AppContext, p: Principal, presented: str | None) -> None:
    if not p.token_id or not csrf_ok(ctx.settings.secret_key, p.token_id, presented):
        raise ForbiddenError("CSRF token missing or wrong; reload the page")


def _render(ctx: AppContext, request: Request, name: str, principal: Principal | None,
            status_code: int = 200, **values: Any) -> HTMLResponse:
    csrf = (csrf_token(ctx.settings.secret_key, principal.token_id)
            if principal and principal.token_id else "")
    return ctx.templates.TemplateResponse(
        request, name, {"user": principal, "csrf": csrf, **values}, status_code=status_code)


def _secure_cookie(ctx: AppContext) -> bool:
    return urlparse(ctx.settings.public_url).scheme == "https"


def _safe_next(target: str | None, default: str = "/queue") -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirect).

    Browsers read ``/\\host`` as ``//host``, so backslashes are refused too, and
    control characters (header splitting) with them.
    """
    if (target and target.startswith("/") and not target.startswith("//")
            and "\\" not in target and target.isprintable()):
        return target
    return default


def _display(metric: Metric, value: float, units: str) -> tuple[float, str]:
    if metric == Metric.WEIGHT and units == "us":
        return kg_to_lb(value), "lb"
    return value, CANONICAL_UNIT[metric].value


# -- login ---------------------------------------------------------------------------
@web_router.get("/login", response_class=HTMLResponse)
def login_page(ctx: Ctx, request: Request, error: str | None = None,
               next_: Annotated[str | None, Query(alias="next", max_length=500)] = None
               ) -> Response:
    """The sign-in form (and the single sign-on button when an OIDC client is set)."""
    nonce = generate_secret(16)
    resp = _render(ctx, request, "login.html", None, login_csrf=nonce, error=error,
                   sso=ctx.sso is not None, next=_safe_next(next_))
    resp.set_cookie(LOGIN_CSRF_COOKIE, nonce, httponly=True, samesite="lax",
                    secure=_secure_cookie(ctx), max_age=1800, path="/login")
    return resp


@web_router.post("/login")
def login_submit(*, ctx: Ctx, request: Request, email: Annotated[str, Form(max_length=254)],
                 password: Annotated[str, Form(max_length=256)],
                 csrf: Annotated[str, Form(max_length=100)],
                 next_: Annotated[str | None, Form(alias="next")] = None) -> Response:
    """Check the password and set the session cookie."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not cookie or cookie != csrf:
        return RedirectResponse("/login?error=expired", status_code=303)
    try:
        user = password_login(ctx, email, password, client_ip(request))
    except HTTPException as exc:
        if exc.status_code == 429:
            return RedirectResponse("/login?error=locked", status_code=303)
        raise
    except (AuthError, ForbiddenError):
        return RedirectResponse("/login?error=wrong", status_code=303)
    resp = _signed_in(ctx, user, next_)
    resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return resp


def _signed_in(ctx: AppContext, user: User, next_: str | None) -> Response:
    """Redirect to ``next_`` with a new session cookie for ``user``."""
    token, ttl = ctx.tokens.issue(user)
    resp = RedirectResponse(_safe_next(next_), status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", max_age=ttl,
                    secure=_secure_cookie(ctx), path="/")
    return resp


@web_router.get("/login/oidc")
def sso_start(ctx: Ctx, next_: Annotated[str | None, Query(alias="next", max_length=500)] = None
              ) -> Response:
    """Single sign-on: off to the identity provider (see :mod:`api.sso`)."""
    if ctx.sso is None:
        raise HTTPException(404, "single sign-on is not configured")
    try:
        url, pending, max_age = ctx.sso.start(_safe_next(next_))
    except AuthError as exc:
        log.warning("single sign-on could not start: %s", exc)
        return RedirectResponse("/login?error=sso", status_code=303)
    resp = RedirectResponse(url, status_code=303)
    resp.set_cookie(PENDING_COOKIE, pending, httponly=True, samesite="lax", max_age=max_age,
                    secure=_secure_cookie(ctx), path="/login")
    return resp


@web_router.get(CALLBACK_PATH)
def sso_callback(ctx: Ctx, request: Request,
                 code: Annotated[str | None, Query(max_length=2048)] = None,
                 state: Annotated[str | None, Query(max_length=512)] = None,
                 error: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """Single sign-on: back from the identity provider with a code (or an error)."""
    if ctx.sso is None:
        raise HTTPException(404, "single sign-on is not configured")
    try:
        if error is not None:
            raise SsoError(f"identity provider answered {error!r}")
        claims, next_ = ctx.sso.finish(request.cookies.get(PENDING_COOKIE), state, code)
        user = user_from_claims(ctx, claims)
    except (SsoError, AuthError, ForbiddenError) as exc:
        log.warning("single sign-on refused: %s", exc)
        resp: Response = RedirectResponse("/login?error=sso", status_code=303)
    else:
        ctx.store.record_login_attempt(user.email, client_ip(request), ctx.clock(), True)
        log.info("single sign-on: user %s signed in", user.id)
        resp = _signed_in(ctx, user, next_)
    resp.delete_cookie(PENDING_COOKIE, path="/login")
    return resp


@web_router.post("/logout")
def logout(ctx: Ctx, principal: WebUser, csrf: Annotated[str, Form(max_length=100)]) -> Response:
    """Clear the session cookie."""
    _check_csrf(ctx, principal, csrf)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@web_router.get("/")
def home(principal: WebUser) -> Response:
    """Start page by role."""
    if principal.role in (Role.ADMIN,):
        return RedirectResponse("/admin/patients", status_code=303)
    if principal.role == Role.BILLER:
        return RedirectResponse("/admin/patients", status_code=303)
    return RedirectResponse("/queue", status_code=303)


# -- queue ------------------------------------------------------------------------------
def queue_rows(ctx: AppContext, practice_id: str) -> list[dict[str, Any]]:
    """Open and acknowledged escalations, most severe first, as template rows."""
    now = ctx.clock()
    patients = {p.id: p for p in ctx.store.list_patients(practice_id)}
    rows = []
    for e in ctx.store.list_escalations(practice_id, limit=QUEUE_PAGE_ROWS):
        p = patients.get(e.patient_id)
        rows.append({"e": e, "title": rule_title(e.rule_id), "age": age_words(e.opened_at, now),
                     "patient": p, "snoozed": e.snoozed(now)})
    return rows


@web_router.get("/queue", response_class=HTMLResponse)
def queue_page(ctx: Ctx, request: Request, principal: WebUser) -> Response:
    """The escalation queue."""
    _clinical(principal)
    Auditor(ctx, request).record(principal, "list", "escalation")
    rows = queue_rows(ctx, principal.practice_id)
    return _render(ctx, request, "queue.html", principal, rows=rows, refresh_s=QUEUE_REFRESH_S,
                   total=ctx.store.count_escalations(principal.practice_id),
                   can_act=principal.role in (Role.PHYSICIAN, Role.COORDINATOR))


@web_router.get("/queue/rows", response_class=HTMLResponse)
def queue_fragment(ctx: Ctx, request: Request, principal: WebUser) -> Response:
    """The queue's table body, for the auto-refresh script."""
    _clinical(principal)
    Auditor(ctx, request).record(principal, "list", "escalation")
    return _render(ctx, request, "queue_rows.html", principal,
                   rows=queue_rows(ctx, principal.practice_id),
                   can_act=principal.role in (Role.PHYSICIAN, Role.COORDINATOR))


# -- escalation page ----------------------------------------------------------------------
def _escalation_charts(ctx: AppContext, e: Escalation, units: str) -> list[Any]:
    """Charts of the readings from 7 days before to 1 day after the trigger, thresholds drawn."""
    start, end = e.trigger_at - timedelta(days=7), e.trigger_at + timedelta(days=1)
    metrics = RULE_METRICS.get(e.rule_id.split(".", 1)[0], ())
    readings = ctx.store.get_readings(e.patient_id, start=start, end=end,
                                      practice_id=e.practice_id, limit=2000)
    evidence = set(evidence_reading_ids(e))
    charts = []
    for metric in metrics:
        points = []
        baseline: float | None = None
        unit = _display(metric, 0.0, units)[1]
        for r in readings:
            v = r.value(metric)
            if v is None:
                continue
            points.append((r.measured_at, _display(metric, v, units)[0]))
            if r.id in evidence and baseline is None:
                baseline = v  # earliest evidence reading: the delta rules' reference
        lines = []
        for label, level, rule_unit in rule_threshold_lines(dict(e.thresholds), metric.value,
                                                            baseline):
            canonical = lb_to_kg(level) if rule_unit == "lb" else level
            if label.startswith("baseline"):
                if baseline is None:
                    continue
                canonical += baseline
            lines.append(Threshold(label + (f" {rule_unit}" if rule_unit else ""),
                                   _display(metric, canonical, units)[0]))
        charts.append(line_chart(points, start=start, end=end, title=METRIC_NAMES[metric],
                                 unit=unit, thresholds=lines, marker_at=e.trigger_at))
    return charts


@web_router.get("/escalations/{escalation_id}", response_class=HTMLResponse)
def escalation_page(escalation_id: PathId, ctx: Ctx, request: Request,
                    principal: WebUser) -> Response:
    """One escalation: chart around the trigger, evidence, notification trace, actions."""
    _clinical(principal)
    e = ctx.store.get_escalation(escalation_id, principal.practice_id)
    Auditor(ctx, request).record(principal, "read", "escalation", e.id, e.patient_id)
    patient = ctx.store.get_patient(e.patient_id, principal.practice_id)
    practice = ctx.store.get_practice(principal.practice_id)
    return _render(ctx, request, "escalation.html", principal, e=e, patient=patient,
                   title=rule_title(e.rule_id), age=age_words(e.opened_at, ctx.clock()),
                   charts=_escalation_charts(ctx, e, practice.display_units),
                   events=ctx.store.escalation_events(e.id), dispositions=list(Disposition),
                   users=ctx.store.list_users(principal.practice_id),
                   can_act=principal.role in (Role.PHYSICIAN, Role.COORDINATOR),
                   resolved=e.status == Status.RESOLVED,
                   trace=(list(ctx.notification_trace(e.id)) if ctx.notification_trace
                          else None))


_WEB_ACTIONS = {"acknowledge": Action.ACKNOWLEDGE, "assign": Action.ASSIGN,
                "snooze": Action.SNOOZE, "comment": Action.COMMENT, "resolve": Action.RESOLVE}


@web_router.post("/escalations/{escalation_id}/{action}")
def escalation_action(
    *, escalation_id: str, action: str, ctx: Ctx, request: Request, principal: WebUser,
    csrf: Annotated[str, Form(max_length=100)],
    assignee: Annotated[str | None, Form(max_length=64)] = None,
    snooze_hours: Annotated[float | None, Form(gt=0, le=24 * 14)] = None,
    comment: Annotated[str | None, Form(max_length=2000)] = None,
    disposition: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """A form post from the queue or escalation page; the script gets 204 instead of a redirect."""
    _care_team(principal)
    _check_csrf(ctx, principal, csrf)
    if has_nul([assignee, comment, disposition]):
        raise HTTPException(422, "text must not contain NUL characters")
    act = _WEB_ACTIONS.get(action)
    if act is None:
        raise NotFound(f"action {action}")
    now = ctx.clock()
    fields: dict[str, Any] = {}
    if act is Action.ASSIGN and assignee:
        ctx.store.get_user(assignee, principal.practice_id)
    if act is Action.SNOOZE:
        fields["until"] = now + timedelta(hours=snooze_hours) if snooze_hours else None
    if act is Action.RESOLVE:
        try:
            fields["disposition"] = Disposition(disposition or "")
        except ValueError as exc:
            raise HTTPException(422, "choose a disposition") from exc
    try:
        e = ctx.store.transition(escalation_id, act, principal.user_id, now,
                                 practice_id=principal.practice_id, assignee=assignee or None,
                                 comment=(comment or "").strip() or None, **fields)
    except LifecycleError as exc:
        raise HTTPException(409, str(exc)) from exc
    Auditor(ctx, request).record(principal, act.value, "escalation", escalation_id,
                                 e.patient_id)
    if request.headers.get("x-requested-with") == "fetch":
        return Response(status_code=204)
    back = "/queue" if action == "acknowledge" and "queue" in request.headers.get(
        "referer", "") else f"/escalations/{escalation_id}"
    return RedirectResponse(back, status_code=303)


# -- patient page ---------------------------------------------------------------------------
@web_router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(patient_id: PathId, ctx: Ctx, request: Request, principal: WebUser,
                 days: int = 30) -> Response:
    """Charts per metric over 30 or 90 days, devices and their health."""
    if days not in (30, 90):
        days = 30
    patient = ctx.store.get_patient(patient_id, principal.practice_id)
    Auditor(ctx, request).record(principal, "read", "patient", patient_id, patient_id)
    practice = ctx.store.get_practice(principal.practice_id)
    now = ctx.clock()
    start = now - timedelta(days=days)
    readings = ctx.store.get_readings(patient_id, start=start, end=now,
                                      practice_id=principal.practice_id, limit=20000)
    charts = []
    tz = ZoneInfo(patient.timezone)
    for metric in PATIENT_METRICS:
        points = []
        unit = CANONICAL_UNIT[metric].value
        if days > 30:
            # 90 days: one point a local day (the daily mean), computed by the database
            # (TimescaleDB's time_bucket where installed)
            for p in ctx.store.metric_series(patient_id, metric, start, now, patient.timezone):
                dv, unit = _display(metric, p.mean, practice.display_units)
                points.append((datetime.combine(p.day, time(12), tz), dv))
        else:
            for r in readings:
                v = r.value(metric)
                if v is not None:
                    dv, unit = _display(metric, v, practice.display_units)
                    points.append((r.measured_at, dv))
        if points:
            charts.append(line_chart(points, start=start, end=now, title=METRIC_NAMES[metric],
                                     unit=unit))
    serials = {a.device_serial for a in ctx.store.patient_assignments(
        patient_id, principal.practice_id) if a.end is None}
    devices = [device_public(ctx, ctx.store.get_device(s), principal.practice_id)
               for s in sorted(serials)]
    try:
        enrollment: Enrollment | None = ctx.store.get_enrollment(patient_id)
    except NotFound:
        enrollment = None
    escalations = (ctx.store.list_escalations(principal.practice_id, patient_id=patient_id)
                   if principal.role != Role.BILLER else [])
    return _render(ctx, request, "patient.html", principal, patient=patient, days=days,
                   charts=charts, devices=devices, enrollment=enrollment,
                   escalations=escalations, rule_title=rule_title, now=now)


@web_router.get("/patients/{patient_id}/call-prep", response_class=HTMLResponse)
def callprep_page(patient_id: PathId, *, ctx: Ctx, request: Request, principal: WebUser,
                  days: int = 30, logged: str | None = None) -> Response:
    """One page to read before calling the patient."""
    _clinical(principal)
    days = days if 1 <= days <= 90 else 30
    patient = ctx.store.get_patient(patient_id, principal.practice_id)
    Auditor(ctx, request).record(principal, "read", "call_prep", patient_id, patient_id)
    prep = load_callprep(ctx, patient, days)
    units = ctx.store.get_practice(principal.practice_id).display_units
    rows = []
    for m in prep.metrics:
        shown = [(t, _display(m.metric, v, units)[0]) for t, v in m.points]
        unit = _display(m.metric, m.last, units)[1]
        rows.append({"name": METRIC_NAMES[m.metric], "m": m, "unit": unit,
                     "fmt": lambda v, metric=m.metric: f"{_display(metric, v, units)[0]:.1f}",
                     "chart": line_chart(shown, start=prep.since, end=prep.now,
                                         title=METRIC_NAMES[m.metric], unit=unit)})
    medications = [m for m in ctx.store.list_medications(patient_id, principal.practice_id)
                   if m.active_at(prep.now)]
    return _render(ctx, request, "callprep.html", principal, patient=patient, prep=prep,
                   rows=rows, days=days, rule_title=rule_title, medications=medications,
                   logged=logged[:500] if logged else None)


# -- admin pages ------------------------------------------------------------------------------
@web_router.get("/admin/patients", response_class=HTMLResponse)
def admin_patients(ctx: Ctx, request: Request, principal: WebUser,
                   error: str | None = None) -> Response:
    """Patient list and the enrolment form."""
    if principal.role not in (Role.ADMIN, Role.BILLER, Role.PHYSICIAN, Role.COORDINATOR):
        raise ForbiddenError("no access")
    Auditor(ctx, request).record(principal, "list", "patient")
    physicians = [u for u in ctx.store.list_users(principal.practice_id)
                  if u.role == Role.PHYSICIAN and u.active]
    return _render(ctx, request, "admin_patients.html", principal,
                   patients=ctx.store.list_patients(principal.practice_id),
                   physicians=physicians, programs=list(Program), conditions=list(Condition),
                   is_admin=principal.role == Role.ADMIN, error=error)


@web_router.post("/admin/patients")
def admin_enrol(
    *, ctx: Ctx, request: Request, principal: WebUser,
    csrf: Annotated[str, Form(max_length=100)],
    mrn: Annotated[str, Form(min_length=1, max_length=64)],
    given_name: Annotated[str, Form(min_length=1, max_length=100)],
    family_name: Annotated[str, Form(min_length=1, max_length=100)],
    timezone: Annotated[str, Form(max_length=64)],
    birth_date: Annotated[str | None, Form(max_length=10)] = None,
    consent_date: Annotated[str | None, Form(max_length=10)] = None,
    programs: Annotated[list[str] | None, Form()] = None,
    conditions: Annotated[list[str] | None, Form()] = None,
    supervising_physician_id: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """Register and enrol a patient from the admin form."""
    import uuid
    from datetime import date
    from zoneinfo import ZoneInfo

    _admin(principal)
    _check_csrf(ctx, principal, csrf)
    if has_nul([mrn, given_name, family_name, timezone, supervising_physician_id]):
        return RedirectResponse("/admin/patients?error=invalid", status_code=303)
    try:
        ZoneInfo(timezone)
        progs = frozenset(Program(p) for p in programs or [])
        conds = frozenset(Condition(c) for c in conditions or [])
        bd = date.fromisoformat(birth_date) if birth_date else None
        cd = date.fromisoformat(consent_date) if consent_date else None
    except (ValueError, KeyError):
        return RedirectResponse("/admin/patients?error=invalid", status_code=303)
    if any(p.mrn == mrn for p in ctx.store.list_patients(principal.practice_id)):
        return RedirectResponse("/admin/patients?error=mrn", status_code=303)
    doc = None
    if supervising_physician_id:
        doc = ctx.store.get_user(supervising_physician_id, principal.practice_id).id
    pid = uuid.uuid4().hex
    ctx.store.upsert_patient(Patient(id=pid, practice_id=principal.practice_id, mrn=mrn,
                                     given_name=given_name, family_name=family_name,
                                     birth_date=bd, timezone=timezone))
    ctx.store.upsert_enrollment(Enrollment(patient_id=pid, practice_id=principal.practice_id,
                                           programs=progs, conditions=conds, consent_date=cd,
                                           supervising_physician_id=doc))
    Auditor(ctx, request).record(principal, "create", "patient", pid, pid)
    return RedirectResponse(f"/patients/{pid}", status_code=303)


@web_router.get("/admin/devices", response_class=HTMLResponse)
def admin_devices(ctx: Ctx, request: Request, principal: WebUser,
                  error: str | None = None) -> Response:
    """Devices with their health, and the registration form."""
    _admin(principal)
    devices = [device_public(ctx, d, principal.practice_id)
               for d in ctx.store.list_devices(principal.practice_id)]
    return _render(ctx, request, "admin_devices.html", principal, devices=devices,
                   kinds=list(DeviceKind), hubs=ctx.store.list_hubs(principal.practice_id),
                   patients=ctx.store.list_patients(principal.practice_id),
                   error=error, now=ctx.clock())


@web_router.post("/admin/assignments")
def admin_assign(
    *, ctx: Ctx, request: Request, principal: WebUser,
    csrf: Annotated[str, Form(max_length=100)],
    device_serial: Annotated[str, Form(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
    patient_id: Annotated[str, Form(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
    hub_id: Annotated[str, Form(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
) -> Response:
    """Lend a device to a patient through a hub, from now."""
    _admin(principal)
    _check_csrf(ctx, principal, csrf)
    ctx.store.get_patient(patient_id, principal.practice_id)
    if ctx.store.get_device(device_serial).practice_id != principal.practice_id:
        raise NotFound(f"device {device_serial}")
    if ctx.store.get_hub(hub_id).practice_id != principal.practice_id:
        raise NotFound(f"hub {hub_id}")
    ctx.store.assign_device(DeviceAssignment(device_serial=device_serial, patient_id=patient_id,
                                             hub_id=hub_id, practice_id=principal.practice_id,
                                             start=ctx.clock()))
    Auditor(ctx, request).record(principal, "create", "assignment", device_serial, patient_id)
    return RedirectResponse("/admin/devices", status_code=303)


@web_router.post("/admin/hubs", response_class=HTMLResponse)
def admin_provision_hub(
    *, ctx: Ctx, request: Request, principal: WebUser,
    csrf: Annotated[str, Form(max_length=100)],
    hub_id: Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
    patient_id: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """Register a hub and show its MQTT password once."""
    _admin(principal)
    _check_csrf(ctx, principal, csrf)
    try:
        ctx.store.get_hub(hub_id)
    except NotFound:
        pass
    else:
        raise Conflict("hub id already registered")
    if patient_id:
        ctx.store.get_patient(patient_id, principal.practice_id)
    hub = Hub(id=hub_id, practice_id=principal.practice_id, patient_id=patient_id or None)
    ctx.store.upsert_hub(hub)
    creds = provision_credentials(ctx, hub)
    return _render(ctx, request, "hub_provisioned.html", principal, creds=creds)


@web_router.post("/admin/devices")
def admin_add_device(
    *, ctx: Ctx, principal: WebUser, csrf: Annotated[str, Form(max_length=100)],
    serial: Annotated[str, Form(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")],
    kind: Annotated[str, Form(max_length=32)],
    model: Annotated[str, Form(max_length=100)] = "",
    manufacturer: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Register a device from the admin form."""
    _admin(principal)
    _check_csrf(ctx, principal, csrf)
    if has_nul([model, manufacturer]):
        return RedirectResponse("/admin/devices?error=invalid", status_code=303)
    try:
        dk = DeviceKind(kind)
    except ValueError:
        return RedirectResponse("/admin/devices?error=invalid", status_code=303)
    try:
        ctx.store.get_device(serial)
    except NotFound:
        ctx.store.upsert_device(Device(serial=serial, practice_id=principal.practice_id,
                                       kind=dk, model=model, manufacturer=manufacturer))
        return RedirectResponse("/admin/devices", status_code=303)
    raise Conflict("device serial already registered")


def fmt_dt(value: datetime | None) -> str:
    """Short UTC timestamp for tables."""
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")
