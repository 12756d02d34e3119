"""Channels against real local servers; tokens and signatures."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from hypothesis import given
from hypothesis import strategies as st

from gateway.escalations import Severity, Trigger
from gateway.settings import Settings
from gateway.store import Store
from rules.paging.channels import (
    DeliveryResult,
    EmailChannel,
    PageMessage,
    SmsChannel,
    WebhookChannel,
)
from rules.paging.dispatcher import Dispatcher
from rules.paging.outbox import install_paging
from rules.paging.policy import parse_policy
from rules.paging.tokens import (
    AckTokenError,
    make_ack_token,
    sign_body,
    verify_ack_token,
    verify_signature,
)
from rules.paging.wiring import POLICY_ENV, start_paging
from tests.paging.conftest import T0, Clock, Receiver

KEY = "server-secret-key-for-tests-0123456789"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (Controller cannot start on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def test_email_page_through_real_smtp_has_no_name(seeded: Store, clock: Clock,
                                                  smtp: tuple[Controller, Inbox]) -> None:
    controller, inbox = smtp
    port = controller.port
    policy = parse_policy({
        "contacts": {"dr_sup": {"name": "Dr Sup", "email": "sup@clinic.example"}},
        "severities": {"emergency": [{"who": "supervising_physician", "channels": ["email"],
                                      "wait": "5m", "repeat": 1}]}})
    install_paging(seeded, policy, clock=clock, public_url="https://rpm.example.org",
                   secret_key=KEY)
    esc, _ = seeded.record_trigger(Trigger(
        "p1", "pt1", "bp.severe", 1, Severity.EMERGENCY, T0,
        "Alice Zephyrine systolic 210", {}, {}), clock())
    d = Dispatcher(seeded, {"email": EmailChannel("127.0.0.1", port, "pager@rpm.example.org")},
                   clock)
    assert d.run_once().sent == 1
    (env,) = inbox.messages
    assert env.rcpt_tos == ["sup@clinic.example"]
    raw = env.content if isinstance(env.content, bytes) else env.content.encode()
    assert b"Alice" not in raw and b"Zephyrine" not in raw and b"1950" not in raw
    msg = message_from_bytes(raw)
    text = msg.get_payload(decode=True).decode()
    assert "EMERGENCY" in msg["Subject"] and "AZ" in msg["Subject"] and "3456" in msg["Subject"]
    assert f"https://rpm.example.org/escalations/{esc.id}" in text
    assert "https://rpm.example.org/ack/" in text
    (page,) = seeded.list_pages(esc.id)
    assert page.status == "sent" and msg["Message-ID"] == f"<{page.id}@vitalgate>"


def test_email_login(smtp: tuple[Controller, Inbox]) -> None:
    _, inbox = smtp
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      data: Any) -> AuthResult:
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"pw")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            authenticator=authenticator, auth_require_tls=False)
    controller.start()
    try:
        ok = EmailChannel("127.0.0.1", port, username="pager", password="pw")
        assert ok.send(_msg(address="a@example.org")).ok
    finally:
        controller.stop()
    assert logins == [(b"pager", b"pw")]
    assert len(inbox.messages) == 1


def test_email_server_down_is_retryable() -> None:
    ch = EmailChannel("127.0.0.1", 1, timeout=2)
    r = ch.send(_msg(address="x@example.org"))
    assert not r.ok and r.retryable


def _msg(**kw: Any) -> PageMessage:
    base = PageMessage(page_id="pg1", escalation_id="e1", kind="trigger", severity="urgent",
                       rule_id="bp.severe", subject="[URGENT] bp", text="t", link="l",
                       ack_link="a", recipient="dr", address=None)
    return replace(base, **kw)


def test_webhook_signature_verifies_and_detects_tampering(receiver: Receiver) -> None:
    ch = WebhookChannel("s3cret")
    r = ch.send(_msg(address=f"{receiver.url}/hook"))
    assert r.ok and r.status_code == 202
    (req,) = receiver.requests
    sig = req.headers["x-vitalgate-signature"]
    assert sig == sign_body("s3cret", req.body) and sig.startswith("sha256=")
    assert verify_signature("s3cret", req.body, sig)
    assert not verify_signature("s3cret", req.body.replace(b"urgent", b"routine"), sig)
    assert not verify_signature("other", req.body, sig)
    assert req.headers["idempotency-key"] == "pg1"


def test_webhook_answers(receiver: Receiver) -> None:
    receiver.fail_next = 1
    r = WebhookChannel("s").send(_msg(address=f"{receiver.url}/hook"))
    assert not r.ok and r.retryable and r.status_code == 503
    r = WebhookChannel("s").send(_msg(address="http://127.0.0.1:1/hook"))
    assert not r.ok and r.retryable
    r = WebhookChannel("s").send(_msg(address=None))
    assert not r.ok and not r.retryable


def test_sms_twilio_form_post(receiver: Receiver) -> None:
    ch = SmsChannel(f"{receiver.url}/sms", "AC1", "tok", "+15550100")
    assert ch.send(_msg(address="+15550199")).ok
    (req,) = receiver.requests
    assert req.headers["authorization"].startswith("Basic ")
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    assert b"To=%2B15550199" in req.body and b"From=%2B15550100" in req.body


def test_ack_token_roundtrip_tamper_and_expiry() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    token = make_ack_token(KEY, "esc-42", now + timedelta(hours=1))
    assert verify_ack_token(KEY, token, now) == "esc-42"
    with pytest.raises(AckTokenError, match="expired"):
        verify_ack_token(KEY, token, now + timedelta(hours=1))
    with pytest.raises(AckTokenError, match="signature"):
        verify_ack_token("another-key", token, now)
    eid, exp, mac = token.split(".")
    with pytest.raises(AckTokenError, match="signature"):
        verify_ack_token(KEY, f"{eid}.{int(exp) + 3600}.{mac}", now)  # extended expiry
    other = make_ack_token(KEY, "esc-43", now + timedelta(hours=1)).split(".")[0]
    with pytest.raises(AckTokenError, match="signature"):
        verify_ack_token(KEY, f"{other}.{exp}.{mac}", now)  # another escalation
    with pytest.raises(AckTokenError, match="malformed"):
        verify_ack_token(KEY, "garbage", now)


def test_start_paging_without_policy_is_queue_only(seeded: Store, clock: Clock,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv(POLICY_ENV, raising=False)
    with caplog.at_level(logging.INFO, logger="rules.paging.wiring"):
        svc = start_paging(Settings(), seeded, clock)
    assert "coordinator queue only" in caplog.text
    esc, _ = seeded.record_trigger(Trigger("p1", "pt1", "bp.severe", 1, Severity.EMERGENCY,
                                           T0, "s", {}, {}), clock())
    assert seeded.list_pages(esc.id) == []
    svc.stop()


def test_start_paging_with_policy_file_runs_dispatcher(seeded: Store, receiver: Receiver,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(f"""
contacts:
  dr_sup: {{name: Dr Sup, webhook: "{receiver.url}/hook"}}
severities:
  emergency:
    - {{who: supervising_physician, channels: [webhook], wait: 5m, repeat: 1}}
channels:
  webhook: {{secret_env: TEST_PAGING_SECRET}}
""")
    monkeypatch.setenv(POLICY_ENV, str(f))
    monkeypatch.setenv("TEST_PAGING_SECRET", "wh")
    svc = start_paging(Settings(), seeded)
    try:
        seeded.record_trigger(Trigger("p1", "pt1", "bp.severe", 1, Severity.EMERGENCY,
                                      datetime.now(UTC), "s", {}, {}), datetime.now(UTC))
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not receiver.requests and datetime.now(UTC) < deadline:
            time.sleep(0.1)  # the real dispatcher thread ticks every second
    finally:
        svc.stop()
    assert len(receiver.requests) == 1
    assert verify_signature("wh", receiver.requests[0].body,
                            receiver.requests[0].headers["x-vitalgate-signature"])


def test_channel_exception_is_retryable_failure(seeded: Store, clock: Clock) -> None:
    class Broken:
        def send(self, message: PageMessage) -> DeliveryResult:
            raise RuntimeError("bug")

    policy = parse_policy({"contacts": {"dr_sup": {"name": "S", "webhook": "http://x"}},
                           "severities": {"emergency": [
                               {"who": "supervising_physician", "channels": ["webhook"]}]}})
    install_paging(seeded, policy, clock=clock, secret_key=KEY)
    esc, _ = seeded.record_trigger(Trigger("p1", "pt1", "bp.severe", 1, Severity.EMERGENCY,
                                           T0, "s", {}, {}), clock())
    stats = Dispatcher(seeded, {"webhook": Broken()}, clock).run_once()
    assert stats.retried == 1
    assert seeded.list_pages(esc.id)[0].last_error == "RuntimeError: bug"


@given(st.text(min_size=1, max_size=40), st.data())
def test_any_change_to_an_ack_token_is_refused(escalation_id: str, data: st.DataObject) -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    token = make_ack_token(KEY, escalation_id, now + timedelta(hours=1))
    assert verify_ack_token(KEY, token, now) == escalation_id
    i = data.draw(st.integers(0, len(token) - 1))
    c = data.draw(st.sampled_from("0123456789abcdefABCDEF-_.="))
    tampered = token[:i] + c + token[i + 1:]
    if tampered != token:
        with pytest.raises(AckTokenError):
            verify_ack_token(KEY, tampered, now)
