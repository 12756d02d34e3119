"""Schemathesis against the OpenAPI schema: bounded examples per operation, never a 5xx.

Schemathesis 4's pytest plugin (``from_fixture``) does not work with the
pytest 9 in this environment, so the schema's per-operation Hypothesis
strategies are driven directly: one test per operation, each with a token of
a role allowed past the handler's role check (physician for care-plan
orders, coordinator for escalation actions, else admin) so that generated
inputs reach validation and the handler itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis  # a dev dependency: CI must run this suite, never skip it
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import Env, build_env
from tests.api.endpoints import ENDPOINTS
from tests.support.services import temporary_database

MAX_EXAMPLES = 30
OPERATIONS = sorted({(e.method, e.path.split("?")[0]) for e in ENDPOINTS}
                    | {("POST", "/api/v1/auth/token")})
PARAM_NAMES = {"{practice}": "{practice_id}", "{patient}": "{patient_id}",
               "{device}": "{serial}", "{hub}": "{hub_id}", "{quarantine}": "{item_id}",
               "{escalation}": "{escalation_id}", "{override}": "{override_id}",
               "{medication}": "{medication_id}",
               "{user}": "{user_id}", "/2026-02": "/{month}"}


def _openapi_path(path: str) -> str:
    for ours, theirs in PARAM_NAMES.items():
        path = path.replace(ours, theirs)
    return path


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres",
                                                               marks=pytest.mark.services)])
def fuzz_env(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
        yield from build_env(f"sqlite:///{path}")
        return
    with temporary_database() as url:
        yield from build_env(url)


def _role_for(method: str, path: str) -> str:
    if ("/care-plan" in path and method == "POST") or "/ccm-complex-months/" in path:
        return "physician"
    if method == "POST" and (path.startswith("/api/v1/escalations/")
                             or "/medications" in path or "/time-entries" in path):
        return "coordinator"
    return "admin"


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors(fuzz_env: Env, method: str, path: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_env.app)
    op = schema[_openapi_path(path)][method]
    headers = fuzz_env.headers(fuzz_env.a, _role_for(method, path))

    @given(case=op.as_strategy())
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: object) -> None:
        response = case.call(headers=headers)  # type: ignore[attr-defined]
        assert response.status_code < 500, (case.method, case.formatted_path,  # type: ignore[attr-defined]
                                            response.text[:500])

    run()
