"""Biller and call-prep forms: month-end report, CSV export, the call timer, medications.

The month-end page's totals and codes come from
:func:`gateway.billing.from_store.practice_month_codes` (the whole practice at once); its
reasons, and the CSV, from :func:`gateway.billing.from_store.practice_month`, the same pure
evaluation as ``vitalgate billing evaluate`` and ``GET /api/v1/billing/{month}`` (the two
paths are tested to bill the same codes).  The timer is a form on the call-prep page: the browser
starts and stops it (``app.js``), the server stores the minutes as a time entry,
and a warning comes back when the minutes overlap another program's entry.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.deps import Auditor, Ctx
from api.routes import billing_month, end_medication, record_medication
from api.schemas import PathId
from api.security import ForbiddenError, Principal, Role
from api.web import WebUser, _care_team, _check_csrf, _render
from gateway.billing.from_store import practice_month, practice_month_codes
from gateway.billing.model import MonthReport
from gateway.billing.rules import BillingMonth
from gateway.model import Program

billing_web_router = APIRouter(include_in_schema=False)

CSV_COLUMNS = ("patient_id", "kind", "code", "units", "period", "reason")


def _biller(p: Principal) -> None:
    if p.role not in (Role.ADMIN, Role.BILLER):
        raise ForbiddenError("billing is for billers and admins")


def _month(text: str | None, now: datetime) -> BillingMonth:
    if not text:
        first = now.date().replace(day=1) - timedelta(days=1)  # default: last month
        return BillingMonth(first.year, first.month)
    return billing_month(text)


def report_rows(reports: list[MonthReport]) -> list[dict[str, str]]:
    """One CSV row per billable code and per code considered but not billable."""
    rows = []
    for r in reports:
        for c in r.codes:
            rows.append({"patient_id": r.patient_id, "kind": "billable", "code": c.code,
                         "units": str(c.units), "period": c.period.label if c.period else "",
                         "reason": c.reason})
        for nb in r.not_billable:
            rows.append({"patient_id": r.patient_id, "kind": "not_billable", "code": nb.code,
                         "units": "0", "period": "", "reason": nb.reason})
    return rows


#: Patients per page of the month-end report (their reasons are built per page).
PAGE_SIZE = 100


@billing_web_router.get("/billing", response_class=HTMLResponse)
def billing_page(ctx: Ctx, request: Request, principal: WebUser,
                 month: str | None = None, page: int = 1) -> Response:
    """Month-end report: totals and every patient's codes for the whole practice (one
    vectorised pass), and, for the patients on this page, why other codes are not
    billable (the per-patient reference)."""
    _biller(principal)
    when = _month(month, ctx.clock())
    codes = practice_month_codes(ctx.store, principal.practice_id, when)
    ids = sorted(codes.patient_ids)
    pages = max(1, -(-len(ids) // PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = ids[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    reports = practice_month(ctx.store, principal.practice_id, when, patient_ids=shown)
    Auditor(ctx, request).record(principal, "list", "billing", str(when))
    patients = {p.id: p for p in ctx.store.list_patients(principal.practice_id, shown)}
    return _render(ctx, request, "billing.html", principal, month=str(when),
                   reports=[r.to_dict() for r in reports], patients=patients,
                   totals=sorted(codes.totals().items()), billing=codes.patients_billing(),
                   enrolled=len(ids), page=page, pages=pages)


@billing_web_router.get("/billing/{month}.csv")
def billing_csv(month: str, ctx: Ctx, request: Request, principal: WebUser) -> Response:
    """The month-end report as CSV (one row per code considered)."""
    _biller(principal)
    when = _month(month, ctx.clock())
    reports = practice_month(ctx.store, principal.practice_id, when)
    Auditor(ctx, request).record(principal, "export", "billing", str(when))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(report_rows(reports))
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="vitalgate-billing-{when}.csv"'})


@billing_web_router.post("/patients/{patient_id}/time")
def log_time(patient_id: PathId, *, ctx: Ctx, request: Request, principal: WebUser,
             program: Annotated[str, Form()], minutes: Annotated[int, Form(ge=1, le=480)],
             activity: Annotated[str, Form(max_length=100)] = "call",
             started_at: Annotated[str, Form(max_length=40)] = "",
             interactive: Annotated[str | None, Form(max_length=8)] = None,
             note: Annotated[str, Form(max_length=2000)] = "",
             csrf: Annotated[str | None, Form(max_length=200)] = None) -> Response:
    """Store the timer's minutes as a time entry; warnings come back on the page."""
    _care_team(principal)
    _check_csrf(ctx, principal, csrf)
    ctx.store.get_patient(patient_id, principal.practice_id)
    now = ctx.clock()
    try:
        prog = Program(program)
        start = datetime.fromisoformat(started_at) if started_at else now - timedelta(
            minutes=minutes)
    except ValueError as exc:
        raise HTTPException(422, f"bad time entry: {exc}") from exc
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if start > now + timedelta(minutes=5):
        raise HTTPException(422, "started_at is in the future")
    entry, warnings = ctx.store.add_time_entry(
        practice_id=principal.practice_id, patient_id=patient_id, user_id=principal.user_id,
        program=prog, activity=activity or "call", started_at=start, minutes=minutes,
        interactive=interactive is not None,
        performed_by="physician" if principal.role == Role.PHYSICIAN else "clinical_staff",
        note=note, now=now)
    Auditor(ctx, request).record(principal, "create", "time_entry", str(entry.id), patient_id)
    msg = f"Logged {minutes} min of {prog.value}."
    if warnings:
        msg += " Warning: " + "; ".join(warnings)
    return RedirectResponse(f"/patients/{patient_id}/call-prep?logged={quote(msg)}",
                            status_code=303)


@billing_web_router.post("/patients/{patient_id}/medications")
def record_medication_form(patient_id: PathId, *, ctx: Ctx, request: Request, principal: WebUser,
                      name: Annotated[str, Form(min_length=1, max_length=200)],
                      dose: Annotated[str, Form(max_length=100)] = "",
                      frequency: Annotated[str, Form(max_length=100)] = "",
                      csrf: Annotated[str | None, Form(max_length=200)] = None) -> Response:
    """Record a medication from the call-prep page (e.g. reconciled on the call)."""
    _care_team(principal)
    _check_csrf(ctx, principal, csrf)
    record_medication(ctx, principal, Auditor(ctx, request), patient_id, name=name,
                      dose=dose, frequency=frequency)
    return RedirectResponse(f"/patients/{patient_id}/call-prep?logged="
                            f"{quote('Medication recorded.')}", status_code=303)


@billing_web_router.post("/patients/{patient_id}/medications/{medication_id}/stop")
def stop_medication_form(patient_id: PathId, medication_id: int, *, ctx: Ctx, request: Request,
                         principal: WebUser,
                         reason: Annotated[str, Form(max_length=500)] = "",
                         csrf: Annotated[str | None, Form(max_length=200)] = None) -> Response:
    """Mark a medication stopped from the call-prep page."""
    _care_team(principal)
    _check_csrf(ctx, principal, csrf)
    end_medication(ctx, principal, Auditor(ctx, request), patient_id,
                   medication_id=medication_id, reason=reason)
    return RedirectResponse(f"/patients/{patient_id}/call-prep?logged="
                            f"{quote('Medication marked stopped.')}", status_code=303)
