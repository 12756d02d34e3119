-- Medications as recorded by the care team (for call prep; the EHR stays the source).
CREATE TABLE medications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    name TEXT NOT NULL,
    dose TEXT NOT NULL DEFAULT '',
    frequency TEXT NOT NULL DEFAULT '',
    started_on TEXT,
    note TEXT NOT NULL DEFAULT '',
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    stopped_at TEXT,
    stopped_by TEXT,
    stop_reason TEXT
);
CREATE INDEX medications_patient ON medications (patient_id, recorded_at);
