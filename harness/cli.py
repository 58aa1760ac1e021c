"""The `gwconf` command line. A user mistake is one line on stderr and exit 2, never a traceback."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from harness.errors import ConfigError
from harness.paths import CASSETTES_DIR, SUITES_DIR

if TYPE_CHECKING:
    from harness.report.baseline import Baseline
    from harness.report.gate import GateResult

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Conformance and contract tests for AI gateways.")
cassettes_app = typer.Typer(no_args_is_help=True, help="Work with provider cassettes.")
app.add_typer(cassettes_app, name="cassettes")
baseline_app = typer.Typer(no_args_is_help=True, help="Keep a CI baseline of expected failures.")
app.add_typer(baseline_app, name="baseline")

EXIT_OK, EXIT_FAILURES, EXIT_CONFIG = 0, 1, 2


def print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"gwconf {version('gwconf')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            typer.echo("gwconf (not installed)")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main_options(
    _version: Annotated[bool, typer.Option("--version", callback=print_version, is_eager=True,
                                           help="print gwconf's version and exit")] = False,
) -> None:
    """Conformance and contract tests for AI gateways."""


@contextmanager
def config_errors() -> Iterator[None]:
    """A user mistake (ConfigError) becomes one line on stderr and exit 2."""
    try:
        yield
    except ConfigError as exc:
        typer.echo(f"gwconf: error: {exc}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


@app.command()
def run(
    gateway: Annotated[Path, typer.Option("--gateway", "-g", help="gateway profile (TOML)")],
    out: Annotated[Path, typer.Option(help="directory for run.json and reports")] = Path(
        "out/latest"),
    keyword: Annotated[str | None, typer.Option("-k", help="only checks matching this "
                                                 "pytest -k expression")] = None,
    workers: Annotated[int, typer.Option("-n", min=1, max=16, help="parallel workers")] = 1,
    baseline: Annotated[Path | None, typer.Option(help="previous run.json or expected-failures "
                                                  "file: exit 0 unless something got worse")
                        ] = None,
    cassettes: Annotated[Path, typer.Option(help="cassette directory")] = CASSETTES_DIR,
    suites: Annotated[Path, typer.Option(help="suites directory")] = SUITES_DIR,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
    upstream_port: Annotated[int | None, typer.Option(
        min=1, max=65531, help="serve the mocks on this port and the next four (as `gwconf upstreams --port`), "
        "for a gateway that is already running and configured with those URLs")] = None,
    ratchet: Annotated[bool, typer.Option(help="with --baseline: an expected failure that now passes fails "
                                          "the run (tighten the baseline)")] = False,
    no_pending: Annotated[bool, typer.Option("--no-pending", help="with --baseline: a failing check the "
                                             "baseline has not adopted yet fails the run")] = False,
    summary_file: Annotated[Path | None, typer.Option(help="append the Markdown summary to this file "
                                                      "(e.g. $GITHUB_STEP_SUMMARY)")] = None,
    max_images: Annotated[int | None, typer.Option(
        min=0, help="black-box profiles: stop sending paid requests once this many images were asked for")] = None,
    max_cost: Annotated[float | None, typer.Option(
        min=0, help="black-box profiles: stop once the declared prices (price_usd) add up to this (USD)")] = None,
    budget: Annotated[float | None, typer.Option(
        min=1, help="seconds for the whole run (default: derived from the profile's timeouts, printed at "
        "the start); checks left when it is spent end as errors")] = None,
) -> None:
    """Run the conformance catalogue against a gateway and write run.json and reports."""
    from harness.config._profile import load_profile
    from harness.runner._preflight import check_cassettes, check_out_dir

    with config_errors():
        check_out_dir(out)  # first, before the heavy imports: a bad --out is refused at once,
        load_profile(gateway)  # a broken profile and broken cassettes too (the runner checks the rest
        check_cassettes(cassettes)  # before anything starts)
    from rich.console import Console

    from harness.gateway._budget import Caps
    from harness.report.console import Progress, print_summary
    from harness.report.render import render_reports
    from harness.report.runjson import write_run
    from harness.runner._runner import RunOptions
    from harness.runner._runner import run as execute

    with config_errors():
        if (ratchet or no_pending) and not baseline:
            raise ConfigError("--ratchet and --no-pending judge a run against a baseline: pass --baseline too")
        base = load_baseline(baseline, gateway) if baseline else None
        with Progress(quiet=quiet) as progress:
            document = execute(RunOptions(profile=gateway, out=out, cassettes=cassettes,
                                          suites=suites, keyword=keyword, workers=workers,
                                          quiet=quiet, progress=progress, upstream_port=upstream_port,
                                          caps=Caps(max_images, max_cost), budget=budget,
                                          announce=progress.announce))
        result = judge_run(document, base, ratchet=ratchet, no_pending=no_pending) if base else None
        if result is not None:
            write_run(document, out / "run.json")  # now with its gate section
        written = render_reports([document], out)
        if summary_file:
            append_summary(summary_file, (out / "report.md").read_text(encoding="utf-8"))
    print_summary(document, Console(stderr=True), quiet=quiet)
    typer.echo(f"wrote {out / 'run.json'}" + "".join(f", {p.name}" for p in written))
    if result is not None:
        raise typer.Exit(gate_exit(result, out / "run.json"))
    raise typer.Exit(EXIT_OK if document["summary"]["verdict"] == "pass" else EXIT_FAILURES)


def load_baseline(path: Path, profile: Path | None = None) -> Baseline:
    """Read a baseline; with the profile at hand, refuse a version it has no set for before running."""
    from harness.config._profile import load_profile
    from harness.report import baseline

    loaded = baseline.load(path)
    if profile is not None:
        loaded.select(load_profile(profile).raw.get("version"))
    return loaded


def judge_run(document: dict, base: Baseline, *, ratchet: bool, no_pending: bool) -> GateResult:
    """Judge a run against its version's expectation set, and record the verdict in the document."""
    from harness.report.gate import judge

    key, expectations = base.select(document["gateway"].get("version"))
    result = judge(document, expectations, baseline=base.path, version_key=key, ratchet=ratchet,
                   pending_binding=no_pending)
    document["gate"] = result.to_dict()
    return result


def gate_exit(result: GateResult, run_json: Path) -> int:
    for line in result.lines(str(run_json)):
        typer.echo(line)
    return EXIT_OK if result.passed else EXIT_FAILURES


def append_summary(path: Path, markdown: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as summary:
            summary.write(markdown.rstrip("\n") + "\n\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot append the summary ({exc.strerror})") from exc


@app.command("gate")
def gate_command(
    run_json: Annotated[Path, typer.Argument(metavar="RUN.json", help="a run.json")],
    baseline: Annotated[Path, typer.Option(help="baseline file (or a previous run.json)")],
    ratchet: Annotated[bool, typer.Option(help="an expected failure that now passes fails the gate")] = False,
    no_pending: Annotated[bool, typer.Option("--no-pending", help="a failing check the baseline has not "
                                             "adopted yet fails the gate")] = False,
    summary_file: Annotated[Path | None, typer.Option(help="append the Markdown summary to this file")] = None,
) -> None:
    """Judge a stored run.json against a baseline, offline: exit 1 when the gate fails."""
    from harness.report import baseline as baselines
    from harness.report.markdown import render_markdown
    from harness.report.render import with_optional_fields
    from harness.report.runjson import read_run

    with config_errors():
        document = read_run(run_json)
        result = judge_run(document, baselines.load(baseline), ratchet=ratchet, no_pending=no_pending)
        if summary_file:
            append_summary(summary_file, render_markdown(with_optional_fields(document)))
    raise typer.Exit(gate_exit(result, run_json))


@baseline_app.command("update")
def baseline_update(
    run_json: Annotated[Path, typer.Argument(metavar="RUN.json", help="the run to tighten the baseline with")],
    baseline: Annotated[Path | None, typer.Option(help="baseline file to update or create (default: "
                                                  "gateways/NAME.expected.json beside the run's profile)")
                        ] = None,
) -> None:
    """Tighten a baseline with a run: drop expectations that now pass, adopt the run's checks."""
    from harness.report import baseline as baselines
    from harness.report.runjson import read_run

    with config_errors():
        document = read_run(run_json)
        path = baseline or baselines.default_path(document)
        before = baselines.load(path) if path.exists() else None
        if before is not None and before.is_run:
            raise ConfigError(f"{path}: is a run.json, not a baseline file; pass another --baseline to write")
        key, after = baselines.update(before, document)
        baselines.write(after, path)
    was = before.versions.get(key) if before else None
    now = after.versions[key]
    dropped = sorted(set(was.expected) - set(now.expected)) if was else []
    added = sorted(set(now.expected) - set(was.expected)) if was else sorted(now.expected)
    adopted = sorted(now.catalogue - (was.catalogue or frozenset())) if was and now.catalogue else []
    typer.echo(f"wrote {path} [{key}]: {len(now.expected)} expected failures"
               + (f"; dropped (now pass): {', '.join(dropped)}" if dropped else "")
               + (f"; newly expected: {', '.join(added)}" if added else "")
               + (f"; adopted: {', '.join(adopted)}" if adopted else ""))


@app.command()
def load(
    gateway: Annotated[Path, typer.Option("--gateway", "-g", help="gateway profile (TOML)")],
    jobs: Annotated[int, typer.Option(min=1, max=1_000_000, help="jobs (or sync requests) to submit")] = 100,
    concurrency: Annotated[int, typer.Option(min=1, max=10_000, help="jobs in flight at once")] = 10,
    out: Annotated[Path, typer.Option(help="directory for load.json")] = Path("out/load"),
    model: Annotated[str | None, typer.Option(help="alias to load (default: a DashScope image model)")] = None,
    bound: Annotated[float, typer.Option(min=0.1, help="seconds a job may take to reach a final state")] = 60.0,
    poll_interval: Annotated[float, typer.Option(min=0.01, max=60, help="seconds between a job's polls")] = 0.5,
    locustfile: Annotated[Path | None, typer.Option(
        help="write a locustfile for this gateway (distributed load) instead of running")] = None,
) -> None:
    """Submit N jobs with C in flight; report lost, duplicate-id and wrong-result jobs and latency."""
    from rich.console import Console

    from harness.runner._load import LoadOptions, print_load, run_load, write_locustfile

    with config_errors():
        if locustfile is not None:
            write_locustfile(gateway, locustfile, model)
            typer.echo(f"wrote {locustfile}; run: locust -f {locustfile} --headless -u {concurrency} "
                       f"-r {concurrency} --host URL  (distributed: add --master / --worker)")
            raise typer.Exit(EXIT_OK)
        document = run_load(LoadOptions(gateway, jobs, concurrency, out, model, bound, poll_interval))
    print_load(document, Console(stderr=True))
    typer.echo(json.dumps(document, separators=(",", ":")))
    raise typer.Exit(EXIT_OK if document["verdict"] == "pass" else EXIT_FAILURES)


@app.command()
def judge(
    run_dir: Annotated[Path, typer.Argument(help="the --out directory of an earlier gwconf run")],
    suites: Annotated[Path, typer.Option(help="suites directory")] = SUITES_DIR,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no summary table")] = False,
) -> None:
    """Re-judge a run's recordings with the current catalogue, offline; rewrite run.json and reports."""
    from rich.console import Console

    from harness.report.console import print_summary
    from harness.report.render import render_reports
    from harness.runner._rejudge import rejudge

    with config_errors():
        document = rejudge(run_dir, suites)
        written = render_reports([document], run_dir)
    print_summary(document, Console(stderr=True), quiet=quiet)
    typer.echo(f"wrote {run_dir / 'run.json'}" + "".join(f", {p.name}" for p in written))
    raise typer.Exit(EXIT_OK if document["summary"]["verdict"] == "pass" else EXIT_FAILURES)


@app.command()
def checks(
    as_json: Annotated[bool, typer.Option("--json", help="print the catalogue as JSON")] = False,
    suites: Annotated[Path, typer.Option(help="suites directory")] = SUITES_DIR,
) -> None:
    """Print the check catalogue."""
    from harness.checks._registry import load_suites

    with config_errors():
        catalogue = load_suites(suites)
    if as_json:
        typer.echo(json.dumps([c.to_dict() for c in catalogue.values()], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"gwconf checks ({len(catalogue)})")
    for column in ("id", "level", "needs", "title"):
        table.add_column(column)
    table.add_column("spec", overflow="fold")
    for c in catalogue.values():
        table.add_row(c.id, c.level, c.needs, c.title, c.spec)
    Console().print(table)


@app.command()
def upstreams(
    cassettes: Annotated[Path, typer.Option(help="cassette directory")] = CASSETTES_DIR,
    port: Annotated[int | None, typer.Option(min=1, max=65531, help="first port: dashscope, then openai, replicate, "
                                             "dashscope-intl and dashscope-us on the next four")] = None,
) -> None:
    """Serve the mock upstreams until interrupted; print their URLs as shell assignments."""
    from harness.config._cassette import load_cassettes
    from harness.upstream import start_upstreams
    from harness.upstream.server import consecutive_ports

    with config_errors():
        loaded = load_cassettes(cassettes)
        ports = consecutive_ports(port) if port else None
        running = start_upstreams(loaded, cassettes / "files", ports)
    for name, value in running.env().items():
        typer.echo(f"{name}={value}")
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="one or more run.json files")],
    out: Annotated[Path, typer.Option(help="output directory")] = Path("out/latest"),
) -> None:
    """Render HTML, Markdown and JUnit from run.json; several runs also give a matrix."""
    from harness.report.render import render_reports
    from harness.report.runjson import read_run

    with config_errors():
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out}: --out must be a directory, and this is a file")
        documents = [read_run(p) for p in runs]
        written = render_reports(documents, out, [p.parent for p in runs])
    for path in written:
        typer.echo(f"wrote {path}")


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="the earlier run.json")],
    new: Annotated[Path, typer.Argument(help="the later run.json")],
) -> None:
    """List regressions, fixes and new checks between two runs; exit 1 on any regression."""
    from harness.report.diff import diff_runs
    from harness.report.runjson import read_run

    with config_errors():
        result = diff_runs(read_run(old), read_run(new))
    for line in result.lines():
        typer.echo(line)
    raise typer.Exit(EXIT_FAILURES if result.has_regressions else EXIT_OK)


@cassettes_app.command("validate")
def cassettes_validate(
    directory: Annotated[Path, typer.Argument(help="cassette directory")] = CASSETTES_DIR,
) -> None:
    """Check every cassette against the cassette schema and its provider's wire schemas."""
    from harness.config._cassette import cassette_files
    from harness.config._cassette_check import validate_tree

    with config_errors():
        if not cassette_files(directory):
            raise ConfigError(f"{directory}: no cassettes (*.yaml) found")
        problems = validate_tree(directory)
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        raise typer.Exit(EXIT_FAILURES)
    typer.echo(f"{directory}: all cassettes valid")


@app.command()
def record(
    provider: Annotated[str, typer.Option(help="dashscope, openai or replicate")],
    scenario: Annotated[str, typer.Option(help="scenario name (the cassette's file name)")],
    request: Annotated[Path, typer.Option(help="JSON file: {method, path, body, headers?, models, capability}")],
    key_env: Annotated[str, typer.Option(help="environment variable holding the provider key")],
    poll: Annotated[bool, typer.Option(help="follow an async task to its end, recording each poll")] = False,
    base_url: Annotated[str | None, typer.Option(help="provider base URL (default: its public host)")] = None,
    cassettes: Annotated[Path, typer.Option(help="cassette directory")] = CASSETTES_DIR,
    i_mean_it: Annotated[bool, typer.Option("--live", help="required: this calls the real provider")] = False,
) -> None:
    """Record one scenario from the real provider (opt-in, scrubbed) into a cassette."""
    import os

    from harness.config._record import Recording
    from harness.config._record import record as make_recording
    from harness.runner._preflight import check_scenario_name

    with config_errors():
        check_scenario_name(scenario)  # before anything else: it becomes a path
        if not i_mean_it:
            raise ConfigError("recording calls the real provider and costs money: pass --live to confirm")
        if provider not in ("dashscope", "openai", "replicate"):
            raise ConfigError(f"--provider {provider!r}: must be dashscope, openai or replicate")
        key = os.environ.get(key_env)
        if not key:
            raise ConfigError(f"environment variable {key_env} (the provider key) is not set")
        try:
            spec = json.loads(request.read_text(encoding="utf-8"))
            recording = Recording(provider=provider, scenario=scenario, capability=spec["capability"],
                                  models=list(spec["models"]), method=spec.get("method", "POST"),
                                  path=spec["path"], body=spec.get("body"), headers=spec.get("headers", {}),
                                  poll=poll, base_url=base_url)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{request}: not a recording request ({type(exc).__name__}: {exc})") from exc
        out = make_recording(recording, key, cassettes / provider / f"{scenario}.yaml", cassettes / "files",
                             source=base_url or "provider public API")
    typer.echo(f"wrote {out} (provenance: live-recording); review it, then run gwconf cassettes validate")


def main() -> None:
    """`gwconf`: usage errors too become one line and exit 2 (not a usage box or a traceback)."""
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        typer.echo("gwconf: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        # click's ClickException family (typer vendors click, so match it by shape, not by class).
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        if type(exc).__name__ == "NoArgsIsHelpError":  # `gwconf` alone: the help, as before
            typer.echo(exc.format_message(), err=True)
            sys.exit(EXIT_CONFIG)
        ctx = getattr(exc, "ctx", None)
        where = f"gwconf {ctx.info_name}: " if ctx is not None and ctx.parent is not None else ""
        typer.echo(f"gwconf: error: {where}{' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
