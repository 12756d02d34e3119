-- Care-management time entries (each minute belongs to exactly one program).
CREATE TABLE time_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    practice_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    program TEXT NOT NULL,
    activity TEXT NOT NULL,
    started_at TEXT NOT NULL,
    minutes INTEGER NOT NULL CHECK (minutes > 0 AND minutes <= 480),
    interactive INTEGER NOT NULL,
    performed_by TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
CREATE INDEX time_entries_patient ON time_entries (patient_id, started_at);
CREATE INDEX reading_days_practice ON reading_days (practice_id, day);
