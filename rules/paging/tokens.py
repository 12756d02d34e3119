"""Signed one-click acknowledge links and webhook body signatures (HMAC-SHA256).

An ack token is ``<base64url(escalation_id)>.<expiry epoch>.<hex hmac>``; the
HMAC covers the id and the expiry, so neither can be changed, and the
server's ``secret_key`` is the key (derived per purpose, never used raw).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime


class AckTokenError(ValueError):
    """A token that is malformed, tampered with or expired."""


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()


def make_ack_token(secret: str, escalation_id: str, expires: datetime) -> str:
    """A token acknowledging ``escalation_id`` until ``expires`` (aware)."""
    eid = base64.urlsafe_b64encode(escalation_id.encode()).decode().rstrip("=")
    body = f"{eid}.{int(expires.timestamp())}"
    mac = hmac.new(_key(secret, "ack"), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{mac}"


def verify_ack_token(secret: str, token: str, now: datetime) -> str:
    """The escalation id of a valid token; raises :class:`AckTokenError` otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise AckTokenError("malformed acknowledge token")
    body = f"{parts[0]}.{parts[1]}"
    want = hmac.new(_key(secret, "ack"), body.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, parts[2]):
        raise AckTokenError("acknowledge token signature does not match")
    if now.timestamp() >= int(parts[1]):
        raise AckTokenError("acknowledge token expired")
    try:
        return base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise AckTokenError("malformed acknowledge token") from None


def sign_body(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the ``X-Vitalgate-Signature`` header value of a webhook body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret``."""
    return hmac.compare_digest(sign_body(secret, body), header or "")
