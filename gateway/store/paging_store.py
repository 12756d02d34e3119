"""Persistence of the paging outbox (mixin of SqlStore).

How this works: pages are rows written by an escalation hook inside the
transaction of the escalation change that causes them (``insert_page`` and
friends take that transaction's cursor), so a crash never loses or doubles a
page.  Dispatchers claim due pending pages with a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL); a dispatcher that dies mid-send leaves the page
pending and, once the lease expires, another one re-sends it with the same
page id (the receiver's idempotency key).  ``paging_state`` is each
escalation's position in its policy, claimed the same way when its wait is
over.  Every delivery attempt and every policy note (skipped step, late,
queue only) is kept for :meth:`notification_trace`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_PAGE_COLS = ("id, escalation_id, practice_id, round_no, step, attempt, recipient, channel, "
              "kind, due_at, status, tries, provider_answer, last_error, created_at, sent_at")
_STATE_COLS = ("escalation_id, practice_id, severity, round_no, step, repeats_done, "
               "next_due_at, stopped, stop_reason, stopped_at")


@dataclass(frozen=True, slots=True)
class Page:
    """One message to one recipient on one channel."""

    id: str
    escalation_id: str
    practice_id: str
    round_no: int
    step: int
    attempt: int
    recipient: str
    channel: str
    kind: str  # trigger | resolve
    due_at: datetime
    status: str = "pending"  # pending | sent | failed | cancelled
    tries: int = 0
    provider_answer: str | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PagingState:
    """Where an escalation is in its paging policy."""

    escalation_id: str
    practice_id: str
    severity: str
    round_no: int
    step: int
    repeats_done: int
    next_due_at: datetime | None
    stopped: bool = False
    stop_reason: str | None = None
    stopped_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """One line of an escalation's notification trace."""

    at: datetime
    what: str  # attempt | note | cancelled | pending
    step: int | None
    recipient: str | None = None
    channel: str | None = None
    kind: str | None = None
    result: str = ""
    page_id: str | None = None


class PagingStoreMixin:
    """Pages, paging state, attempts and notes; mixed into SqlStore."""

    # provided by SqlStore
    _tx: Any
    _exec: Any
    _all: Any
    _ts: Any
    _from_ts: Any
    _bool: Any
    _for_update: str = ""
    _skip_locked: str = ""
    #: The paging engine installed by ``rules.paging.install_paging`` (if any).
    paging_engine: Any = None

    # -- rows ------------------------------------------------------------
    def _page(self, r: Sequence[Any]) -> Page:
        return Page(id=r[0], escalation_id=r[1], practice_id=r[2], round_no=int(r[3]),
                    step=int(r[4]), attempt=int(r[5]), recipient=r[6], channel=r[7], kind=r[8],
                    due_at=self._from_ts(r[9]), status=r[10], tries=int(r[11]),
                    provider_answer=r[12], last_error=r[13], created_at=self._from_ts(r[14]),
                    sent_at=self._from_ts(r[15]))

    def _state(self, r: Sequence[Any]) -> PagingState:
        return PagingState(escalation_id=r[0], practice_id=r[1], severity=r[2],
                           round_no=int(r[3]), step=int(r[4]), repeats_done=int(r[5]),
                           next_due_at=self._from_ts(r[6]), stopped=bool(r[7]),
                           stop_reason=r[8], stopped_at=self._from_ts(r[9]))

    # -- inside an escalation transaction ---------------------------------
    def insert_page(self, cur: Any, page: Page, now: datetime) -> None:
        """Add a pending page (in the caller's transaction)."""
        self._exec(cur, f"INSERT INTO pages ({_PAGE_COLS}) VALUES "
                        f"({', '.join('?' * 16)})",
                   (page.id, page.escalation_id, page.practice_id, page.round_no, page.step,
                    page.attempt, page.recipient, page.channel, page.kind,
                    self._ts(page.due_at), page.status, page.tries, page.provider_answer,
                    page.last_error, self._ts(now), self._ts(page.sent_at)))

    def cancel_pending_pages(self, cur: Any, escalation_id: str, kind: str = "trigger") -> int:
        """Cancel pages of ``kind`` not yet sent; returns how many."""
        c = self._exec(cur, "UPDATE pages SET status = 'cancelled', lease_until = NULL "
                            "WHERE escalation_id = ? AND kind = ? AND status = 'pending'",
                       (escalation_id, kind))
        return int(c.rowcount or 0)

    def sent_pages(self, cur: Any, escalation_id: str, kind: str = "trigger") -> list[Page]:
        """Pages of an escalation already delivered (oldest first)."""
        rows = self._exec(cur, f"SELECT {_PAGE_COLS} FROM pages WHERE escalation_id = ? AND "
                               "kind = ? AND status = 'sent' ORDER BY created_at, id",
                          (escalation_id, kind)).fetchall()
        return [self._page(r) for r in rows]

    def lock_paging_state(self, cur: Any, escalation_id: str) -> PagingState | None:
        """The escalation's paging state, locked for this transaction."""
        row = self._exec(cur, f"SELECT {_STATE_COLS} FROM paging_state WHERE "
                              f"escalation_id = ?{self._for_update}",
                         (escalation_id,)).fetchone()
        return None if row is None else self._state(row)

    def put_paging_state(self, cur: Any, s: PagingState) -> None:
        """Insert or replace the escalation's paging state (releases any lease)."""
        self._exec(cur, f"INSERT INTO paging_state ({_STATE_COLS}) VALUES "
                        f"({', '.join('?' * 10)}) ON CONFLICT (escalation_id) DO UPDATE SET "
                        "severity = excluded.severity, round_no = excluded.round_no, "
                        "step = excluded.step, repeats_done = excluded.repeats_done, "
                        "next_due_at = excluded.next_due_at, stopped = excluded.stopped, "
                        "stop_reason = excluded.stop_reason, stopped_at = excluded.stopped_at, "
                        "lease_until = NULL, leased_by = NULL",
                   (s.escalation_id, s.practice_id, s.severity, s.round_no, s.step,
                    s.repeats_done, self._ts(s.next_due_at), self._bool(s.stopped),
                    s.stop_reason, self._ts(s.stopped_at)))

    def add_paging_note(self, cur: Any, escalation_id: str, at: datetime, step: int | None,
                        note: str) -> None:
        """Record a policy decision (skipped step, late, queue only) for the trace."""
        self._exec(cur, "INSERT INTO paging_notes (escalation_id, at, step, note) "
                        "VALUES (?, ?, ?, ?)", (escalation_id, self._ts(at), step, note))

    # -- dispatcher side --------------------------------------------------
    def claim_due_pages(self, now: datetime, worker: str, lease_until: datetime,
                        limit: int = 50) -> list[Page]:
        """Claim due pending pages not leased by a live worker."""
        with self._tx() as cur:
            rows = self._exec(cur, f"SELECT {_PAGE_COLS} FROM pages WHERE status = 'pending' "
                                   "AND due_at <= ? AND (lease_until IS NULL OR lease_until "
                                   "< ?) ORDER BY due_at, id LIMIT ?"
                                   f"{self._for_update}{self._skip_locked}",
                              (self._ts(now), self._ts(now), int(limit))).fetchall()
            pages = [self._page(r) for r in rows]
            for p in pages:
                self._exec(cur, "UPDATE pages SET lease_until = ?, leased_by = ? WHERE id = ?",
                           (self._ts(lease_until), worker, p.id))
        return pages

    def finish_page(self, page: Page, now: datetime, worker: str, *, ok: bool,
                    status_code: int | None = None, provider_id: str | None = None,
                    answer: str | None = None, error: str | None = None,
                    retry_at: datetime | None = None) -> bool:
        """Record an attempt: sent when ``ok``, else pending again at ``retry_at`` or
        failed.  False when the page was no longer this worker's (cancelled/taken)."""
        with self._tx() as cur:
            self._exec(cur, "INSERT INTO page_attempts (page_id, escalation_id, at, worker, ok, "
                            "status_code, provider_id, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (page.id, page.escalation_id, self._ts(now), worker, self._bool(ok),
                        status_code, provider_id, error))
            if ok:
                c = self._exec(cur, "UPDATE pages SET status = 'sent', sent_at = ?, "
                                    "provider_answer = ?, tries = tries + 1, lease_until = NULL "
                                    "WHERE id = ? AND status IN ('pending', 'cancelled')",
                               (self._ts(now), answer, page.id))
            elif retry_at is not None:
                c = self._exec(cur, "UPDATE pages SET due_at = ?, tries = tries + 1, "
                                    "last_error = ?, lease_until = NULL, leased_by = NULL "
                                    "WHERE id = ? AND status = 'pending' AND leased_by = ?",
                               (self._ts(retry_at), error, page.id, worker))
            else:
                c = self._exec(cur, "UPDATE pages SET status = 'failed', tries = tries + 1, "
                                    "last_error = ?, lease_until = NULL WHERE id = ? AND "
                                    "status = 'pending'", (error, page.id))
            return bool(c.rowcount)

    def claim_due_paging(self, now: datetime, worker: str, lease_until: datetime,
                         limit: int = 50) -> list[str]:
        """Claim escalations whose policy wait is over; returns their ids."""
        with self._tx() as cur:
            rows = self._exec(cur, "SELECT escalation_id FROM paging_state WHERE stopped = ? "
                                   "AND next_due_at <= ? AND (lease_until IS NULL OR "
                                   "lease_until < ?) ORDER BY next_due_at LIMIT ?"
                                   f"{self._for_update}{self._skip_locked}",
                              (self._bool(False), self._ts(now), self._ts(now),
                               int(limit))).fetchall()
            ids = [r[0] for r in rows]
            for esc_id in ids:
                self._exec(cur, "UPDATE paging_state SET lease_until = ?, leased_by = ? "
                                "WHERE escalation_id = ?", (self._ts(lease_until), worker,
                                                            esc_id))
        return ids

    def page_status(self, page_id: str) -> str | None:
        """A page's status now (None when unknown)."""
        rows = self._all("SELECT status FROM pages WHERE id = ?", (page_id,))
        return str(rows[0][0]) if rows else None

    # -- reading ------------------------------------------------------------
    def list_pages(self, escalation_id: str) -> list[Page]:
        """Every page of an escalation, oldest first."""
        rows = self._all(f"SELECT {_PAGE_COLS} FROM pages WHERE escalation_id = ? "
                         "ORDER BY created_at, round_no, step, attempt, id", (escalation_id,))
        return [self._page(r) for r in rows]

    def get_paging_state(self, escalation_id: str) -> PagingState | None:
        """The escalation's position in its policy (None: never paged)."""
        rows = self._all(f"SELECT {_STATE_COLS} FROM paging_state WHERE escalation_id = ?",
                         (escalation_id,))
        return self._state(rows[0]) if rows else None

    def notification_trace(self, escalation_id: str) -> list[TraceEntry]:
        """Every page attempt, cancelled/pending page and policy note, by time."""
        pages = {p.id: p for p in self.list_pages(escalation_id)}
        out: list[TraceEntry] = []
        for r in self._all("SELECT page_id, at, ok, status_code, provider_id, error FROM "
                           "page_attempts WHERE escalation_id = ? ORDER BY id",
                           (escalation_id,)):
            p = pages[r[0]]
            result = (f"sent ({r[3]}{', ' + r[4] if r[4] else ''})" if r[2]
                      else f"failed: {r[5]}" + (f" ({r[3]})" if r[3] else ""))
            out.append(TraceEntry(self._from_ts(r[1]), "attempt", p.step, p.recipient,
                                  p.channel, p.kind, result, p.id))
        for p in pages.values():
            if p.status in ("cancelled", "pending"):
                out.append(TraceEntry(p.due_at, p.status, p.step, p.recipient, p.channel,
                                      p.kind, p.status if p.status == "pending"
                                      else "cancelled before delivery", p.id))
        for r in self._all("SELECT at, step, note FROM paging_notes WHERE escalation_id = ? "
                           "ORDER BY id", (escalation_id,)):
            out.append(TraceEntry(self._from_ts(r[0]), "note",
                                  None if r[1] is None else int(r[1]), result=r[2]))
        order = {"note": 0, "attempt": 1, "cancelled": 2, "pending": 3}
        return sorted(out, key=lambda e: (e.at, order[e.what]))
