"""Where the fixed cost of one `gwconf run` goes: run in a checkout, prints one JSON line.

    cd CHECKOUT && .venv/bin/python /path/to/bench/phases.py [-k EXPR] [-n N]

Wraps the run's phases (imports, mocks, egress sink, gateway start, pytest, reports, teardown) with
timers from outside, so the same script measures an older checkout too (bench.py runs it on both).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import tempfile
import time
from typing import Any

started = time.monotonic()
# The imports are a phase: the CLI and what its `run` command imports on use.
import harness.cli  # noqa: E402
import harness.report.console  # noqa: E402
import harness.report.diff  # noqa: E402
import harness.report.render  # noqa: E402
import harness.runner  # noqa: E402

imported = time.monotonic()
phases: dict[str, float] = {"imports": imported - started}


def timed(owner: Any, name: str, phase: str) -> None:
    original = getattr(owner, name, None)
    if original is None:
        return

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        begun = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            phases[phase] = phases.get(phase, 0.0) + time.monotonic() - begun

    setattr(owner, name, wrapper)


def main() -> None:
    import harness.gateway._session as session
    import harness.gateway.driver as driver
    import harness.report.render as render
    import harness.runner._runner as runner
    import harness.upstream.server as server

    timed(session, "load_cassettes", "cassettes")
    timed(session, "start_upstreams", "mocks start")
    timed(session, "start_sink", "egress sink start")
    timed(session, "start_gateway", "gateway start (until healthy)")
    timed(runner, "execute_suites", "pytest (collection + checks)")
    timed(render, "render_reports", "reports")
    timed(driver.StartedGateway, "stop", "teardown")
    timed(session, "stop_servers", "teardown")
    timed(server.ThreadedServer, "stop", "teardown")
    args = sys.argv[1:] or ["-k", "MAP-001"]
    with tempfile.TemporaryDirectory() as out:
        sys.argv = ["gwconf", "run", "--gateway", "gateways/reference.toml", "-q", "--out", out, *args]
        with contextlib.suppress(SystemExit):
            harness.cli.main()
    phases["total"] = time.monotonic() - started
    phases["other"] = phases["total"] - sum(v for k, v in phases.items() if k != "total")
    print(json.dumps({k: round(v, 3) for k, v in phases.items()}))


if __name__ == "__main__":
    main()
