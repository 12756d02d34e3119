"""Start paging inside ``vitalgate up`` (called by :mod:`gateway.process`).

With ``VITALGATE_PAGING_POLICY=/path/policy.yaml`` the policy (and its
``channels:`` section) is loaded, the hook installed and a dispatcher thread
runs :meth:`Dispatcher.run_once` every second.  Without it, every severity is
routed to the coordinator queue only, nothing is paged, and a log line says so.

``channels:`` section of the policy file (secrets by environment variable)::

    channels:
      webhook: {secret_env: VITALGATE_WEBHOOK_SECRET}
      pagerduty: {url: https://events.pagerduty.com/v2/enqueue}
      email: {host: smtp.example.org, port: 587, sender: pager@example.org,
              starttls: true, username: pager, password_env: VITALGATE_SMTP_PASSWORD}
      sms: {url: https://api.twilio.com/2010-04-01/Accounts/AC../Messages.json,
            account_sid: AC.., auth_token_env: VITALGATE_SMS_TOKEN, from: "+15550100"}
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from rules.paging.channels import (
    HTTP_TIMEOUT_S,
    PAGERDUTY_EVENTS_URL,
    Channel,
    EmailChannel,
    PagerDutyChannel,
    SmsChannel,
    WebhookChannel,
)
from rules.paging.dispatcher import Dispatcher
from rules.paging.outbox import install_paging
from rules.paging.policy import PolicyError, load_policy_file, queue_only_policy

log = logging.getLogger(__name__)

POLICY_ENV = "VITALGATE_PAGING_POLICY"
TICK_S = 1.0
#: After a wake-up, how long to let the triggering transaction commit before sending.
WAKE_DELAY_S = 0.01


def _secret(cfg: Mapping[str, Any], key: str) -> str | None:
    env = cfg.get(f"{key}_env")
    if env:
        value = os.environ.get(str(env))
        if value is None:
            raise PolicyError(f"channels: environment variable {env} is not set")
        return value
    v = cfg.get(key)
    return None if v is None else str(v)


def build_channels(raw: Mapping[str, Any], default_secret: str) -> dict[str, Channel]:
    """Channels from a policy file's ``channels:`` section.

    The HTTP channels share one pooled client: a page reuses a warm connection
    instead of paying a TCP (and TLS) handshake each time.
    """
    out: dict[str, Channel] = {}
    client = httpx.Client(timeout=HTTP_TIMEOUT_S)
    for name, cfg in raw.items():
        cfg = cfg or {}
        if name == "webhook":
            out[name] = WebhookChannel(_secret(cfg, "secret") or default_secret, client=client)
        elif name == "pagerduty":
            out[name] = PagerDutyChannel(str(cfg.get("url", PAGERDUTY_EVENTS_URL)),
                                         client=client)
        elif name == "email":
            out[name] = EmailChannel(str(cfg.get("host", "localhost")), int(cfg.get("port", 25)),
                                     str(cfg.get("sender", "vitalgate@localhost")),
                                     starttls=bool(cfg.get("starttls", False)),
                                     username=cfg.get("username"),
                                     password=_secret(cfg, "password"))
        elif name == "sms":
            out[name] = SmsChannel(str(cfg["url"]), str(cfg["account_sid"]),
                                   _secret(cfg, "auth_token") or "", str(cfg["from"]))
        else:
            raise PolicyError(f"channels: unknown channel {name!r}")
    return out


class PagingService:
    """The running paging side; ``stop()`` ends the dispatcher thread."""

    def __init__(self, dispatcher: Dispatcher | None) -> None:
        self.dispatcher = dispatcher
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if dispatcher is not None:
            self._thread = threading.Thread(target=self._loop, name="paging-dispatcher",
                                            daemon=True)
            self._thread.start()

    def notify(self) -> None:
        """Wake the dispatcher now (an escalation changed) instead of at the next tick."""
        self._wake.set()

    def _loop(self) -> None:
        assert self.dispatcher is not None
        while not self._stop.is_set():
            woken = self._wake.wait(TICK_S)
            self._wake.clear()
            if self._stop.is_set():
                break
            if woken:
                # the hook runs inside the escalation's transaction: give it a moment
                # to commit; a page not yet visible goes out on the next pass
                self._stop.wait(WAKE_DELAY_S)
            try:
                self.dispatcher.run_once()
            except Exception:  # keep paging alive: next tick retries
                log.exception("paging dispatcher failed; retrying on the next tick")

    def stop(self) -> None:
        """Stop the dispatcher thread (pages stay in the outbox for the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


def start_paging(settings: Any, store: Any,
                 clock: Callable[[], datetime] | None = None) -> PagingService:
    """Install the paging hook and, when a policy file is configured, the dispatcher."""
    clock = clock or (lambda: datetime.now(UTC))
    path = getattr(settings, "paging_policy", None) or os.environ.get(POLICY_ENV)
    if not path:
        install_paging(store, queue_only_policy(), clock=clock,
                       public_url=settings.public_url, secret_key=settings.secret_key)
        log.info("paging: no %s set; escalations go to the coordinator queue only "
                 "(no external channels, nothing is paged)", POLICY_ENV)
        return PagingService(None)
    policy, raw = load_policy_file(path)
    channels = build_channels(raw.get("channels") or {}, settings.secret_key)
    install_paging(store, policy, clock=clock, public_url=settings.public_url,
                   secret_key=settings.secret_key)
    log.info("paging: policy %s, channels %s", path, ", ".join(sorted(channels)) or "none")
    service = PagingService(Dispatcher(store, channels, clock, worker=f"pager-{os.getpid()}"))
    store.add_escalation_hook(lambda _cur, _esc, _event: service.notify())
    return service
