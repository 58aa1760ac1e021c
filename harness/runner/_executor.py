"""Scenarios drive, checks judge: each scenario runs at most once, every check of it judges its
recording. The same path serves `gwconf run` (through pytest), the in-process runs of the
project's tests, and `gwconf judge` (recordings read from disk, nothing driven)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.checks._judge import judge_check, resolve_blocked, skipped, unmet_need
from harness.checks._registry import SCENARIOS, Check, catalogue
from harness.config._profile import GatewayProfile
from harness.errors import ConfigError
from harness.gateway._env import CaptureSource, RunEnv
from harness.records._outcome import Outcome
from harness.records._recording import Recording, RunFacts
from harness.scenarios._driver import drive

RECORDINGS_DIR = "recordings"
FACTS_FILE = "run-facts.json"


class Recorder:
    """Runs each scenario the first time a check needs it and keeps its recording (on disk too,
    when given a directory: that is what `gwconf judge` reads)."""

    def __init__(self, env: RunEnv, profile: GatewayProfile, captures: CaptureSource,
                 store: Path | None = None) -> None:
        self.env = env
        self.profile = profile
        self.captures = captures
        self.store = store
        self.facts = env.facts(profile)
        self.recordings: dict[str, Recording] = {}

    def recording(self, name: str) -> Recording:
        if name not in self.recordings:
            judged_by = sum(1 for c in catalogue().values() if c.scenario == name)
            recording = drive(SCENARIOS[name], self.env, self.profile, self.captures, judged_by)
            self.recordings[name] = recording
            if self.store is not None:
                save_recording(self.store, recording)
        return self.recordings[name]

    def outcome(self, check: Check) -> Outcome:
        reason = unmet_need(check, self.profile, self.facts)
        if reason:
            return skipped(check, reason)
        return judge_check(check, self.recording(check.scenario), self.profile, self.facts)

    def run(self, checks: Iterable[Check]) -> list[Outcome]:
        checks = list(checks)
        self.drive_waiting([c for c in checks if not unmet_need(c, self.profile, self.facts)])
        return resolve_blocked([self.outcome(c) for c in checks])

    def drive_waiting(self, checks: list[Check]) -> None:
        """The scenarios these checks need that mostly wait, driven side by side first: a run then
        costs the longest of their waits, not the sum."""
        names = sorted({c.scenario for c in checks if SCENARIOS[c.scenario].waits} - set(self.recordings))
        if len(names) > 1:
            with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="gwconf-scenario") as pool:
                list(pool.map(self.recording, names))


def judge_recordings(checks: Iterable[Check], recordings: dict[str, Recording], profile: GatewayProfile,
                     facts: RunFacts, required: Iterable[str] = ()) -> list[Outcome]:
    """Verdicts from stored recordings only. A check whose scenario was not recorded is left
    out (it was not selected, or it is newer than the run), unless it is `required` (the run
    judged it): then it is an error, never silently dropped."""
    required = set(required)
    outcomes = []
    for check in checks:
        reason = unmet_need(check, profile, facts)
        if reason:
            if check.id in required or check.scenario in recordings:
                outcomes.append(skipped(check, reason))
        elif check.scenario in recordings:
            outcomes.append(judge_check(check, recordings[check.scenario], profile, facts))
        elif check.id in required:
            outcomes.append(Outcome(check.id, check.title, check.level, check.category, "error", 0.0,
                                    message=f"harness could not decide: the run recorded no scenario "
                                            f"{check.scenario!r}", spec=check.spec, observes=check.observes))
    return resolve_blocked(outcomes)


def client_requests(recordings: Iterable[Recording]) -> int:
    """How many requests the run sent to the gateway (fuzz campaigns included)."""
    return sum(len(r.exchanges) for r in recordings)


# -- on disk ----------------------------------------------------------------------------------

def save_recording(store: Path, recording: Recording) -> Path:
    path = store / RECORDINGS_DIR / f"{recording.scenario}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recording.to_dict(), ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def save_facts(store: Path, facts: RunFacts) -> None:
    path = store / RECORDINGS_DIR / FACTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(facts.to_dict(), indent=2) + "\n", encoding="utf-8")


def clear_recordings(store: Path) -> None:
    """A run starts with no recordings of an earlier run in its directory."""
    folder = store / RECORDINGS_DIR
    if folder.is_dir():
        for path in folder.glob("*.json"):
            path.unlink()


def load_recordings(store: Path) -> tuple[RunFacts, dict[str, Recording]]:
    """The facts and recordings of a run directory; a missing or broken file is a ConfigError."""
    folder = store / RECORDINGS_DIR
    facts_path = folder / FACTS_FILE
    if not facts_path.is_file():
        raise ConfigError(f"{folder}: no recordings here (is {store} a gwconf run directory?)")
    try:
        facts = RunFacts.from_dict(json.loads(facts_path.read_text(encoding="utf-8")))
        recordings = {}
        for path in sorted(folder.glob("*.json")):
            if path.name != FACTS_FILE:
                recording = Recording.from_dict(json.loads(path.read_text(encoding="utf-8")))
                recordings[recording.scenario] = recording
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{folder}: unreadable recording ({type(exc).__name__}: {exc})") from exc
    return facts, recordings
