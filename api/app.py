"""The FastAPI application factory.

``create_app(settings, store)`` builds everything a request needs -- token
service, templates, the metrics renderer -- and keeps it on ``app.state``;
nothing is created at import time, so tests build as many apps as they like,
each with its own store and clock.  The caller owns the store (opens,
migrates and closes it); ``vitalgate api`` (:mod:`api.cli`) is the wiring for
a real process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.deps import AppContext
from api.routes import ROUTERS
from api.security import AuthError, ForbiddenError, JwksClient, TokenService
from api.sso import CALLBACK_PATH, OidcWebLogin
from api.web import fmt_dt, web_router
from api.web_ack import ack_router
from api.web_billing import billing_web_router
from gateway.escalations import LifecycleError
from gateway.settings import DEV_SECRET, Settings
from gateway.store import Conflict, NotFound, Store, StoreError
from gateway.store.api_store import ApiStoreMixin

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
_HERE = Path(__file__).parent

#: Sent with every response.  Pages use no inline script and no third-party
#: origin, so the policy can be strict; inline SVG needs no exception.
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; "
                                "style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
                                "form-action 'self'; base-uri 'none'"),
    "Cache-Control": "no-store",
}


def _route_template(request: Request) -> str:
    """The request path with path parameters as ``{name}``: a metrics label without ids."""
    if request.scope.get("route") is None:
        return "unmatched"
    names = {str(v): k for k, v in request.path_params.items()}
    return "/".join("{" + names[seg] + "}" if seg in names else seg
                    for seg in request.url.path.split("/"))


def default_metrics_render() -> tuple[bytes, str]:
    """Prometheus text of the process's default registry."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(), CONTENT_TYPE_LATEST


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    store: Store,
    *,
    clock: Callable[[], datetime] | None = None,
    metrics_render: Callable[[], tuple[bytes, str] | bytes | str] | None = None,
    jwks_client: JwksClient | None = None,
    notification_trace: Callable[[str], Sequence[Mapping[str, Any]]] | None = None,
    quarantine_release: Callable[[int, str, datetime], Any] | None = None,
) -> FastAPI:
    """Build the Vitalgate HTTP app (JSON API under ``/api/v1``, web pages, probes).

    ``clock`` returns aware UTC now (tests move it); ``metrics_render`` returns
    Prometheus text (or ``(body, content_type)``); ``jwks_client`` replaces
    OIDC discovery (tests); ``notification_trace(escalation_id)`` returns the
    pages sent for an escalation (rows with at/channel/recipient/status) for the
    escalation page and detail; ``quarantine_release(item_id, by, now)``
    re-validates and stores a quarantined payload (ingest's ``release``).
    Refuses the development secret outside dev mode.
    """
    if settings.mode != "dev" and (settings.secret_key == DEV_SECRET
                                   or len(settings.secret_key) < 32):
        raise ValueError("refusing to start: secret_key is the development default or too "
                         "short outside dev mode")
    if not isinstance(store, ApiStoreMixin):
        raise TypeError("the API needs a SQL store (SQLite or PostgreSQL)")
    clock = clock or _utcnow

    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    # Per-app registry (never the process-global one), appended to the injected text.
    registry = CollectorRegistry(auto_describe=True)
    http_requests = Counter("vitalgate_http_requests", "HTTP requests answered",
                            ["method", "route", "status"], registry=registry)
    http_latency = Histogram("vitalgate_http_request_seconds", "HTTP request latency",
                             ["route"], registry=registry,
                             buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

    def render_metrics() -> tuple[bytes, str]:
        if metrics_render is None:
            body, content_type = default_metrics_render()
        else:
            out = metrics_render()
            if isinstance(out, tuple):
                body, content_type = out
            else:
                body = out.encode() if isinstance(out, str) else out
                content_type = "text/plain; version=0.0.4; charset=utf-8"
        if body and not body.endswith(b"\n"):
            body += b"\n"
        return body + generate_latest(registry), content_type

    templates = Jinja2Templates(directory=str(_HERE / "templates"))
    tokens = TokenService(settings.secret_key, clock, oidc_issuer=settings.oidc_issuer,
                          oidc_audience=settings.oidc_audience, jwks_client=jwks_client)
    templates.env.filters["fmt_dt"] = fmt_dt
    sso = None
    if settings.oidc_issuer and settings.oidc_client_id:
        secret = settings.oidc_client_secret
        sso = OidcWebLogin(issuer=settings.oidc_issuer, client_id=settings.oidc_client_id,
                           client_secret=secret.get_secret_value() if secret else None,
                           redirect_uri=settings.public_url.rstrip("/") + CALLBACK_PATH,
                           secret_key=settings.secret_key, tokens=tokens, clock=clock)
    ctx = AppContext(settings=settings, store=store, clock=clock,  # type: ignore[arg-type]
                     tokens=tokens, templates=templates, metrics_render=render_metrics,
                     notification_trace=notification_trace,
                     quarantine_release=quarantine_release, sso=sso)

    app = FastAPI(title="Vitalgate", version="1", docs_url="/docs", redoc_url=None,
                  openapi_url="/openapi.json",
                  description="Remote patient monitoring gateway: registry, readings, "
                              "escalations, care plans, audit.  Bearer JWT auth.")
    app.state.ctx = ctx
    _install_error_handlers(app)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        template = _route_template(request)
        http_requests.labels(request.method, template, str(response.status_code)).inc()
        http_latency.labels(template).observe(time.perf_counter() - started)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    @app.get("/healthz", tags=["probes"], response_class=PlainTextResponse)
    def healthz() -> str:
        """Liveness: the process answers."""
        return "ok"

    @app.get("/readyz", tags=["probes"], response_class=PlainTextResponse)
    def readyz() -> Response:
        """Readiness: the store answers a query."""
        try:
            store.schema_version()  # type: ignore[attr-defined]
        except Exception:  # any failure means "not ready"
            log.warning("readiness check failed", exc_info=True)
            return PlainTextResponse("store unavailable", status_code=503)
        return PlainTextResponse("ok")

    @app.get("/metrics", tags=["probes"], response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    app.include_router(web_router)
    app.include_router(billing_web_router)
    app.include_router(ack_router)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    return app


#: Plain-language error pages for the web UI (the JSON API keeps ``{"detail": ...}``).
_PAGE_ERRORS = {
    403: ("Not allowed", "Your role does not include this page or action."),
    404: ("Not found", "There is nothing here, or it belongs to another practice."),
    409: ("Already changed", "Someone changed this in the meantime; reload and try again."),
}


def _install_error_handlers(app: FastAPI) -> None:
    """Map domain errors to HTTP once, here."""

    def handler(code: int, headers: dict[str, str] | None = None) -> Any:
        async def handle(request: Request, exc: Exception) -> Response:
            page = not request.url.path.startswith((API_PREFIX, "/static"))
            if page and code == 401:
                # back to the page asked for after signing in (a GET's own path only)
                target = request.url.path
                if request.method == "GET" and target not in ("/", "/login"):
                    if request.url.query:
                        target += "?" + request.url.query
                    return RedirectResponse("/login?" + urlencode({"next": target}),
                                            status_code=303)
                return RedirectResponse("/login", status_code=303)
            if page and code in _PAGE_ERRORS and request.headers.get(
                    "x-requested-with") != "fetch":
                title, message = _PAGE_ERRORS[code]
                ctx: AppContext = request.app.state.ctx
                return ctx.templates.TemplateResponse(
                    request, "error.html", {"user": getattr(request.state, "principal", None),
                                            "csrf": "", "title": title, "message": message},
                    status_code=code)
            return JSONResponse({"detail": str(exc) or type(exc).__name__}, status_code=code,
                                headers=headers)

        return handle

    app.add_exception_handler(NotFound, handler(404))
    app.add_exception_handler(Conflict, handler(409))
    app.add_exception_handler(LifecycleError, handler(409))
    app.add_exception_handler(AuthError, handler(401, {"WWW-Authenticate": "Bearer"}))
    app.add_exception_handler(ForbiddenError, handler(403))
    app.add_exception_handler(StoreError, handler(400))
