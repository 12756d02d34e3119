"""Patient page charts: raw points over 30 days, daily means from the database over 90."""

from __future__ import annotations

from tests.api.conftest import Env
from tests.api.test_web import web_login


def test_30_and_90_day_charts_render(env: Env) -> None:
    client = web_login(env, "coordinator")
    for days in (30, 90):
        page = client.get(f"/patients/{env.a.patient}?days={days}")
        assert page.status_code == 200
        assert "<svg" in page.text and "Weight" in page.text
