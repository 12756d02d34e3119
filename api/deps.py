"""Request context and FastAPI dependencies (``Annotated[..., Depends()]`` aliases).

Nothing here is global: :func:`api.app.create_app` builds one
:class:`AppContext` and puts it on ``app.state``; dependencies read it from
the request.  Role aliases (``AdminUser``, ``ClinicalUser``...) are the
per-endpoint role checks; tenant scoping is each handler's job and always
uses ``principal.practice_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from api.security import AuthError, ForbiddenError, Principal, Role, TokenService
from gateway.settings import Settings
from gateway.store import NotFound
from gateway.store.api_store import AuditEntry, User

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

    from api.sso import OidcWebLogin
    from gateway.store.sql import SqlStore

log = logging.getLogger(__name__)

SESSION_COOKIE = "vg_session"


@dataclass
class AppContext:
    """Everything a request needs, built once per app by the factory."""

    settings: Settings
    store: SqlStore
    clock: Callable[[], datetime]
    tokens: TokenService
    templates: Jinja2Templates
    metrics_render: Callable[[], tuple[bytes, str]]
    #: (escalation id) -> rows like {"at", "channel", "recipient", "status"}; None until the
    #: notifier provides one (the page then says the trace is not available).
    notification_trace: Callable[[str], Sequence[Mapping[str, Any]]] | None = None
    #: (item id, by, now) -> result with ``released``/``stored``/``duplicates``/
    #: ``still_refused``: re-validates and stores a quarantined payload (ingest's
    #: ``release``).  None: releasing over HTTP answers 501 (nothing is marked
    #: released without its readings being stored).
    quarantine_release: Callable[[int, str, datetime], Any] | None = None
    #: Web sign-in with the OIDC issuer (None: passwords only).
    sso: OidcWebLogin | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def get_ctx(request: Request) -> AppContext:
    """The app's context."""
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def client_ip(request: Request) -> str:
    """The peer address (proxies are not trusted for this)."""
    return request.client.host if request.client else "unknown"


def principal_from_token(ctx: AppContext, token: str) -> Principal:
    """Verify ``token`` and resolve the user it names (AuthError/ForbiddenError)."""
    return ctx.tokens.resolve(ctx.tokens.decode(token), *_user_lookups(ctx))


def user_from_claims(ctx: AppContext, claims: dict[str, Any]) -> User:
    """The active, non-hub user that verified ``claims`` name (AuthError/ForbiddenError)."""
    return ctx.tokens.resolve_user(claims, *_user_lookups(ctx))


def _user_lookups(ctx: AppContext) -> tuple[Callable[[str], User], Callable[[str], User]]:
    """User by id and by e-mail from the store; an unknown one is :class:`AuthError`."""

    def by_id(user_id: str) -> User:
        try:
            return ctx.store.get_user(user_id)
        except NotFound as exc:
            raise AuthError("unknown user") from exc

    def by_email(email: str) -> User:
        try:
            return ctx.store.get_user_by_email(email)
        except NotFound as exc:
            raise AuthError("unknown user") from exc

    return by_id, by_email


def current_principal(
    ctx: Ctx, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal:
    """The caller of a JSON API endpoint, from the bearer token."""
    if not token:
        raise AuthError("missing bearer token")
    return principal_from_token(ctx, token)


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only ``roles`` through (403 otherwise)."""
    allowed = frozenset(roles)

    def check(principal: CurrentUser) -> Principal:
        if principal.role not in allowed:
            raise ForbiddenError(f"role {principal.role} may not do this")
        return principal

    return check


#: Registry changes (users, patients, enrolment, devices, hubs): admins only.
AdminUser = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
#: Read patient records and readings: every human role.
ReaderUser = Annotated[Principal, Depends(
    require_roles(Role.ADMIN, Role.PHYSICIAN, Role.COORDINATOR, Role.BILLER))]
#: Clinical work (escalations, care plans read, quarantine): no billers.
ClinicalUser = Annotated[Principal, Depends(
    require_roles(Role.ADMIN, Role.PHYSICIAN, Role.COORDINATOR))]
#: Work the escalation queue (acknowledge, assign, snooze, comment, resolve).
CareTeamUser = Annotated[Principal, Depends(require_roles(Role.PHYSICIAN, Role.COORDINATOR))]
#: Review quarantined payloads: admins and coordinators.
QuarantineUser = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.COORDINATOR))]
#: Month-end billing: admins and billers.
BillingUser = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.BILLER))]
#: Order care-plan overrides: physicians only.
PhysicianUser = Annotated[Principal, Depends(require_roles(Role.PHYSICIAN))]


class Auditor:
    """Appends audit entries for one request (ids only, never PHI)."""

    def __init__(self, ctx: AppContext, request: Request) -> None:
        self._ctx = ctx
        self._ip = client_ip(request)

    def record(self, principal: Principal, action: str, resource_type: str,
               resource_id: str | None = None, patient_id: str | None = None) -> None:
        """Append one entry for ``principal``."""
        self._ctx.store.append_audit(AuditEntry(
            at=self._ctx.clock(), practice_id=principal.practice_id,
            user_id=principal.user_id, action=action, resource_type=resource_type,
            resource_id=resource_id, patient_id=patient_id, client_ip=self._ip))
        log.debug("audit %s %s %s by %s", action, resource_type, resource_id,
                  principal.user_id)


def get_auditor(ctx: Ctx, request: Request) -> Auditor:
    """The request's auditor."""
    return Auditor(ctx, request)


Audit = Annotated[Auditor, Depends(get_auditor)]
