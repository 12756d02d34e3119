-- Paging outbox: pages written in the escalation change's transaction, the
-- policy position of each escalation, and every delivery attempt.
CREATE TABLE pages (
    id TEXT PRIMARY KEY,
    escalation_id TEXT NOT NULL REFERENCES escalations(id),
    practice_id TEXT NOT NULL,
    round_no INTEGER NOT NULL DEFAULT 0,
    step INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('trigger', 'resolve')),
    due_at TIMESTAMPTZ NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    lease_until TIMESTAMPTZ,
    leased_by TEXT,
    tries INTEGER NOT NULL DEFAULT 0,
    provider_answer TEXT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE INDEX pages_due ON pages (status, due_at);
CREATE INDEX pages_escalation ON pages (escalation_id, created_at);
CREATE TABLE paging_state (
    escalation_id TEXT PRIMARY KEY REFERENCES escalations(id),
    practice_id TEXT NOT NULL,
    severity TEXT NOT NULL,
    round_no INTEGER NOT NULL DEFAULT 0,
    step INTEGER NOT NULL,
    repeats_done INTEGER NOT NULL DEFAULT 0,
    next_due_at TIMESTAMPTZ,
    stopped BOOLEAN NOT NULL DEFAULT FALSE,
    stop_reason TEXT,
    stopped_at TIMESTAMPTZ,
    lease_until TIMESTAMPTZ,
    leased_by TEXT
);
CREATE INDEX paging_state_due ON paging_state (stopped, next_due_at);
CREATE TABLE page_attempts (
    id BIGSERIAL PRIMARY KEY,
    page_id TEXT NOT NULL REFERENCES pages(id),
    escalation_id TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    worker TEXT NOT NULL,
    ok BOOLEAN NOT NULL,
    status_code INTEGER,
    provider_id TEXT,
    error TEXT
);
CREATE INDEX page_attempts_escalation ON page_attempts (escalation_id, id);
-- Policy notes (skipped steps, queue-only, late) shown in the notification trace.
CREATE TABLE paging_notes (
    id BIGSERIAL PRIMARY KEY,
    escalation_id TEXT NOT NULL REFERENCES escalations(id),
    at TIMESTAMPTZ NOT NULL,
    step INTEGER,
    note TEXT NOT NULL
);
CREATE INDEX paging_notes_escalation ON paging_notes (escalation_id, id);
