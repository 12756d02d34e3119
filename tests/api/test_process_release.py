"""The process-wired app releases a quarantined payload through ingest's real release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from gateway.model import DeviceKind
from gateway.process import Gateway
from gateway.settings import Settings
from gateway.store import NewQuarantine, open_store
from gateway.store.api_store import User
from simulators.loadgen import readings_payload, seed_fleet


def test_release_over_http_stores_the_readings(tmp_path: Path) -> None:
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        store.migrate()
        hub = seed_fleet(store, 1, kinds=(DeviceKind.BP_CUFF,))[0]
        store.create_user(User("u-coord", hub.practice_id, "c@x.example", "coordinator",
                               created_at=now))
        payload = readings_payload(hub, DeviceKind.BP_CUFF, ["held-1"],
                                   measured_at=now + timedelta(days=2), received_at=now)
        item = store.add_quarantine(NewQuarantine(
            topic=f"vitalgate/v1/hubs/{hub.hub_id}/readings", reason_code="time_future",
            reason="measured time in the future", payload=payload.decode(),
            payload_size=len(payload), received_at=now, hub_id=hub.hub_id,
            practice_id=hub.practice_id, reading_id="held-1"))
        gw = Gateway(Settings(secret_key="k" * 40), clock=lambda: now, store=store)
        app = gw.app()
        token = app.state.ctx.tokens.issue(store.get_user("u-coord"))[0]
        client = TestClient(app)
        resp = client.post(f"/api/v1/quarantine/{item}/release",
                           headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "released"
        assert store.reading_ids(hub.patient_id) == ["held-1"]
    finally:
        store.close()
