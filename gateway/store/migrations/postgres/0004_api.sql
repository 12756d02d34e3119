-- API: users, append-only audit log, care-plan overrides, login attempts,
-- hub MQTT credentials (PostgreSQL).
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    email TEXT NOT NULL UNIQUE,
    full_name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    password_hash TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_practice ON users (practice_id);
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    practice_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    patient_id TEXT,
    client_ip TEXT
);
CREATE INDEX audit_log_practice ON audit_log (practice_id, at);
CREATE RULE audit_log_no_update AS ON UPDATE TO audit_log DO INSTEAD NOTHING;
CREATE RULE audit_log_no_delete AS ON DELETE TO audit_log DO INSTEAD NOTHING;
CREATE TABLE care_plan_overrides (
    id BIGSERIAL PRIMARY KEY,
    practice_id TEXT NOT NULL REFERENCES practices(id),
    patient_id TEXT NOT NULL REFERENCES patients(id),
    rule_id TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    ordered_by TEXT NOT NULL,
    ordered_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    revoked_by TEXT
);
CREATE INDEX care_plan_overrides_patient ON care_plan_overrides (patient_id, rule_id);
CREATE TABLE login_attempts (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    success BOOLEAN NOT NULL
);
CREATE INDEX login_attempts_key ON login_attempts (username, client_ip, at);
CREATE TABLE hub_credentials (
    hub_id TEXT PRIMARY KEY REFERENCES hubs(id),
    practice_id TEXT NOT NULL REFERENCES practices(id),
    mqtt_username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
