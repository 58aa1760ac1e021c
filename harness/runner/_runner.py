"""`gwconf run`: mocks and gateway up, suites through pytest, run.json and reports out."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.checks._judge import resolve_blocked
from harness.checks._registry import Check, catalogue, load_suites
from harness.config._profile import load_profile
from harness.config._redact import scrub
from harness.errors import ConfigError
from harness.gateway import _run_budget as run_budget
from harness.gateway._budget import ENV_VAR as LIVE_ENV_VAR
from harness.gateway._budget import Caps, Ledger, LiveRun, prices, require_prices
from harness.gateway._env import ENV_VAR, RunEnv
from harness.gateway._session import Session, open_session
from harness.paths import CASSETTES_DIR, SUITES_DIR
from harness.plugin import OutcomeCollector
from harness.records._outcome import Outcome
from harness.report.runjson import build_run, cassettes_summary, now_iso, write_run
from harness.runner import _preflight as preflight
from harness.runner._executor import clear_recordings, client_requests, load_recordings, save_facts
from harness.upstream._intercept import Crossing
from harness.upstream.server import consecutive_ports


@dataclass
class RunOptions:
    profile: Path
    out: Path
    cassettes: Path = CASSETTES_DIR
    suites: Path = SUITES_DIR
    keyword: str | None = None
    workers: int = 1
    quiet: bool = False
    progress: Any = None
    upstream_port: int | None = None  # fixed mock ports, for a gateway configured by hand
    caps: Caps = field(default_factory=Caps)  # live budget of a black-box run
    budget: float | None = None  # seconds for the whole run; None: derived from the profile (gateway/_run_budget.py)
    announce: Callable[[str], None] | None = None  # where the run says its budget as it starts
    extra_pytest_args: list[str] = field(default_factory=list)


@contextlib.contextmanager
def environ(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def pytest_args(options: RunOptions, ini: Path) -> list[str]:
    args = [str(options.suites), "-c", str(ini), "--rootdir", str(options.suites),
            "-p", "harness.plugin", "-p", "no:cacheprovider", "-p", "no:randomly",
            # Checks raise no unraisable exceptions worth a warning, and the plugin's two forced
            # garbage collections at exit cost a one-check run 0.07 s.
            "-p", "no:unraisableexception",
            "--gwconf-suites", str(options.suites), "-q", "--no-header", "-rN"]
    if options.keyword:
        args += ["-k", options.keyword]
    if options.workers > 1:
        args += ["-p", "xdist.plugin", "-n", str(options.workers), "--dist", "loadgroup"]
    else:
        args += ["-p", "no:xdist"]
    return args + options.extra_pytest_args


def execute_suites(env: RunEnv, options: RunOptions) -> list[Outcome]:
    collector = OutcomeCollector(options.progress)
    with tempfile.TemporaryDirectory(prefix="gwconf-pytest-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\npython_files = __gwconf_none__\n")
        sink = io.StringIO()
        # Only the plugins named in pytest_args: autoloading every installed one (schemathesis',
        # hypothesis', anyio's, ...) cost about a second of imports per process, workers included.
        with environ(ENV_VAR, env.to_json()), environ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1"), \
                contextlib.redirect_stdout(sink):
            code = pytest.main(pytest_args(options, ini), plugins=[collector])
    if code == pytest.ExitCode.USAGE_ERROR:
        raise ConfigError(f"pytest refused the selection (-k {options.keyword!r}?): "
                          + " ".join(sink.getvalue().split())[-200:])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED,
                    pytest.ExitCode.NO_TESTS_COLLECTED):
        tail = " ".join(sink.getvalue().split())[-300:]
        raise ConfigError(f"{options.suites}: running the suites failed ({code.name}): {tail}")
    if code == pytest.ExitCode.NO_TESTS_COLLECTED or not collector.collected:
        raise ConfigError(f"no check matches -k {options.keyword!r}" if options.keyword
                          else f"{options.suites}: no checks collected")
    catalogue_now = load_suites(options.suites)
    outcomes = dict(collector.outcomes)
    for check_id in collector.ids:
        if check_id not in outcomes and check_id in catalogue_now:
            outcomes[check_id] = lost_outcome(catalogue_now[check_id])
    order = list(catalogue_now)
    # Each item judged alone; which failed precondition another failure explains is known only now.
    return resolve_blocked(sorted(outcomes.values(),
                                  key=lambda o: order.index(o.check_id) if o.check_id in order else len(order)))


def lost_outcome(check: Check) -> Outcome:
    """A check that was collected but never reported: its worker died. Never silently dropped."""
    return Outcome(check.id, check.title, check.level, check.category, "error", 0.0,
                   message="harness could not decide: the check's test process ended before it reported",
                   spec=check.spec, observes=check.observes)


def keep_gateway_log(source: Path, target: Path, secrets_: tuple[str, ...]) -> None:
    """The gateway's own output, scrubbed, beside the report: often the first thing to read."""
    try:
        text = source.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(scrub(text[-200_000:], secrets_), encoding="utf-8")


@contextlib.contextmanager
def live_budget(session: Session, options: RunOptions, tmp: Path) -> Iterator[None]:
    """A black-box run's checks charge their paid requests to one ledger and tape their exchanges
    under out/live/; what was spent is written to out/budget.json. Other runs: nothing."""
    if session.profile.mode != "black-box":
        yield
        return
    ledger = Ledger(tmp / "budget-ledger.json", options.caps)
    live = LiveRun(str(ledger.path), options.caps, prices(session.profile), str(options.out / "live"))
    try:
        with environ(LIVE_ENV_VAR, live.to_json()):
            yield
    finally:
        spend = {"caps": asdict(options.caps), "spent": asdict(ledger.spend())}
        (options.out / "budget.json").write_text(json.dumps(spend, indent=1), encoding="utf-8")


def write_crossings(crossings: list[Crossing], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps([asdict(c) for c in crossings], indent=1), encoding="utf-8")


def check_keyword(keyword: str | None) -> None:
    """Refuse a malformed -k before anything starts (pytest would say so only mid-run)."""
    if not keyword:
        return
    try:
        from _pytest.mark.expression import Expression  # pytest's own -k grammar

        Expression.compile(keyword)
    except ImportError:  # pragma: no cover - a pytest without it: pytest itself will judge
        return
    except SyntaxError as exc:
        raise ConfigError(f"-k {keyword!r}: not a valid selection ({exc.msg})") from exc


def check_budget(options: RunOptions) -> None:
    """A black-box run makes live calls: it needs a cap, and a cost cap needs prices."""
    profile = load_profile(options.profile)
    if profile.mode != "black-box":
        return
    if not options.caps:
        raise ConfigError(f"{options.profile}: a black-box run calls live providers; give --max-images "
                          "and/or --max-cost")
    require_prices(profile, options.caps)


def run(options: RunOptions) -> dict[str, Any]:
    """Run the catalogue against the profile's gateway; return the run.json document."""
    check_keyword(options.keyword)
    profile = preflight.check_run(options.profile, options.out, options.cassettes)  # before anything starts
    check_budget(options)
    load_suites(options.suites)
    if not catalogue():
        raise ConfigError(f"{options.suites}: no checks registered")
    run_id = f"{now_iso().replace(':', '').replace('-', '')[:15]}-{secrets.token_hex(3)}"
    started_at = now_iso()
    # The rendered gateway config holds keys: it lives in a private temp dir, never in `out`.
    with run_budget.for_run(profile.timeouts, len(catalogue()), options.workers, options.budget,
                            options.announce), tempfile.TemporaryDirectory(prefix="gwconf-run-") as tmp, open_session(
            options.profile, options.cassettes, Path(tmp),
            upstream_ports=consecutive_ports(options.upstream_port) if options.upstream_port else None) as session:
        # Workers keep each scenario's scrubbed recording in the run directory: `gwconf judge` reads them.
        env = dataclasses.replace(session.env, out_dir=str(options.out.resolve()), profile_arg=str(options.profile))
        clear_recordings(options.out)
        save_facts(options.out, env.facts(session.profile))
        try:
            with live_budget(session, options, Path(tmp)):
                outcomes = execute_suites(env, options)
            if session.intercept is not None:  # as deployed: which real host each request went to
                write_crossings(session.intercept.crossings, options.out / "crossings.json")
        finally:
            # Kept even when the suites could not run: it is what explains why.
            if session.gateway is not None:
                keep_gateway_log(session.gateway.log_path, options.out / "gateway.log", session.env.secrets)
        gateway = {
            "name": session.profile.name,
            "version": session.profile.raw.get("version"),
            "base_url": session.env.gateway_url,
            "profile": str(options.profile),
            "profile_digest": "sha256:" + session.profile.digest,
            "dialect": session.profile.dialect.name,
            "mode": session.profile.mode,
            "key_model": session.profile.key_model,
        }
        secrets_ = session.env.secrets
    document = build_run(
        outcomes,
        run_id=run_id,
        started_at=started_at,
        finished_at=now_iso(),
        gateway=gateway,
        cassettes=cassettes_summary(options.cassettes),
        secrets=secrets_,
        options={"keyword": options.keyword, "workers": options.workers},
        client_requests=client_requests(load_recordings(options.out)[1].values()),
    )
    write_run(document, options.out / "run.json")
    return document
