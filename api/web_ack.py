"""One-click acknowledge from a page: ``/ack/{token}``.

The signed token in the page's link is the authority (HMAC with the secret
key, with an expiry; :mod:`rules.paging.tokens`).  ``GET`` only shows what
would be acknowledged -- mail scanners and link previews follow links -- and
the button ``POST``\\ s, which acknowledges through the same lifecycle as the
queue, stops the paging policy, and records it in the audit log.  The page
shows minimal PHI: severity, rule, patient initials and last 4 of the MRN.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.deps import Ctx, client_ip
from api.text import rule_title
from api.web import _render
from gateway.escalations import Action, Escalation, LifecycleError, Status
from gateway.store import NotFound
from gateway.store.api_store import AuditEntry
from rules.paging.tokens import AckTokenError, verify_ack_token

ack_router = APIRouter(include_in_schema=False)
ACK_ACTOR = "page-link"


def _load(ctx: Ctx, token: str) -> Escalation | str:
    """The escalation the token names, or why the token cannot be used."""
    try:
        return ctx.store.get_escalation(verify_ack_token(ctx.settings.secret_key, token,
                                                         ctx.clock()))
    except AckTokenError as exc:
        return str(exc)
    except NotFound:
        return "unknown escalation"


def _page(ctx: Ctx, request: Request, esc: Escalation, token: str, done: bool) -> Response:
    patient = ctx.store.get_patient(esc.patient_id)
    return _render(ctx, request, "ack.html", None, esc=esc, token=token, done=done,
                   who=f"{patient.initials} ({patient.mrn_last4})", title=rule_title(esc.rule_id))


@ack_router.get("/ack/{token}", response_class=HTMLResponse)
def ack_confirm(token: str, ctx: Ctx, request: Request) -> Response:
    """Show the escalation and an Acknowledge button (nothing changes on GET)."""
    esc = _load(ctx, token)
    if isinstance(esc, str):
        return _render(ctx, request, "ack.html", None, status_code=400, error=esc)
    return _page(ctx, request, esc, token, done=False)


@ack_router.post("/ack/{token}", response_class=HTMLResponse)
def ack_do(token: str, ctx: Ctx, request: Request) -> Response:
    """Acknowledge (idempotent: an escalation already acknowledged stays so)."""
    esc = _load(ctx, token)
    if isinstance(esc, str):
        return _render(ctx, request, "ack.html", None, status_code=400, error=esc)
    now = ctx.clock()
    if esc.status is Status.OPEN:
        try:
            esc = ctx.store.transition(esc.id, Action.ACKNOWLEDGE, ACK_ACTOR, now)
        except LifecycleError:
            esc = ctx.store.get_escalation(esc.id)
    ctx.store.append_audit(AuditEntry(
        at=now, practice_id=esc.practice_id, user_id=ACK_ACTOR, action="acknowledge",
        resource_type="escalation", resource_id=esc.id, patient_id=esc.patient_id,
        client_ip=client_ip(request)))
    return _page(ctx, request, esc, token, done=True)
