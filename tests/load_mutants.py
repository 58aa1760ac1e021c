"""Reference gateways that break under concurrent jobs, served as `gwconf load` starts a gateway.

    python -m tests.load_mutants --mutant NAME --config FILE --port N
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import uvicorn

from harness.reference.app import GatewayApp, build_app


class ReusesJobIds(GatewayApp):
    """Draws job ids from a pool of five: concurrent jobs overwrite each other in the store."""

    counter = itertools.count()

    def new_job_id(self) -> str:
        return f"img_{next(self.counter) % 5}"


class LosesEveryFourthJob(GatewayApp):
    """Accepts every job, but forgets every fourth one as soon as it has answered the submit."""

    counter = itertools.count()

    async def answer(self, request: Any, owner: str, model: str, work: Any) -> Any:
        response = await super().answer(request, owner, model, work)
        if response.status_code == 202 and next(self.counter) % 4 == 3:
            self.jobs.pop(json.loads(bytes(response.body))["id"], None)
        return response


LOAD_MUTANTS: dict[str, type[GatewayApp]] = {"reuses-job-ids": ReusesJobIds, "loses-jobs": LosesEveryFourthJob}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mutant", choices=sorted(LOAD_MUTANTS), required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = json.loads(args.config.read_text(encoding="utf-8"))
    app = build_app(config, app_cls=LOAD_MUTANTS[args.mutant]).app
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
