"""The signed one-click acknowledge link from a page."""

from __future__ import annotations

from datetime import timedelta

from gateway.escalations import Status
from rules.paging.tokens import make_ack_token
from tests.api.conftest import T0, TEST_SECRET, Env


def _open_escalation(env: Env) -> str:
    [esc] = [e for e in env.store.list_escalations(env.a.practice) if e.status is Status.OPEN][:1]
    return esc.id


def test_get_shows_post_acknowledges_once(env: Env) -> None:
    esc_id = _open_escalation(env)
    token = make_ack_token(TEST_SECRET, esc_id, T0 + timedelta(hours=2))
    page = env.client.get(f"/ack/{token}")
    assert page.status_code == 200 and "Acknowledge</button>" in page.text
    assert "Ann" not in page.text and "Lee" not in page.text  # initials only
    assert env.store.get_escalation(esc_id).status is Status.OPEN  # GET changes nothing
    done = env.client.post(f"/ack/{token}")
    assert done.status_code == 200 and "Acknowledged" in done.text
    esc = env.store.get_escalation(esc_id)
    assert esc.status is Status.ACKNOWLEDGED and esc.acknowledged_by == "page-link"
    again = env.client.post(f"/ack/{token}")  # a second click is harmless
    assert again.status_code == 200
    audit = env.store.list_audit(env.a.practice, resource_type="escalation")
    assert any(a.action == "acknowledge" and a.user_id == "page-link" for a in audit)


def test_tampered_or_expired_links_are_refused(env: Env) -> None:
    esc_id = _open_escalation(env)
    good = make_ack_token(TEST_SECRET, esc_id, T0 + timedelta(hours=2))
    forged = good[:-2] + ("00" if not good.endswith("00") else "11")
    expired = make_ack_token(TEST_SECRET, esc_id, T0 - timedelta(seconds=1))
    other_key = make_ack_token("another-secret-that-is-long-enough-1234567", esc_id,
                               T0 + timedelta(hours=2))
    for token in (forged, expired, other_key, "garbage"):
        assert env.client.post(f"/ack/{token}").status_code == 400
    assert env.store.get_escalation(esc_id).status is Status.OPEN
