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


def test_queue_says_when_it_shows_only_the_most_urgent(env: Env) -> None:
    from datetime import timedelta

    from api import web
    from gateway.escalations import Severity, Trigger

    for i in range(5):
        env.store.record_trigger(Trigger(env.a.practice, env.a.patient, f"extra.{i}", 1,
                                         Severity.ROUTINE, env.clock() - timedelta(hours=i),
                                         "x", {}, {}), env.clock())
    total = env.store.count_escalations(env.a.practice)
    client = web_login(env, "coordinator")
    old = web.QUEUE_PAGE_ROWS
    web.QUEUE_PAGE_ROWS = 3
    try:
        page = client.get("/queue").text
    finally:
        web.QUEUE_PAGE_ROWS = old
    assert f"Showing the 3 most urgent of {total}" in page
    assert "Showing the" not in client.get("/queue").text
