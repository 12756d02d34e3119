"""Delivery channels: webhook, PagerDuty Events API v2, email (SMTP), SMS (Twilio-style).

Each channel has ``send(message) -> DeliveryResult``.  Network errors, 429 and
5xx are retryable; other 4xx are not (the request will not get better).
Messages carry minimal PHI only (see :func:`build_message`): severity, the
rule, patient initials and last 4 of the MRN, and links.
"""

from __future__ import annotations

import contextlib
import json
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from gateway.escalations import Escalation
from gateway.model import Patient
from rules.paging.tokens import make_ack_token, sign_body

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
HTTP_TIMEOUT_S = 10.0
#: How long a one-click acknowledge link in a page stays valid.
ACK_LINK_TTL = timedelta(hours=24)
_PD_SEVERITY = {"emergency": "critical", "urgent": "error", "routine": "warning"}


@dataclass(frozen=True, slots=True)
class PageMessage:
    """What a channel sends: minimal PHI, plus where to send it."""

    page_id: str
    escalation_id: str
    kind: str  # trigger | resolve
    severity: str
    rule_id: str
    subject: str
    text: str
    link: str
    ack_link: str
    recipient: str
    address: str | None  # URL, routing key, e-mail address or phone number


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What the provider said."""

    ok: bool
    status_code: int | None = None
    provider_id: str | None = None
    error: str | None = None
    retryable: bool = False
    answer: str | None = None


class Channel(Protocol):
    """Something that delivers a page."""

    def send(self, message: PageMessage) -> DeliveryResult:
        """Deliver once; never raises for delivery problems."""
        ...


def rule_words(rule_id: str) -> str:
    """``bp.severe`` -> ``bp severe`` (rule id in plain words, no values)."""
    return rule_id.replace(".", " ").replace("_", " ")


def build_message(*, page_id: str, kind: str, escalation: Escalation, patient: Patient | None,
                  recipient: str, address: str | None, public_url: str, secret_key: str,
                  now: datetime, ack_ttl: timedelta = ACK_LINK_TTL) -> PageMessage:
    """The minimal-PHI message for a page (never the patient's name or the summary)."""
    base = public_url.rstrip("/")
    who = (f"patient {patient.initials} MRN ...{patient.mrn_last4}" if patient is not None
           else "patient (unknown)")
    sev = escalation.severity.value.upper()
    link = f"{base}/escalations/{escalation.id}"
    ack = f"{base}/ack/{make_ack_token(secret_key, escalation.id, now + ack_ttl)}"
    if kind == "resolve":
        subject = f"[RESOLVED] {rule_words(escalation.rule_id)} - {who}"
        text = f"{subject}. Details: {link}"
    else:
        subject = f"[{sev}] {rule_words(escalation.rule_id)} - {who}"
        text = f"{subject}. Details: {link} Acknowledge: {ack}"
    return PageMessage(page_id, escalation.id, kind, escalation.severity.value,
                       escalation.rule_id, subject, text, link, ack, recipient, address)


def _http_result(resp: httpx.Response, provider_id: str | None = None) -> DeliveryResult:
    code = resp.status_code
    if 200 <= code < 300:
        return DeliveryResult(True, code, provider_id, answer=resp.text[:1000])
    return DeliveryResult(False, code, None, f"HTTP {code}: {resp.text[:200]}",
                          retryable=code == 429 or code >= 500, answer=resp.text[:1000])


def _post(client: httpx.Client | None, url: str, **kw: Any) -> httpx.Response:
    if client is not None:
        return client.post(url, **kw)
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as c:
        return c.post(url, **kw)


class WebhookChannel:
    """POST JSON to the contact's webhook URL, signed with this channel's secret."""

    name = "webhook"

    def __init__(self, secret: str, client: httpx.Client | None = None) -> None:
        self.secret, self.client = secret, client

    def body(self, m: PageMessage) -> bytes:
        """The exact JSON bytes sent (and signed)."""
        return json.dumps({"page_id": m.page_id, "event": m.kind,
                           "escalation_id": m.escalation_id, "severity": m.severity,
                           "rule_id": m.rule_id, "text": m.text, "link": m.link,
                           "ack_link": m.ack_link if m.kind == "trigger" else None,
                           "recipient": m.recipient}, separators=(",", ":")).encode()

    def send(self, message: PageMessage) -> DeliveryResult:
        if not message.address:
            return DeliveryResult(False, error="no webhook URL for recipient")
        body = self.body(message)
        try:
            resp = _post(self.client, message.address, content=body, headers={
                "Content-Type": "application/json", "Idempotency-Key": message.page_id,
                "X-Vitalgate-Signature": sign_body(self.secret, body)})
        except httpx.HTTPError as exc:
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}", retryable=True)
        return _http_result(resp, message.page_id)


class PagerDutyChannel:
    """PagerDuty Events API v2: trigger/resolve with dedup_key = escalation id."""

    name = "pagerduty"

    def __init__(self, url: str = PAGERDUTY_EVENTS_URL, client: httpx.Client | None = None,
                 source: str = "vitalgate") -> None:
        self.url, self.client, self.source = url, client, source

    def event(self, m: PageMessage) -> dict[str, Any]:
        """The Events API v2 JSON."""
        ev: dict[str, Any] = {"routing_key": m.address, "event_action": m.kind,
                              "dedup_key": m.escalation_id}
        if m.kind == "trigger":
            ev["payload"] = {"summary": m.subject, "source": self.source,
                             "severity": _PD_SEVERITY.get(m.severity, "error"),
                             "custom_details": {"rule_id": m.rule_id, "link": m.link,
                                                "acknowledge": m.ack_link}}
            ev["links"] = [{"href": m.link, "text": "Open escalation"}]
        return ev

    def send(self, message: PageMessage) -> DeliveryResult:
        if not message.address:
            return DeliveryResult(False, error="no PagerDuty routing key for recipient")
        try:
            resp = _post(self.client, self.url, json=self.event(message),
                         headers={"Idempotency-Key": message.page_id})
        except httpx.HTTPError as exc:
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}", retryable=True)
        key = None
        with contextlib.suppress(ValueError, AttributeError):
            key = resp.json().get("dedup_key")
        return _http_result(resp, key)


class EmailChannel:
    """Plain-text e-mail via SMTP (optional STARTTLS and login)."""

    name = "email"

    def __init__(self, host: str, port: int = 25, sender: str = "vitalgate@localhost", *,
                 starttls: bool = False, username: str | None = None,
                 password: str | None = None, timeout: float = HTTP_TIMEOUT_S) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.username, self.password = starttls, username, password
        self.timeout = timeout

    def send(self, message: PageMessage) -> DeliveryResult:
        if not message.address:
            return DeliveryResult(False, error="no e-mail address for recipient")
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, message.address, message.subject
        msg["Message-ID"] = f"<{message.page_id}@vitalgate>"
        msg.set_content(message.text + "\n")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            return DeliveryResult(False, exc.smtp_code, error=f"SMTP {exc.smtp_code}",
                                  retryable=exc.smtp_code >= 400 and exc.smtp_code < 500)
        except (smtplib.SMTPException, OSError) as exc:
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}", retryable=True)
        if refused:
            return DeliveryResult(False, error=f"refused: {sorted(refused)}")
        return DeliveryResult(True, 250, msg["Message-ID"])


class SmsChannel:
    """Twilio-compatible SMS: form POST with basic auth to ``url``."""

    name = "sms"

    def __init__(self, url: str, account_sid: str, auth_token: str, from_number: str,
                 client: httpx.Client | None = None) -> None:
        self.url, self.sid, self.token, self.sender = url, account_sid, auth_token, from_number
        self.client = client

    def send(self, message: PageMessage) -> DeliveryResult:
        if not message.address:
            return DeliveryResult(False, error="no phone number for recipient")
        if message.kind != "trigger":
            return DeliveryResult(True, None, None, answer="resolve not sent by SMS")
        try:
            resp = _post(self.client, self.url, auth=(self.sid, self.token),
                         data={"To": message.address, "From": self.sender,
                               "Body": message.text[:1600]},
                         headers={"Idempotency-Key": message.page_id})
        except httpx.HTTPError as exc:
            return DeliveryResult(False, error=f"{type(exc).__name__}: {exc}", retryable=True)
        sid = None
        with contextlib.suppress(ValueError, AttributeError):
            sid = resp.json().get("sid")
        return _http_result(resp, sid)
