"""The notification trace as rows for the API (``create_app(notification_trace=...)``).

``store.notification_trace(escalation_id)`` gives :class:`TraceEntry` objects;
:func:`trace_rows` turns them into the mappings the escalation page and the
JSON detail show (``at``, ``channel``, ``recipient``, ``status``, plus ``kind``,
``step`` and ``what``).  Recipients are shown by name from the policy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.store.paging_store import TraceEntry


def trace_row(e: TraceEntry, names: dict[str, str] | None = None) -> dict[str, Any]:
    """One trace entry as a plain mapping (empty strings for notes' channel/recipient)."""
    who = (names or {}).get(e.recipient or "", e.recipient or "")
    return {"at": e.at, "channel": e.channel or "", "recipient": who,
            "status": e.result, "kind": e.kind or "", "what": e.what,
            "step": None if e.step is None else e.step + 1}


def trace_rows(store: Any) -> Callable[[str], list[dict[str, Any]]]:
    """``notification_trace`` for ``api.app.create_app``: rows of one escalation."""
    def rows(escalation_id: str) -> list[dict[str, Any]]:
        engine = getattr(store, "paging_engine", None)
        names: dict[str, str] = {}
        if engine is not None:
            try:
                esc = store.get_escalation(escalation_id)
                contacts = engine.policy_for_practice(esc.practice_id).contacts
                names = {pid: c.name for pid, c in contacts.items()}
            except Exception:  # noqa: BLE001 - names are a nicety; ids still show
                names = {}
        return [trace_row(e, names) for e in store.notification_trace(escalation_id)]
    return rows
