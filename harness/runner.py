"""`gwconf run`: mocks and gateway up, suites through pytest, run.json and reports out."""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import budget, preflight
from harness.context import ENV_VAR
from harness.errors import ConfigError
from harness.outcome import Outcome
from harness.paths import CASSETTES_DIR, SUITES_DIR
from harness.plugin import OutcomeCollector
from harness.redact import scrub
from harness.registry import Check, catalogue, load_suites
from harness.report.runjson import build_run, now_iso, tree_digest, write_run
from harness.session import Session, open_session
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
    budget: float | None = None  # seconds for the whole run; None: derived from the profile (harness/budget.py)
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
            "--gwconf-suites", str(options.suites), "-q", "--no-header", "-rN"]
    if options.keyword:
        args += ["-k", options.keyword]
    if options.workers > 1:
        args += ["-n", str(options.workers)]
    else:
        args += ["-p", "no:xdist"]
    return args + options.extra_pytest_args


def execute_suites(session: Session, options: RunOptions) -> list[Outcome]:
    collector = OutcomeCollector(options.progress)
    with tempfile.TemporaryDirectory(prefix="gwconf-pytest-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\npython_files = __gwconf_none__\n")
        sink = io.StringIO()
        with environ(ENV_VAR, session.env.to_json()), contextlib.redirect_stdout(sink):
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
    return sorted(outcomes.values(),
                  key=lambda o: order.index(o.check_id) if o.check_id in order else len(order))


def lost_outcome(check: Check) -> Outcome:
    """A check that was collected but never reported: its worker died. Never silently dropped."""
    return Outcome(check.id, check.title, check.level, check.category, "error", 0.0,
                   message="harness could not decide: the check's test process ended before it reported",
                   spec=check.spec)


def keep_gateway_log(source: Path, target: Path, secrets_: tuple[str, ...]) -> None:
    """The gateway's own output, scrubbed, beside the report: often the first thing to read."""
    try:
        text = source.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(scrub(text[-200_000:], secrets_), encoding="utf-8")


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


def run(options: RunOptions) -> dict[str, Any]:
    """Run the catalogue against the profile's gateway; return the run.json document."""
    check_keyword(options.keyword)
    profile = preflight.check_run(options.profile, options.out, options.cassettes)  # hook: before anything starts
    load_suites(options.suites)
    if not catalogue():
        raise ConfigError(f"{options.suites}: no checks registered")
    run_id = f"{now_iso().replace(':', '').replace('-', '')[:15]}-{secrets.token_hex(3)}"
    started_at = now_iso()
    # The rendered gateway config holds keys: it lives in a private temp dir, never in `out`.
    with budget.for_run(profile.timeouts, len(catalogue()), options.workers, options.budget,  # hook
                        options.announce), tempfile.TemporaryDirectory(prefix="gwconf-run-") as tmp, open_session(
            options.profile, options.cassettes, Path(tmp),
            upstream_ports=consecutive_ports(options.upstream_port) if options.upstream_port else None) as session:
        try:
            outcomes = execute_suites(session, options)
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
            "key_model": session.profile.key_model,
        }
        secrets_ = session.env.secrets
    document = build_run(
        outcomes,
        run_id=run_id,
        started_at=started_at,
        finished_at=now_iso(),
        gateway=gateway,
        cassettes={"digest": tree_digest(options.cassettes),
                   "count": len(list(options.cassettes.rglob("*.yaml")))},
        secrets=secrets_,
        options={"keyword": options.keyword, "workers": options.workers},
    )
    write_run(document, options.out / "run.json")
    return document
