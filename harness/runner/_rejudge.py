"""`gwconf judge OUT_DIR`: the recordings of a run judged again by the current catalogue.

Nothing is driven: no gateway, no mock, no network, no subprocess. The profile is the one the
run named (with the bounds the run used); run.json is rewritten with the new verdicts and the
run's own identity (id, times, gateway, cassettes).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.checks._registry import load_suites
from harness.config._profile import Timeouts, load_profile
from harness.errors import ConfigError
from harness.paths import SUITES_DIR
from harness.report.runjson import build_run, now_iso, read_run, write_run
from harness.runner._executor import client_requests, judge_recordings, load_recordings


def rejudge(run_dir: Path, suites: Path = SUITES_DIR) -> dict[str, Any]:
    """The run.json document the current catalogue makes of `run_dir`'s recordings (written)."""
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: not a directory (give the --out directory of a gwconf run)")
    previous = read_run(run_dir / "run.json")
    facts, recordings = load_recordings(run_dir)
    profile = load_profile(Path(facts.profile_path))
    if facts.timeouts:
        profile = dataclasses.replace(profile, timeouts=Timeouts(**facts.timeouts))
    catalogue = load_suites(suites)
    outcomes = judge_recordings(catalogue.values(), recordings, profile, facts,
                                required=[c["check_id"] for c in previous["checks"]])
    document = build_run(
        outcomes,
        run_id=previous["run_id"],
        started_at=previous["started_at"],
        finished_at=previous["finished_at"],
        gateway=previous["gateway"],
        cassettes=previous["cassettes"],
        options={**previous.get("options", {}), "judged_at": now_iso()},
        client_requests=client_requests(recordings.values()),
    )
    write_run(document, run_dir / "run.json")
    return document
