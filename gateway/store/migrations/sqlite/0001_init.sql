-- Registry, readings, day rollup and quarantine (SQLite).
CREATE TABLE practices (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL,
    display_units TEXT NOT NULL DEFAULT 'us'
);
CREATE TABLE patients (
    id TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    mrn TEXT NOT NULL,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    birth_date TEXT,
    timezone TEXT NOT NULL,
    UNIQUE (practice_id, mrn)
);
CREATE TABLE enrollments (
    patient_id TEXT PRIMARY KEY REFERENCES patients(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    programs TEXT NOT NULL,
    conditions TEXT NOT NULL,
    consent_date TEXT,
    supervising_physician_id TEXT,
    monitoring_start TEXT,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE devices (
    serial TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    kind TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT ''
);
CREATE TABLE hubs (
    id TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    patient_id TEXT REFERENCES patients(id),
    mqtt_username TEXT
);
CREATE TABLE device_assignments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_serial TEXT NOT NULL REFERENCES devices(serial),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    hub_id TEXT NOT NULL REFERENCES hubs(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    start_at TEXT NOT NULL,
    end_at TEXT
);
CREATE INDEX device_assignments_serial ON device_assignments (device_serial, start_at);
-- Every reading id ever stored: dedupe survives retention deleting old readings.
CREATE TABLE reading_ids (
    id TEXT PRIMARY KEY
);
CREATE TABLE readings (
    id TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    device_serial TEXT NOT NULL,
    hub_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    measured_at TEXT NOT NULL,
    device_time TEXT,
    clock_offset_s REAL,
    received_at TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    source TEXT NOT NULL,
    flags TEXT NOT NULL DEFAULT '',
    sequence INTEGER,
    weight REAL, systolic REAL, diastolic REAL, mean_arterial REAL, pulse REAL,
    spo2 REAL, perfusion_index REAL, glucose REAL, battery REAL,
    raw TEXT NOT NULL
);
CREATE INDEX readings_patient_time ON readings (patient_id, measured_at);
CREATE TABLE reading_days (
    practice_id TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    day TEXT NOT NULL,
    metric TEXT NOT NULL,
    device_count INTEGER NOT NULL DEFAULT 0,
    manual_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (patient_id, day, metric)
);
CREATE TABLE quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    practice_id TEXT,
    hub_id TEXT,
    topic TEXT NOT NULL,
    reading_id TEXT,
    reason_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    field TEXT,
    payload TEXT NOT NULL,
    payload_size INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    resolved_at TEXT,
    resolved_by TEXT
);
CREATE INDEX quarantine_status ON quarantine (status, received_at);
