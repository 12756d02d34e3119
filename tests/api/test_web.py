"""Server-rendered pages: cookie login, CSRF, queue, escalation page, patient page, admin."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from api.security import csrf_token
from gateway.escalations import Status
from tests.api.conftest import PASSWORD, TEST_SECRET, Env


def web_login(env: Env, role: str) -> TestClient:
    client = TestClient(env.app)
    page = client.get("/login")
    assert page.status_code == 200
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    resp = client.post("/login", data={"email": env.a.emails[role], "password": PASSWORD,
                                       "csrf": nonce}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return client


def page_csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_login_sets_httponly_samesite_cookie(env: Env) -> None:
    client = TestClient(env.app)
    page = client.get("/login")
    assert 'autocomplete="current-password"' in page.text and '<label for="email">' in page.text
    nonce = page_csrf(page.text)
    resp = client.post("/login", data={"email": env.a.emails["coordinator"],
                                       "password": PASSWORD, "csrf": nonce},
                       follow_redirects=False)
    cookie = resp.headers["set-cookie"]
    assert "vg_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert resp.headers["location"] == "/queue"


def test_login_without_matching_csrf_is_refused(env: Env) -> None:
    client = TestClient(env.app)
    client.get("/login")
    resp = client.post("/login", data={"email": env.a.emails["coordinator"],
                                       "password": PASSWORD, "csrf": "forged"},
                       follow_redirects=False)
    assert resp.headers["location"] == "/login?error=expired"
    assert "vg_session" not in client.cookies


def test_wrong_password_shows_message(env: Env) -> None:
    client = TestClient(env.app)
    nonce = page_csrf(client.get("/login").text)
    resp = client.post("/login", data={"email": env.a.emails["coordinator"],
                                       "password": "nope nope nope", "csrf": nonce})
    assert "Wrong e-mail or password" in resp.text


def test_pages_redirect_to_login_without_session(env: Env) -> None:
    client = TestClient(env.app)
    for path in ("/queue", f"/escalations/{env.a.escalation}", f"/patients/{env.a.patient}",
                 "/admin/devices"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303
        assert resp.headers["location"] == "/login?" + urlencode({"next": path})
    resp = client.get("/", follow_redirects=False)
    assert resp.headers["location"] == "/login"


def test_sign_in_lands_on_the_page_asked_for(env: Env) -> None:
    """A page link (e.g. from a page notification) survives the sign-in."""
    client = TestClient(env.app)
    wanted = f"/patients/{env.a.patient}?days=90"
    login = client.get(wanted)  # follows the redirect to the sign-in form
    assert login.url.path == "/login"
    assert f'name="next" value="{wanted}"' in login.text
    resp = client.post("/login", data={"email": env.a.emails["coordinator"],
                                       "password": PASSWORD, "next": wanted,
                                       "csrf": page_csrf(login.text)}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == wanted


def test_queue_lists_escalation_in_plain_words(env: Env) -> None:
    client = web_login(env, "coordinator")
    page = client.get("/queue")
    assert page.status_code == 200
    assert "Weight up 2 lb or more in a day" in page.text
    assert "LeeA" not in page.text and "Leea, Ann" in page.text
    assert 'data-refresh-seconds="10"' in page.text
    assert env.b.escalation not in page.text
    rows = client.get("/queue/rows")
    assert rows.status_code == 200 and env.a.escalation in rows.text


def test_one_click_acknowledge_needs_csrf(env: Env) -> None:
    client = web_login(env, "coordinator")
    url = f"/escalations/{env.a.escalation}/acknowledge"
    assert client.post(url, data={"csrf": "nope"}).status_code == 403
    assert env.store.get_escalation(env.a.escalation).status == Status.OPEN
    csrf = page_csrf(client.get("/queue").text)
    resp = client.post(url, data={"csrf": csrf}, headers={"X-Requested-With": "fetch"})
    assert resp.status_code == 204
    assert env.store.get_escalation(env.a.escalation).status == Status.ACKNOWLEDGED


def test_csrf_token_is_bound_to_the_session(env: Env) -> None:
    one, two = web_login(env, "coordinator"), web_login(env, "physician")
    csrf_one = page_csrf(one.get("/queue").text)
    resp = two.post(f"/escalations/{env.a.escalation}/acknowledge", data={"csrf": csrf_one})
    assert resp.status_code == 403
    assert csrf_token(TEST_SECRET, "x") != csrf_one


def test_escalation_page_has_chart_threshold_evidence_actions(env: Env) -> None:
    client = web_login(env, "physician")
    page = client.get(f"/escalations/{env.a.escalation}")
    assert page.status_code == 200
    html = page.text
    assert "<svg" in html and 'role="img"' in html and 'class="threshold"' in html
    assert "baseline ≥+2 lb 182" in html  # 81.6 kg (179.9 lb) + 2 lb
    assert "Weight up 2.4 lb since yesterday" in html
    assert "Notifications" in html
    for action in ("acknowledge", "assign", "snooze", "comment", "resolve"):
        assert f"/escalations/{env.a.escalation}/{action}" in html
    assert 'label for="disposition"' in html


def test_escalation_page_actions_from_forms(env: Env) -> None:
    client = web_login(env, "coordinator")
    html = client.get(f"/escalations/{env.a.escalation}").text
    csrf = page_csrf(html)
    base = f"/escalations/{env.a.escalation}"
    assert client.post(base + "/snooze", data={"csrf": csrf, "snooze_hours": "4"},
                       follow_redirects=False).status_code == 303
    esc = env.store.get_escalation(env.a.escalation)
    assert esc.snoozed_until is not None
    assert client.post(base + "/comment", data={"csrf": csrf, "comment": "left voicemail"},
                       follow_redirects=False).status_code == 303
    assert client.post(base + "/resolve", data={"csrf": csrf, "disposition": ""},
                       follow_redirects=False).status_code == 422
    assert client.post(base + "/resolve", data={"csrf": csrf, "disposition": "device_issue"},
                       follow_redirects=False).status_code == 303
    assert env.store.get_escalation(env.a.escalation).status == Status.RESOLVED
    assert "left voicemail" in client.get(base).text


def test_other_practice_pages_are_404(env: Env) -> None:
    client = web_login(env, "coordinator")
    assert client.get(f"/escalations/{env.b.escalation}").status_code == 404
    assert client.get(f"/patients/{env.b.patient}").status_code == 404
    csrf = page_csrf(client.get("/queue").text)
    resp = client.post(f"/escalations/{env.b.escalation}/acknowledge", data={"csrf": csrf})
    assert resp.status_code == 404


@pytest.mark.parametrize("days", [30, 90])
def test_patient_page_charts_and_devices(env: Env, days: int) -> None:
    client = web_login(env, "coordinator")
    page = client.get(f"/patients/{env.a.patient}?days={days}")
    assert page.status_code == 200
    assert f"last {days} days" in page.text
    assert page.text.count("<svg") == 1  # weight only
    assert "lb" in page.text  # US practice shows pounds
    assert env.a.device in page.text and "60 %" in page.text


def test_roles_on_pages(env: Env) -> None:
    biller = web_login(env, "biller")
    assert biller.get("/queue").status_code == 403
    assert biller.get("/admin/devices").status_code == 403
    assert biller.get("/admin/patients").status_code == 200
    coordinator = web_login(env, "coordinator")
    csrf = page_csrf(coordinator.get("/queue").text)
    resp = coordinator.post("/admin/devices", data={"csrf": csrf, "serial": "X-1",
                                                    "kind": "scale"})
    assert resp.status_code == 403


def test_admin_enrols_patient_and_registers_device(env: Env) -> None:
    admin = web_login(env, "admin")
    page = admin.get("/admin/patients")
    assert 'label for="mrn"' in page.text
    csrf = page_csrf(page.text)
    resp = admin.post("/admin/patients", data={
        "csrf": csrf, "mrn": "W-1", "given_name": "Ida", "family_name": "Web",
        "timezone": "America/Chicago", "programs": ["RPM", "CCM"], "conditions": ["HTN"],
        "supervising_physician_id": env.a.users["physician"], "consent_date": "2026-02-01"},
        follow_redirects=False)
    assert resp.status_code == 303
    pid = resp.headers["location"].rsplit("/", 1)[1]
    enrol = env.store.get_enrollment(pid)
    assert {p.value for p in enrol.programs} == {"RPM", "CCM"}
    assert enrol.supervising_physician_id == env.a.users["physician"]
    dup = admin.post("/admin/patients", data={"csrf": csrf, "mrn": "W-1", "given_name": "X",
                                              "family_name": "Y", "timezone": "UTC"},
                     follow_redirects=False)
    assert dup.headers["location"].endswith("error=mrn")
    dev = admin.post("/admin/devices", data={"csrf": csrf, "serial": "BP-NEW", "kind": "bp_cuff",
                                             "model": "M7"}, follow_redirects=False)
    assert dev.status_code == 303 and env.store.get_device("BP-NEW").practice_id == env.a.practice
    assert "BP-NEW" in admin.get("/admin/devices").text


def test_logout_needs_csrf_and_clears_cookie(env: Env) -> None:
    client = web_login(env, "coordinator")
    csrf = page_csrf(client.get("/queue").text)
    assert client.post("/logout", data={"csrf": "x"}).status_code == 403
    resp = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert resp.status_code == 303 and 'vg_session=""' in resp.headers["set-cookie"]


def test_static_assets_served(env: Env) -> None:
    client = TestClient(env.app)
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "setInterval" in js.text
    assert client.get("/static/app.css").status_code == 200


def test_call_prep_page_and_api(env: Env) -> None:
    client = web_login(env, "coordinator")
    page = client.get(f"/patients/{env.a.patient}/call-prep")
    assert page.status_code == 200
    assert "Talking points" in page.text and "<svg" in page.text and "Weight" in page.text
    assert client.get(f"/patients/{env.b.patient}/call-prep").status_code == 404
    api = env.client.get(f"/api/v1/patients/{env.a.patient}/call-prep",
                         headers=env.headers(env.a, "coordinator"))
    assert api.status_code == 200
    body = api.json()
    assert body["initials"] == "AL" and body["metrics"][0]["metric"] == "weight"
    assert web_login(env, "biller").get(f"/patients/{env.a.patient}/call-prep").status_code == 403


def test_page_errors_are_html(env: Env) -> None:
    client = web_login(env, "coordinator")
    missing = client.get(f"/patients/{env.b.patient}")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
    assert "another practice" in missing.text
    biller = web_login(env, "biller")
    denied = biller.get("/queue")
    assert denied.status_code == 403 and "Not allowed" in denied.text


def test_web_login_rate_limit_message(env: Env) -> None:
    client = TestClient(env.app)
    for _ in range(5):
        nonce = page_csrf(client.get("/login").text)
        client.post("/login", data={"email": env.a.emails["physician"], "password": "bad bad bad",
                                    "csrf": nonce})
    nonce = page_csrf(client.get("/login").text)
    resp = client.post("/login", data={"email": env.a.emails["physician"], "password": PASSWORD,
                                       "csrf": nonce})
    assert "Too many failed attempts" in resp.text
    assert "vg_session" not in client.cookies


def test_notification_trace_is_shown_when_provided(env: Env) -> None:
    from datetime import UTC, datetime

    from api.app import create_app

    rows = [{"at": datetime(2026, 3, 1, 11, 1, tzinfo=UTC), "channel": "sms",
             "recipient": "Dr P (physician)", "status": "delivered"}]
    env.app = create_app(env.app.state.ctx.settings, env.store, clock=env.clock,
                         notification_trace=lambda esc_id: rows if esc_id == env.a.escalation
                         else [])
    client = web_login(env, "physician")
    html = client.get(f"/escalations/{env.a.escalation}").text
    assert "delivered" in html and "sms" in html and "2026-03-01 11:01 UTC" in html
    detail = env.client.get(f"/api/v1/escalations/{env.a.escalation}",
                            headers=env.headers(env.a, "physician"))
    assert detail.json()["notifications"] is None  # the fixture's own app has no trace


def test_admin_provisions_hub_and_lends_device(env: Env) -> None:
    from api.security import verify_password
    from gateway.model import Device, DeviceKind

    admin = web_login(env, "admin")
    page = admin.get("/admin/devices")
    csrf = page_csrf(page.text)
    resp = admin.post("/admin/hubs", data={"csrf": csrf, "hub_id": "hub-web",
                                           "patient_id": env.a.patient})
    assert resp.status_code == 200 and "shown only this once" in resp.text
    password = re.search(r"MQTT password</dt><dd><code>([^<]+)</code>", resp.text).group(1)
    assert verify_password(env.store.get_hub_credentials("hub-hub-web").password_hash, password)
    assert password not in admin.get("/admin/devices").text
    env.store.upsert_device(Device("BP-LEND", env.a.practice, DeviceKind.BP_CUFF))
    lent = admin.post("/admin/assignments", data={"csrf": csrf, "device_serial": "BP-LEND",
                                                  "patient_id": env.a.patient,
                                                  "hub_id": "hub-web"}, follow_redirects=False)
    assert lent.status_code == 303
    assert env.store.active_assignment("BP-LEND", env.clock()).patient_id == env.a.patient
    other = admin.post("/admin/assignments", data={"csrf": csrf, "device_serial": env.b.device,
                                                   "patient_id": env.a.patient,
                                                   "hub_id": "hub-web"})
    assert other.status_code == 404


@pytest.mark.parametrize(("role", "path"), [
    ("coordinator", "/queue"), ("coordinator", "/escalations/{esc}"),
    ("coordinator", "/patients/{pat}"), ("coordinator", "/patients/{pat}/call-prep"),
    ("admin", "/admin/patients"), ("admin", "/admin/devices")])
def test_pages_are_well_formed(env: Env, role: str, path: str) -> None:
    """One h1, one main, labelled form controls, and a sane size on every page."""
    client = web_login(env, role)
    html = client.get(path.format(esc=env.a.escalation, pat=env.a.patient)).text
    assert html.count("<h1") == 1 and html.count("<main") == 1
    assert len(html) < 60_000
    ids = set(re.findall(r'<(?:input|select|textarea)[^>]*\sid="([^"]+)"', html))
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    assert ids <= labelled, ids - labelled
