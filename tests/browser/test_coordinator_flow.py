"""The coordinator pages in a real browser (Playwright + Debian's headless Chromium).

The real app runs under uvicorn in a background thread on a free port, over a
SQLite store seeded like the API tests (practice, users of every role with a
known password, an enrolled CHF patient with readings and one open
escalation).  The browser signs in through the form, watches the queue pick up
an escalation created server-side through the page's own 10-second refresh,
opens it, acknowledges and resolves it, and the store is checked afterwards.
Screenshots go to ``test-artifacts/browser/`` (git-ignored).

No browser is downloaded: Chromium comes from Debian (``apt-get install
chromium``).  Without it, or without the ``playwright`` package, the tests skip
-- or fail under ``VITALGATE_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.text import rule_title
from gateway.escalations import Disposition, Severity, Status, Trigger
from gateway.settings import Settings
from gateway.store import open_store
from tests.api.conftest import PASSWORD, TEST_SECRET, FakeClock, Tenant, seed_tenant
from tests.support.services import free_port, require_service

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: The queue page refreshes every 10 s; allow two rounds plus slack.
REFRESH_WAIT_MS = 25_000

#: Every visible form control without a label, as "tag#id name=..." strings.
UNLABELLED_CONTROLS_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const named = (el.labels && el.labels.length > 0) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby");
    if (!named) out.push(el.tagName.toLowerCase() + "#" + el.id + " name=" + el.name);
  }
  return out;
}"""

#: Every button without an accessible name (text, aria-label or aria-labelledby).
UNNAMED_BUTTONS_JS = """() => {
  const out = [];
  for (const el of document.querySelectorAll("button, input[type=submit], [role=button]")) {
    const text = (el.getAttribute("aria-label") || el.textContent || el.value || "").trim();
    if (!text && !el.getAttribute("aria-labelledby")) out.push(el.outerHTML.slice(0, 120));
  }
  return out;
}"""


def chromium_path() -> str | None:
    """Debian's Chromium binary, or $VITALGATE_CHROMIUM."""
    explicit = os.environ.get("VITALGATE_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Served:
    """The running app: its URL, store, clock and seeded tenant."""

    url: str
    store: Any
    clock: FakeClock
    tenant: Tenant


@contextlib.contextmanager
def serve(tmp_path: Path, **settings: Any) -> Iterator[Served]:
    """The real app under uvicorn on a free port, in a background thread."""
    import uvicorn

    store = open_store(f"sqlite:///{tmp_path / 'browser.db'}")
    store.migrate()
    tenant = seed_tenant(store, "a")
    clock = FakeClock()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_app(Settings(secret_key=TEST_SECRET, public_url=url, _env_file=None,  # type: ignore[call-arg]
                              **settings), store, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, name="uvicorn-browser-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield Served(url, store, clock, tenant)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """The real app (passwords only)."""
    with serve(tmp_path) as s:
        yield s


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (skip or fail when missing)."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service("Chromium", "the playwright package is not installed "
                                    "(pip install 'playwright>=1.40')")
        raise AssertionError("unreachable") from None
    exe = chromium_path()
    if exe is None:
        require_service("Chromium", "no chromium binary (apt-get install chromium)")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            require_service("Chromium", f"{exe} did not start: {str(exc).strip()[:300]}")
            raise AssertionError("unreachable") from exc
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records console errors and uncaught exceptions (CSP included)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error"
          and "favicon.ico" not in (m.location or {}).get("url", "") else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # which resource failed (console messages do not say); the favicon is not shipped
    pg.on("response", lambda r: errors.append(f"{r.status} {r.url}")
          if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    pg.console_errors = errors
    try:
        yield pg
    finally:
        context.close()


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path


def check_accessibility(page: Any) -> None:
    """Labelled controls, named buttons, and a skip link as the first Tab stop."""
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == [], page.url
    assert page.evaluate(UNNAMED_BUTTONS_JS) == [], page.url
    assert page.locator("html").get_attribute("lang") == "en"


def tab_until(page: Any, predicate_js: str, max_tabs: int = 60) -> int:
    """Press Tab from the top of the page until ``predicate_js(activeElement)`` holds."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); "
                  "window.scrollTo(0, 0); }")
    for n in range(1, max_tabs + 1):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => ({predicate_js})(document.activeElement)"):
            return n
    raise AssertionError(f"keyboard focus never reached the element ({predicate_js})")


def sign_in(page: Any, served: Served, role: str = "coordinator") -> None:
    from playwright.sync_api import expect

    page.goto(served.url + "/queue")
    expect(page).to_have_url(served.url + "/login?next=%2Fqueue")
    check_accessibility(page)
    page.get_by_label("E-mail").fill(served.tenant.emails[role])
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(served.url + "/queue")


def new_trigger(served: Served) -> Trigger:
    t, now = served.tenant, served.clock()
    return Trigger(
        practice_id=t.practice, patient_id=t.patient, rule_id="chf.weight_gain_7d",
        rule_version=1, severity=Severity.EMERGENCY, trigger_at=now - timedelta(minutes=5),
        summary="Weight up 5.5 lb in 7 days (176.4 lb to 181.9 lb)",
        thresholds={"metric": "weight", "days_back": 7, "ge": 5.0, "unit": "lb"},
        evidence={"rule_version": 1, "readings": [
            {"id": "r-a-3", "metric": "weight", "value": 80.6,
             "measured_at": (now - timedelta(days=7)).isoformat(), "display": "177.7 lb"},
            {"id": "r-a-9", "metric": "weight", "value": 81.8,
             "measured_at": (now - timedelta(days=1)).isoformat(), "display": "180.3 lb"}]},
        key="browser-test-1")


def test_coordinator_sees_new_escalation_acknowledges_and_resolves(
        page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    sign_in(page, served)
    expect(page.get_by_role("heading", name="Escalation queue")).to_be_visible()
    seeded_title = rule_title("chf.weight_gain_24h")
    expect(page.get_by_role("link", name=seeded_title)).to_be_visible()
    check_accessibility(page)

    # A new escalation appears through the page's own refresh: the marker proves no reload.
    page.evaluate("() => { window.__vgNoReload = 'still here'; }")
    served.clock.advance(minutes=1)
    esc, _ = served.store.record_trigger(new_trigger(served), served.clock())
    title = rule_title(esc.rule_id)
    link = page.get_by_role("link", name=title)
    expect(link).to_be_visible(timeout=REFRESH_WAIT_MS)
    assert page.evaluate("() => window.__vgNoReload") == "still here"
    # emergency sorts above the seeded urgent one
    first_row = page.locator("#queue-rows tr").first
    expect(first_row).to_contain_text(title)
    expect(first_row).to_contain_text("emergency")
    shot(page, "queue.png")

    link.click()
    expect(page).to_have_url(f"{served.url}/escalations/{esc.id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(title)
    expect(page.locator("p.evidence")).to_have_text(esc.summary)
    chart = page.locator("figure svg[role=img]")
    expect(chart).to_have_count(1)
    assert "Weight" in (chart.get_attribute("aria-label") or "")
    assert chart.locator("title").count() == 1
    assert chart.locator("polyline, path").count() >= 1
    check_accessibility(page)
    shot(page, "escalation.png")

    # Keyboard: Tab reaches the Acknowledge button; Enter submits it.
    ack = page.get_by_role("button", name="Acknowledge", exact=True)
    expect(ack).to_be_visible()
    tabs = tab_until(page, "el => el.tagName === 'BUTTON' && "
                           "el.textContent.trim() === 'Acknowledge'")
    assert tabs > 1  # the skip link and navigation come first
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    status = page.locator("dl.facts dd").first
    expect(status).to_have_text("acknowledged")
    expect(page.get_by_role("button", name="Acknowledge", exact=True)).to_have_count(0)

    page.get_by_label("Disposition").select_option(Disposition.MEDICATION_ADJUSTED.value)
    page.get_by_label("Note (optional)").fill("Diuretic increased per Dr. order")
    page.get_by_role("button", name="Resolve").click()
    expect(status).to_have_text("resolved")
    expect(page.locator("dl.facts")).to_contain_text("medication adjusted")
    expect(page.get_by_role("heading", name="Actions")).to_have_count(0)
    expect(page.locator("ol.history")).to_contain_text("Diuretic increased per Dr. order")
    check_accessibility(page)
    shot(page, "resolved.png")

    stored = served.store.get_escalation(esc.id)
    coordinator = served.tenant.users["coordinator"]
    assert stored.status is Status.RESOLVED
    assert stored.disposition is Disposition.MEDICATION_ADJUSTED
    assert stored.acknowledged_by == coordinator and stored.resolved_by == coordinator
    actions = [ev.action.value for ev in served.store.escalation_events(esc.id)]
    assert actions[0] == "opened" and "acknowledged" in actions and actions[-1] == "resolved"

    # Back on the queue the resolved escalation is gone, the seeded one remains.
    page.get_by_role("link", name="← Queue").click()
    expect(page.get_by_role("link", name=seeded_title)).to_be_visible()
    expect(page.get_by_role("link", name=title)).to_have_count(0)
    assert page.console_errors == []


def test_queue_one_click_acknowledge_and_keyboard(page: Any, served: Served) -> None:
    """The queue's Acknowledge works from the keyboard without a reload, row updated."""
    from playwright.sync_api import expect

    sign_in(page, served)
    title = rule_title("chf.weight_gain_24h")
    name = f"Acknowledge: {title}"
    expect(page.get_by_role("button", name=name)).to_be_visible()
    page.evaluate("() => { window.__vgNoReload = 'still here'; }")
    tab_until(page, "el => el.getAttribute('aria-label') === " + repr(name))
    page.keyboard.press("Enter")
    expect(page.locator("#queue-status")).to_have_text("Acknowledged.")
    row = page.locator("#queue-rows tr").filter(has_text=title)
    expect(row).to_contain_text("acknowledged", timeout=5_000)
    expect(page.get_by_role("button", name=name)).to_have_count(0)
    assert page.evaluate("() => window.__vgNoReload") == "still here"
    assert served.store.get_escalation(served.tenant.escalation).status is Status.ACKNOWLEDGED
    # keyboard focus is not dropped to <body> when its row is replaced: it lands on the
    # same escalation's link
    focused = page.evaluate("() => document.activeElement.getAttribute('href')")
    assert focused == f"/escalations/{served.tenant.escalation}"
    check_accessibility(page)
    assert page.console_errors == []


def test_single_sign_on_through_the_provider(page: Any, tmp_path: Path) -> None:
    """The SSO button, the provider's redirect and the way back, in a real browser.

    The provider is addressed as ``localhost`` and Vitalgate as ``127.0.0.1``:
    two sites, so the pending sign-in cookie (SameSite=Lax) must survive a
    cross-site redirect back, as it must with a real provider.
    """
    from playwright.sync_api import expect

    from api.sso import CALLBACK_PATH
    from tests.support.oidc_provider import OidcProvider

    provider = OidcProvider(host_name="localhost")
    try:
        with serve(tmp_path, oidc_issuer=provider.url, oidc_client_id=provider.client_id,
                   oidc_client_secret=provider.client_secret) as served:
            provider.clock = served.clock
            provider.redirect_uri = served.url + CALLBACK_PATH
            provider.account = served.tenant.emails["physician"]
            page.goto(served.url + "/queue")
            expect(page).to_have_url(served.url + "/login?next=%2Fqueue")
            check_accessibility(page)
            page.get_by_role("link", name="Sign in with your organisation's account").click()
            expect(page).to_have_url(served.url + "/queue")
            expect(page.locator(".who")).to_have_text(
                f"{served.tenant.emails['physician']} (physician)")
            assert provider.token_requests, "the code was never exchanged"
            shot(page, "sso-queue.png")
            assert page.console_errors == []
    finally:
        provider.close()
