"""Gateways that behave differently from the reference but correctly: the checks must accept them.

A check that only knows the reference's way fails every other right answer. These variants are
the other right answers the checks claim to accept (a loud refusal through the async path, a
gateway that declares idempotency keys), each with the defect it must still catch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from harness.checks._registry import load_suites
from harness.paths import GATEWAYS_DIR, SUITES_DIR
from harness.reference import build_app
from harness.reference.app import GatewayApp
from harness.runner._inprocess import run_in_process
from tests.mutants import UnknownModelFailsItsJob
from tests.test_mutation import FAST, PROFILE, TEMPLATE, not_passed

IDEMPOTENCY_HEADER = "Idempotency-Key"


class HonoursIdempotencyKeys(GatewayApp):
    """An Idempotency-Key seen before answers with the job it created, and starts no new work."""

    def __init__(self, gateway: Any) -> None:
        super().__init__(gateway)
        self.by_key: dict[str, str] = {}

    async def images_generations(self, request: Request) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key and self.by_key.get(key) in self.jobs:
            return JSONResponse(self.jobs[self.by_key[key]].view(), status_code=202)
        response = await super().images_generations(request)
        if key and response.status_code == 202:
            self.by_key[key] = json.loads(bytes(response.body))["id"]
        return response


def factory(app_cls: type[GatewayApp]) -> Any:
    return lambda config: build_app(config, app_cls=app_cls).app


def test_a_loud_refusal_through_the_async_path_passes_map_007() -> None:
    outcomes = run_in_process(PROFILE, factory(UnknownModelFailsItsJob), timeouts=FAST, template_vars=TEMPLATE)
    assert not_passed(outcomes) == {}


@pytest.fixture(scope="module")
def idempotent_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("idempotent")
    text = PROFILE.read_text().replace('health_path = "/health"\n',
                                       f'health_path = "/health"\nidempotency_header = "{IDEMPOTENCY_HEADER}"\n')
    assert IDEMPOTENCY_HEADER in text
    (folder / "reference.toml").write_text(text)
    (folder / "reference.config.json.j2").write_text((GATEWAYS_DIR / "reference.config.json.j2").read_text())
    return folder / "reference.toml"


def duplicate_check() -> list:
    return [load_suites(SUITES_DIR)["ASYNC-013"]]


def test_declared_idempotency_keys_are_judged_by_their_semantics(idempotent_profile: Path) -> None:
    outcomes = run_in_process(idempotent_profile, factory(HonoursIdempotencyKeys), checks=duplicate_check(),
                              timeouts=FAST, template_vars=TEMPLATE)
    assert not_passed(outcomes) == {}


def test_a_declared_idempotency_key_that_is_ignored_fails(idempotent_profile: Path) -> None:
    outcomes = run_in_process(idempotent_profile, factory(GatewayApp), checks=duplicate_check(),
                              timeouts=FAST, template_vars=TEMPLATE)
    assert set(not_passed(outcomes)) == {"ASYNC-013"}
