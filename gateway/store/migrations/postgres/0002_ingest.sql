-- Ingest state: last hub status (retained / last will) and per-device status.
CREATE TABLE hub_status (
    hub_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    status_at TIMESTAMPTZ NOT NULL,
    outbox_depth INTEGER,
    outbox_oldest_s DOUBLE PRECISION,
    agent_version TEXT NOT NULL DEFAULT '',
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE device_status (
    serial TEXT PRIMARY KEY,
    hub_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    battery INTEGER,
    clock_offset_s DOUBLE PRECISION,
    firmware TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    last_seen TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX device_status_hub ON device_status (hub_id);
