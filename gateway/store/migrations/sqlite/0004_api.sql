-- API: users, append-only audit log, care-plan overrides, login attempts,
-- hub MQTT credentials (SQLite).
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    email TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    password_hash TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE INDEX users_practice ON users (practice_id);
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    practice_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    patient_id TEXT,
    client_ip TEXT
);
CREATE INDEX audit_log_practice ON audit_log (practice_id, at);
-- audit_log is append-only: the store offers no update or delete for it.
-- (A trigger would need ';' inside a statement, which the migration splitter
-- does not support; PostgreSQL additionally has rules that ignore changes.)
CREATE TABLE care_plan_overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    rule_id TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    enabled INTEGER NOT NULL DEFAULT 1,
    ordered_by TEXT NOT NULL,
    ordered_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE INDEX care_plan_overrides_patient ON care_plan_overrides (patient_id, rule_id);
CREATE TABLE login_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    at TEXT NOT NULL,
    success INTEGER NOT NULL
);
CREATE INDEX login_attempts_key ON login_attempts (username, client_ip, at);
CREATE TABLE hub_credentials (
    hub_id TEXT PRIMARY KEY REFERENCES hubs(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    mqtt_username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
