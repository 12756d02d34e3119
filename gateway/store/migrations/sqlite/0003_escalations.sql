-- Escalations, their audited events, and rule timers (due times in the store).
CREATE TABLE escalations (
    id TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    rule_version INTEGER NOT NULL,
    severity TEXT NOT NULL,
    severity_rank INTEGER NOT NULL,
    status TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    trigger_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    summary TEXT NOT NULL,
    thresholds TEXT NOT NULL,
    evidence TEXT NOT NULL,
    late INTEGER NOT NULL DEFAULT 0,
    assignee TEXT,
    snoozed_until TEXT,
    acknowledged_at TEXT,
    acknowledged_by TEXT,
    resolved_at TEXT,
    resolved_by TEXT,
    disposition TEXT,
    trigger_count INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX escalations_one_open ON escalations (patient_id, rule_id)
    WHERE status <> 'resolved';
CREATE INDEX escalations_queue ON escalations (practice_id, status, severity_rank, opened_at);
CREATE TABLE escalation_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    escalation_id TEXT NOT NULL REFERENCES escalations(id),
    practice_id TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX escalation_events_esc ON escalation_events (escalation_id, id);
CREATE TABLE rule_timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    practice_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    due_at TEXT NOT NULL,
    lease_until TEXT,
    leased_by TEXT,
    UNIQUE (patient_id, kind, subject)
);
CREATE INDEX rule_timers_due ON rule_timers (due_at);
-- Each finding is applied once: re-evaluating a reading after a crash finds its key here.
CREATE TABLE escalation_triggers (
    patient_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    trigger_key TEXT NOT NULL,
    escalation_id TEXT NOT NULL,
    PRIMARY KEY (patient_id, rule_id, trigger_key)
);
-- How far the rules engine has evaluated committed readings (by ingest time).
CREATE TABLE rules_checkpoints (
    worker TEXT PRIMARY KEY,
    ingested_at TEXT NOT NULL
);
CREATE INDEX readings_ingested ON readings (ingested_at);
