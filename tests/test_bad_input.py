"""Bad input, tried as a new user would: one line, exit 2, fast, and nothing left half-written.

Every case asserts the exit code, the one line (and what it names), a time bound, and that the
run left no output directory, run.json or cassette behind. The last tests run misbehaving
gateways (tests/gateways/misbehaving.py): one that stops answering after /health, one that
answers HTML 200 to everything.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.config._profile import Timeouts
from harness.gateway import _run_budget as budget
from harness.paths import CASSETTES_DIR, GATEWAYS_DIR, PROJECT_ROOT

GWCONF = [sys.executable, "-m", "harness"]
MISBEHAVING = PROJECT_ROOT / "tests" / "gateways" / "misbehaving.py"
KEY_ENV = {"GWCONF_BAD_INPUT_KEY": "gwk-bad-input-0123456789"}
# A case's time bound is in CPU seconds of the gwconf process and its children: on a shared
# 2-core machine, wall time measures the neighbours (a refusal of `--out /proc/x` takes about 1 s of
# wall time here when the machine is quiet, 3.4 s once when it was not). WALL_LIMIT catches hangs.
FAST = 8.0
WALL_LIMIT = 60.0

MODELS = ('[[models]]\nalias = "qwen-image-2.0-pro"\nprovider = "dashscope"\nupstream_model = "qwen-image-2.0-pro"\n'
          'capability = "image.generate"\n\n'
          '[[models]]\nalias = "gpt-image-1"\nprovider = "openai"\nupstream_model = "gpt-image-1"\n'
          'capability = "image.generate"\n')
HEAD = 'name = "bad"\nbase_url = "http://127.0.0.1:{port}"\napi_key_env = "GWCONF_BAD_INPUT_KEY"\n'
START = '[start]\ncommand = ["{python}", "-c", "pass"]\n'
GOOD = HEAD + START + MODELS


@dataclass
class Case:
    """One bad input: the gwconf arguments (with {tmp}, {profile}, {out}, {cassettes} filled in)."""

    args: list[str]
    needles: list[str]
    profile: str | None = None  # profile text written to {profile}
    bound: float = FAST
    code: int = 2
    files: dict[str, str] = field(default_factory=dict)  # extra files under {tmp}
    env: dict[str, str] = field(default_factory=dict)
    cassettes: str | None = None  # "copy": a copy of the real cassettes to break with `breaks`
    breaks: dict[str, tuple[str, str]] = field(default_factory=dict)  # file -> (old, new)
    encoding: str = "utf-8"  # of the profile file


def run_case(case: Case, tmp: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    values = {"tmp": str(tmp), "profile": str(tmp / "bad.toml"), "out": str(tmp / "out"),
              "cassettes": str(tmp / "cassettes")}
    if case.profile is not None:
        (tmp / "bad.toml").write_text(case.profile.replace("{tmp}", str(tmp)), encoding=case.encoding)
    for name, text in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{tmp}", str(tmp)), encoding="utf-8")
    if case.cassettes == "copy":
        shutil.copytree(CASSETTES_DIR, tmp / "cassettes")
        for name, (old, new) in case.breaks.items():
            path = tmp / "cassettes" / name
            text = path.read_text(encoding="utf-8")
            assert old in text, (name, old)
            path.write_text(text.replace(old, new, 1), encoding="utf-8")
    args = [a.format(**values) for a in case.args]
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    result = subprocess.run([*GWCONF, *args], capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
                            env={**os.environ, **KEY_ENV, **case.env})
    wall, after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    assert wall < WALL_LIMIT, f"took {wall:.1f}s of wall clock: {result.stderr}"
    return result, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def assert_refused(case: Case, result: subprocess.CompletedProcess[str], elapsed: float, tmp: Path) -> None:
    assert result.returncode == case.code, result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("gwconf: error: ") or case.code != 2, lines[0]
    for needle in case.needles:
        assert needle.replace("{tmp}", str(tmp)) in lines[0], lines[0]
    assert elapsed < case.bound, f"took {elapsed:.1f} CPU seconds: {lines[0]}"
    # Nothing half-written: no output directory, no run.json anywhere under the test's directory.
    assert not (tmp / "out").exists(), list((tmp / "out").rglob("*"))
    assert not list(tmp.rglob("run.json"))


def profile_with(**replace: str) -> str:
    text = GOOD
    for old, new in replace.items():
        text = text.replace(old.replace("__", " "), new)
    return text


RUN = ["run", "--gateway", "{profile}", "--out", "{out}"]
REFERENCE = ["run", "--gateway", str(GATEWAYS_DIR / "reference.toml")]
COPIED = [*REFERENCE, "--out", "{out}", "--cassettes", "{cassettes}"]  # with a broken copy of the cassettes
SECOND_DASHSCOPE = ('[[models]]\nalias = "qwen-image-2.0-pro"\nprovider = "dashscope"\n'
                    'upstream_model = "qwen-image-max"\ncapability = "image.generate"\n')
FALLBACK = ('[[fallbacks]]\nalias = "{alias}"\ncapability = "image.generate"\ntargets = [\n'
            '  {{ provider = "openai", upstream_model = "gpt-image-1" }},\n'
            '  {{ provider = "{provider}", upstream_model = "{model}" }},\n]\n')

def record_case(scenario: str, needles: list[str], *, provider: str = "dashscope", live: bool = True,
                key_env: str = "GWCONF_BAD_INPUT_KEY", request: str = "req.json", request_text: str = "{}") -> Case:
    args = ["record", "--provider", provider, "--scenario", scenario, "--request", "{tmp}/" + request,
            "--key-env", key_env, "--cassettes", "{cassettes}", *(["--live"] if live else [])]
    return Case(args, needles, files={"req.json": request_text})


CASES: dict[str, Case] = {
    # -- the profile ------------------------------------------------------------------------
    "profile-missing": Case(["run", "--gateway", "{tmp}/none.toml", "--out", "{out}"], ["none.toml", "cannot read"]),
    "profile-is-a-directory": Case(["run", "--gateway", "{tmp}", "--out", "{out}"], ["cannot read profile"]),
    "profile-invalid-toml": Case(RUN, ["bad.toml", "invalid TOML"], profile='name = "x"\nthis is not toml\n'),
    "profile-not-utf8": Case(RUN, ["bad.toml", "invalid TOML"], profile=GOOD.replace("bad", "caf\xe9"),
                             encoding="latin-1"),
    "profile-empty": Case(RUN, ["bad.toml", "name"], profile=""),
    "profile-no-models": Case(RUN, ["bad.toml", "models"], profile=HEAD),
    "profile-empty-models": Case(RUN, ["bad.toml", "models"], profile=HEAD + "models = []\n"),
    "profile-ftp-base-url": Case(RUN, ["bad.toml", "base_url"], profile=profile_with(
        **{"http://127.0.0.1:{port}": "ftp://127.0.0.1/"})),
    "profile-unknown-provider": Case(RUN, ["bad.toml", "models.0.provider"], profile=profile_with(
        **{'provider = "dashscope"': 'provider = "nobody"'})),
    "profile-unknown-capability": Case(RUN, ["bad.toml", "models.0.capability"], profile=profile_with(
        **{'capability = "image.generate"': 'capability = "image.teleport"'})),
    "profile-unknown-field": Case(RUN, ["bad.toml", "colour"], profile=GOOD + 'colour = "blue"\n'),
    "profile-inline-api-key": Case(RUN, ["bad.toml", "api_key"], profile=GOOD.replace(
        "api_key_env", 'api_key = "sk-inline"\napi_key_env')),
    "profile-zero-request-timeout": Case(RUN, ["bad.toml", "timeouts.request"],
                                         profile=GOOD + "[timeouts]\nrequest = 0\n"),
    "profile-negative-job-timeout": Case(RUN, ["bad.toml", "timeouts.job"],
                                         profile=GOOD + "[timeouts]\njob = -1\n"),
    "profile-unknown-dialect": Case(RUN, ["bad.toml", "async"], profile=GOOD + '[async]\ndialect = "carrier-pigeon"\n'),
    "profile-dialect-not-implemented": Case(RUN, ["bad.toml", "passthrough", "not implemented"],
                                            profile=GOOD + '[async]\ndialect = "passthrough"\n'),
    "profile-duplicate-alias": Case(RUN, ["bad.toml", "models.2.alias", "'qwen-image-2.0-pro'", "defined twice"],
                                    profile=GOOD + "\n" + SECOND_DASHSCOPE),
    "profile-duplicate-alias-same-model": Case(
        RUN, ["bad.toml", "models.2.alias", "'gpt-image-1'", "defined twice"],
        profile=GOOD + '\n[[models]]\nalias = "gpt-image-1"\nprovider = "openai"\nupstream_model = "gpt-image-1"\n'
                       'capability = "image.generate"\n'),
    "profile-duplicate-alias-other-provider": Case(
        RUN, ["bad.toml", "models.2.alias", "defined twice"],
        profile=GOOD + '\n[[models]]\nalias = "gpt-image-1"\nprovider = "replicate"\nupstream_model = "gpt-image-1"\n'
                       'capability = "image.edit"\n'),
    "profile-fallback-alias-is-a-model": Case(
        RUN, ["bad.toml", "fallbacks.0.alias", "'gpt-image-1'"],
        profile=GOOD + FALLBACK.format(alias="gpt-image-1", provider="dashscope", model="qwen-image-2.0-pro")),
    "profile-fallback-target-unrouted-model": Case(
        RUN, ["bad.toml", "fallbacks.0.targets.1", "'wanx-v9'"],
        profile=GOOD + FALLBACK.format(alias="fb", provider="dashscope", model="wanx-v9")),
    "profile-fallback-target-wrong-provider": Case(
        RUN, ["bad.toml", "fallbacks.0.targets.1", "replicate"],
        profile=GOOD + FALLBACK.format(alias="fb", provider="replicate", model="qwen-image-2.0-pro")),
    "profile-unknown-placeholder-in-command": Case(RUN, ["bad.toml", "start.command.2", "{pyhton}"],
                                                   profile=profile_with(**{'"pass"': '"{pyhton}"'})),
    "profile-unknown-placeholder-in-base-url": Case(RUN, ["bad.toml", "base_url", "{prot}"],
                                                    profile=profile_with(**{"{port}": "{prot}"})),
    "profile-unknown-placeholder-in-env": Case(
        RUN, ["bad.toml", "start.env.UPSTREAM", "{dashscope_ur}"],
        profile=profile_with(**{'"pass"]': '"pass"]\nenv = { UPSTREAM = "{dashscope_ur}" }'})),
    "profile-unknown-placeholder-in-header": Case(RUN, ["bad.toml", "headers.x-key", "{openai_token}"],
                                                  profile=GOOD + '[headers]\nx-key = "{openai_token}"\n'),
    "profile-unknown-placeholder-in-model-header": Case(
        RUN, ["bad.toml", "models.1.headers.x-cfg", "{replicat_url}"],
        profile=GOOD + 'headers = { "x-cfg" = "{replicat_url}" }\n'),
    "profile-start-command-missing": Case(
        RUN, ["bad.toml", "'gwconf-no-such-gateway'", "not found"],
        profile=profile_with(**{'"{python}", "-c", "pass"': '"gwconf-no-such-gateway"'})),
    "profile-start-command-missing-names-install": Case(
        RUN, ["bad.toml", "not found", "install it with: bash gateways/install.sh nothing"],
        profile=profile_with(**{'["{python}", "-c", "pass"]': '["{profile_dir}/no-such-bin"]\n'
                                                               'install = "bash gateways/install.sh nothing"'})),
    "profile-start-file-missing-names-install": Case(
        RUN, ["bad.toml", "no-such-server.js", "install it with: npm ci"],
        profile=profile_with(**{'["{python}", "-c", "pass"]': '["{python}", "{profile_dir}/no-such-server.js"]\n'
                                                               'install = "npm ci"'})),
    "profile-empty-install": Case(RUN, ["bad.toml", "start.install"],
                                  profile=profile_with(**{'"pass"]': '"pass"]\ninstall = ""'})),
    "profile-key-env-unset": Case(RUN, ["GWCONF_SURELY_UNSET_KEY"], profile=(
        'name = "bad"\nbase_url = "http://127.0.0.1:9"\napi_key_env = "GWCONF_SURELY_UNSET_KEY"\n' + MODELS)),
    "profile-gateway-exits-at-once": Case(RUN, ["exited with code 3"], bound=30, profile=profile_with(
        **{'"-c", "pass"': '"-c", "raise SystemExit(3)"'})),
    "profile-gateway-on-closed-port": Case(RUN, ["127.0.0.1:9", "not healthy within 1s"], bound=30, profile=(
        HEAD.replace("{port}", "9") + "[timeouts]\nstartup = 1\n" + MODELS)),
    "profile-config-template-missing": Case(RUN, ["no-such.j2"], bound=30, profile=profile_with(
        **{'"pass"]': '"pass"]\nconfig_template = "no-such.j2"'})),
    # -- --out ------------------------------------------------------------------------------
    "out-under-proc": Case([*REFERENCE, "--out", "/proc/x"], ["/proc/x", "not writable"], bound=3),
    "out-deep-under-proc": Case([*REFERENCE, "--out", "/proc/gwconf/a/b"], ["/proc/gwconf/a/b", "not writable"],
                                bound=3),
    "out-under-sys": Case([*REFERENCE, "--out", "/sys/gwconf-out"], ["/sys/gwconf-out", "not writable"], bound=3),
    "out-under-a-file": Case([*REFERENCE, "--out", "{tmp}/afile/sub"], ["{tmp}/afile/sub", "afile is a file"],
                             bound=3, files={"afile": "x"}),
    "out-deep-under-a-file": Case([*REFERENCE, "--out", "{tmp}/afile/a/b/c"], ["afile is a file"], bound=3,
                                  files={"afile": "x"}),
    "out-is-a-file": Case([*REFERENCE, "--out", "{tmp}/afile"], ["afile", "must be a directory"], bound=3,
                          files={"afile": "x"}),
    "out-is-dev-null": Case([*REFERENCE, "--out", "/dev/null"], ["/dev/null", "must be a directory"], bound=3),
    "out-under-dev-null": Case([*REFERENCE, "--out", "/dev/null/out"], ["/dev/null is a file"], bound=3),
    # -- cassettes --------------------------------------------------------------------------
    "cassettes-missing": Case([*REFERENCE, "--out", "{out}", "--cassettes", "{tmp}/none"],
                              ["none", "cassette directory not found"]),
    "cassettes-empty": Case([*REFERENCE, "--out", "{out}", "--cassettes", "{tmp}/empty"],
                            ["empty", "no cassettes"], files={"empty/readme.txt": "nothing here"}),
    "cassettes-a-file": Case([*REFERENCE, "--out", "{out}", "--cassettes", "{tmp}/afile"],
                             ["afile", "cassette directory not found"], files={"afile": "x"}),
    "cassette-invalid-yaml": Case(
        COPIED, ["image-sync.yaml", "invalid YAML"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ("interactions:", "interactions: [\n")}),
    "cassette-no-metadata": Case(
        COPIED, ["image-sync.yaml", "metadata"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ("  gwconf:", "  other:")}),
    "cassette-body-breaks-its-schema": Case(
        COPIED,
        ["image-sync.yaml", "interaction 1", "response"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ('{"output": {"choices": ', '{"output": {"choicez": ')}),
    "cassette-request-breaks-its-schema": Case(
        COPIED,
        ["image-sync.yaml", "interaction 1", "request"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ('"size": "1328*1328"', '"size": 1328')}),
    "cassette-response-not-json": Case(
        COPIED, ["image-sync.yaml", "not JSON"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ("string: '{\"output\"", "string: '<html>{\"output\"")}),
    "cassette-unknown-route": Case(
        COPIED,
        ["image-sync.yaml", "not a known dashscope route"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ("multimodal-generation/generation",
                                                                "multimodal-generation/teleport")}),
    "cassette-missing-provenance": Case(
        COPIED, ["image-sync.yaml", "/metadata/gwconf", "provenance"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ("    provenance:", "    origin:")}),
    "cassette-status-not-a-number": Case(
        COPIED,
        ["image-sync.yaml", "/interactions/0/response/status/code", "'abc'"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ("code: 200", "code: abc")}),
    "cassette-missing-provider": Case(
        COPIED, ["image-sync.yaml", "/metadata/gwconf", "'provider'"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ("    provider: dashscope", "    vendor: dashscope")}),
    "cassette-missing-response": Case(
        COPIED, ["image-sync.yaml", "/interactions/0", "'response'"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ("  response:", "  answer:")}),
    "cassette-key-in-body": Case(
        COPIED, ["image-sync.yaml", "provider key"],
        cassettes="copy", breaks={"dashscope/image-sync.yaml": (
            '"negative_prompt": ""', '"negative_prompt": "sk-0123456789abcdef0123456789abcdef"')}),
    "cassette-duplicate-scenario": Case(
        COPIED, ["scenario", "image-sync"],
        cassettes="copy", breaks={"dashscope/image-edit.yaml": ("scenario: image-edit", "scenario: image-sync")}),
    "validate-empty-directory": Case(["cassettes", "validate", "{tmp}/empty"], ["empty", "no cassettes"],
                                     files={"empty/readme.txt": "nothing here"}),
    "validate-missing-directory": Case(["cassettes", "validate", "{tmp}/none"], ["cassette directory not found"]),
    "validate-names-the-field": Case(
        ["cassettes", "validate", "{cassettes}"], ["image-sync.yaml: interaction 1: response", "choices"], code=1,
        cassettes="copy", breaks={"dashscope/image-sync.yaml": ('{"output": {"choices": ', '{"output": {"choicez": ')}),
    # -- record -----------------------------------------------------------------------------
    "record-climbing-scenario": record_case("../../evil", ["'../../evil'", "--scenario"]),
    "record-scenario-with-slash": record_case("a/b", ["'a/b'"]),
    "record-absolute-scenario": record_case("/etc/passwd", ["'/etc/passwd'"]),
    "record-hidden-scenario": record_case(".hidden", ["'.hidden'"]),
    "record-empty-scenario": record_case("", ["--scenario ''"]),
    "record-without-live": record_case("ok", ["--live"], live=False),
    "record-unknown-provider": record_case("ok", ["'acme'"], provider="acme"),
    "record-key-env-unset": record_case("ok", ["GWCONF_SURELY_UNSET_KEY"], key_env="GWCONF_SURELY_UNSET_KEY"),
    "record-request-missing": record_case("ok", ["none.json"], request="none.json"),
    "record-request-not-json": record_case("ok", ["req.json", "not a recording"], request_text="not json"),
    # -- flags ------------------------------------------------------------------------------
    "flag-missing-gateway": Case(["run", "--out", "{out}"], ["--gateway"]),
    "flag-workers-zero": Case([*REFERENCE, "--out", "{out}", "-n", "0"], ["-n"]),
    "flag-workers-too-many": Case([*REFERENCE, "--out", "{out}", "-n", "99"], ["-n"]),
    "flag-budget-zero": Case([*REFERENCE, "--out", "{out}", "--budget", "0"], ["--budget"]),
    "flag-budget-not-a-number": Case([*REFERENCE, "--out", "{out}", "--budget", "soon"], ["--budget"]),
    "flag-upstream-port-too-high": Case([*REFERENCE, "--out", "{out}", "--upstream-port", "70000"],
                                        ["--upstream-port"]),
    "flag-unknown-option": Case([*REFERENCE, "--out", "{out}", "--colour"], ["--colour"]),
    "flag-unknown-command": Case(["frobnicate"], ["frobnicate"]),
    "flag-bad-selection": Case([*REFERENCE, "--out", "{out}", "-k", "MAP-001 and ("], ["-k", "not a valid selection"]),
    "flag-fuzz-examples-not-a-number": Case([*REFERENCE, "--out", "{out}"], ["GWCONF_FUZZ_EXAMPLES", "whole number"],
                                            env={"GWCONF_FUZZ_EXAMPLES": "lots"}),
    "flag-fuzz-examples-too-many": Case([*REFERENCE, "--out", "{out}"], ["GWCONF_FUZZ_EXAMPLES=100000"],
                                        env={"GWCONF_FUZZ_EXAMPLES": "100000"}),
    "flag-suites-missing": Case([*REFERENCE, "--out", "{out}", "--suites", "{tmp}/none"], ["none", "suites directory"]),
    "report-of-a-non-run-file": Case(["report", "{tmp}/run.txt", "--out", "{out}"], ["run.txt"],
                                     files={"run.txt": '{"hello": 1}'}),
    "report-of-a-missing-file": Case(["report", "{tmp}/none.json", "--out", "{out}"], ["none.json"]),
    "diff-of-a-missing-file": Case(["diff", "{tmp}/none.json", "{tmp}/none.json"], ["none.json"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_fast_and_leaves_nothing(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    result, elapsed = run_case(case, tmp_path)
    assert_refused(case, result, elapsed, tmp_path)
    if case.cassettes == "copy" and name.startswith("record"):
        assert not list((tmp_path / "cassettes").rglob("*evil*"))


def test_there_are_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60


class Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self) -> None:
        Counting.hits.append(self.path)
        self.send_response(500)
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args: object) -> None:
        pass


def test_unsafe_scenario_is_refused_before_any_call(tmp_path: Path) -> None:
    """The provider (here a local stand-in that counts calls) never hears of an unsafe name."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        request = tmp_path / "req.json"
        request.write_text(json.dumps({"path": "/api/v1/x", "body": {}, "models": ["m"], "capability": "chat"}))
        result = subprocess.run(
            [*GWCONF, "record", "--provider", "dashscope", "--scenario", "../../evil", "--request", str(request),
             "--key-env", "GWCONF_BAD_INPUT_KEY", "--live", "--cassettes", str(tmp_path / "c"),
             "--base-url", f"http://127.0.0.1:{server.server_address[1]}"],
            capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT, env={**os.environ, **KEY_ENV})
    finally:
        server.shutdown()
    assert result.returncode == 2, result.stderr
    assert "'../../evil'" in result.stderr
    assert Counting.hits == []
    assert not (tmp_path / "c").exists() and not (tmp_path.parent / "evil.yaml").exists()


# -- the run budget and the breaker, as units ----------------------------------------------------

def test_check_bound_and_run_budget_come_from_the_profile_timeouts() -> None:
    timeouts = Timeouts(request=5, job=5, startup=10)
    assert budget.check_bound(timeouts) == 3 * 5 + 5 + budget.SETTLE_SECONDS
    assert budget.run_budget(timeouts, 66, 1) == 10 + 66 * budget.check_bound(timeouts)
    assert budget.run_budget(timeouts, 66, 4) == 10 + 17 * budget.check_bound(timeouts)


@pytest.fixture
def breaker_log() -> Iterator[Path]:
    with budget.for_run(Timeouts(), 10, 1) as run_budget:
        yield Path(run_budget.breaker_log)


def test_breaker_opens_after_consecutive_silences_only(breaker_log: Path) -> None:
    budget.record_stopped("MAP-001", "no answer")
    budget.record_stopped("MAP-002", "no answer")
    budget.record_answer()
    budget.record_stopped("MAP-003", "no answer")
    budget.record_stopped("MAP-004", "no answer")
    assert budget.open_breaker_evidence(str(breaker_log)) is None
    budget.record_stopped("MAP-005", "no answer")
    evidence = budget.open_breaker_evidence(str(breaker_log))
    assert evidence == ["MAP-003: no answer", "MAP-004: no answer", "MAP-005: no answer"]
    budget.record_answer()  # a late answer does not close it again: the run has noticed once
    assert budget.open_breaker_evidence(str(breaker_log)) == evidence


def test_breaker_log_is_shared_by_processes(breaker_log: Path) -> None:
    """xdist workers are processes: what one records, the next check in another one sees."""
    code = "from harness.gateway import _run_budget as budget\nbudget.record_stopped('ERR-00{n}', 'silent')\n"
    for n in range(3):
        subprocess.run([sys.executable, "-c", code.format(n=n)], check=True, cwd=PROJECT_ROOT, timeout=60,
                       env={**os.environ})
    assert budget.open_breaker_evidence(str(breaker_log)) == [f"ERR-00{n}: silent" for n in range(3)]


def test_rule_is_fail_while_the_gateway_answers_and_error_once_it_stopped(breaker_log: Path) -> None:
    from harness.config._profile import load_profile
    from harness.gateway.client import GatewayClient

    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client = GatewayClient(load_profile(GATEWAYS_DIR / "reference.toml"),
                           f"http://127.0.0.1:{server.server_address[1]}", "", lambda exchange: None)
    try:
        alive = client.still_answering()  # the liveness probe: any HTTP answer, 404 included
    finally:
        server.shutdown()
        server.server_close()
    assert alive
    assert budget.stopped_verdict("ERR-006", "no answer within 5s", alive) is None
    assert not client.still_answering()
    client.close()
    stopped = budget.stopped_verdict("ERR-006", "no answer within 5s", False)
    assert stopped is not None and stopped.startswith(budget.STOPPED)
    assert budget.PROBE_PATH in stopped
    assert budget.open_breaker_evidence(str(breaker_log)) is None  # one silence opens nothing


# -- misbehaving gateways, end to end ------------------------------------------------------------

def misbehaving_profile(tmp: Path, kind: str) -> Path:
    profile = tmp / f"{kind}.toml"
    reference = (GATEWAYS_DIR / "reference.toml").read_text(encoding="utf-8")
    models = reference[reference.index("[[models]]"):]
    profile.write_text(
        f'name = "{kind}"\nbase_url = "http://127.0.0.1:{{port}}"\napi_key_env = "GWCONF_{kind.upper()}_KEY"\n'
        f'api_key_b_env = "GWCONF_{kind.upper()}_KEY_B"\ngenerate_keys = true\n'
        f'[start]\ncommand = ["{{python}}", "{MISBEHAVING}", "{kind}", "{{port}}"]\n'
        '[async]\ndialect = "jobs"\n[timeouts]\nrequest = 5\njob = 5\nstartup = 10\n\n' + models, encoding="utf-8")
    return profile


def test_gateway_hung_after_health_ends_within_90s_labelled_one_way(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [*GWCONF, "run", "--gateway", str(misbehaving_profile(tmp_path, "hung")), "--out", str(tmp_path / "out"),
         "-n", "1"], capture_output=True, text=True, timeout=180, cwd=PROJECT_ROOT)
    elapsed = time.monotonic() - started
    assert elapsed < 90, elapsed
    assert result.returncode == 1, result.stderr
    checks = json.loads((tmp_path / "out" / "run.json").read_text())["checks"]
    unanswered = [c for c in checks if c["outcome"] != "skip"]
    assert len(unanswered) > 40
    assert {c["outcome"] for c in unanswered} == {"error"}
    assert all(c["message"].startswith(f"harness could not decide: {budget.STOPPED}") for c in unanswered)
    # Once the breaker is open, later steps send nothing; the checks before it read the first
    # timeouts (at -n 1, one per stopped step, at most BREAKER_AFTER of them).
    ended = [c for c in unanswered if "nothing was sent" in c["message"]]
    assert ended
    assert len({c["message"] for c in unanswered if c not in ended}) <= budget.BREAKER_AFTER
    assert all(any(n.startswith("no answer: ") for n in c["evidence"]["notes"]) for c in ended)
    # Piped output: the budget first, then a line per check as it finished, then the summary.
    lines = result.stderr.splitlines()
    assert lines[0].startswith("gwconf: budget ") and "--budget overrides" in lines[0]
    per_check = [line for line in lines if line.split(" ")[0] in {c["check_id"] for c in checks}
                 and len(line.split(" ")) == 3]
    assert len(per_check) == len(checks)
    assert all(line.split(" ")[1] in ("error", "skip") and line.endswith("s") for line in per_check)
    # The probe's verdicts and the breaker live in the recordings: judged offline, the same verdicts.
    judged = subprocess.run([*GWCONF, "judge", str(tmp_path / "out"), "-q"], capture_output=True, text=True,
                            timeout=120, cwd=PROJECT_ROOT)
    assert judged.returncode == 1, judged.stderr
    again = json.loads((tmp_path / "out" / "run.json").read_text())["checks"]
    assert [(c["check_id"], c["outcome"], c["message"]) for c in again] == \
        [(c["check_id"], c["outcome"], c["message"]) for c in checks]


def test_html_200_gateway_passes_no_must_check(tmp_path: Path) -> None:
    result = subprocess.run(
        [*GWCONF, "run", "--gateway", str(misbehaving_profile(tmp_path, "html")), "--out", str(tmp_path / "out"),
         "-n", "2", "-q"], capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert result.returncode == 1, result.stderr
    checks = json.loads((tmp_path / "out" / "run.json").read_text())["checks"]
    must = [c for c in checks if c["level"] == "MUST" and c["outcome"] != "skip"]
    assert must and not [c["check_id"] for c in must if c["outcome"] == "pass"]
    by_id = {c["check_id"]: c for c in checks}
    assert by_id["NORM-006"]["outcome"] == "fail" and "JSONDecodeError" not in by_id["NORM-006"]["message"]
    for check_id in ("FUZZ-001", "FUZZ-002", "FUZZ-003"):
        assert by_id[check_id]["outcome"] in ("fail", "warn"), by_id[check_id]
    assert not [c for c in checks if c["outcome"] == "pass"]


def test_budget_override_ends_the_checks_it_cannot_fit(tmp_path: Path) -> None:
    """`--budget 1`: the scenarios that start once it is spent send nothing, and their checks end
    at once as errors naming the budget (the gateway now starts well inside one second, so the
    first scenarios may still run)."""
    started = time.monotonic()
    result = subprocess.run(
        [*GWCONF, "run", "--gateway", str(GATEWAYS_DIR / "reference.toml"), "--out", str(tmp_path / "out"),
         "--budget", "1", "-k", "MAP or PARAM or VIDEO"], capture_output=True, text=True, timeout=120,
        cwd=PROJECT_ROOT)
    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[0].startswith("gwconf: budget 1s for ")
    checks = json.loads((tmp_path / "out" / "run.json").read_text())["checks"]
    errors = [c for c in checks if c["outcome"] == "error"]
    assert errors and {c["outcome"] for c in checks} <= {"pass", "error", "skip"}
    assert all("budget of 1s" in c["message"] or "bound was spent" in c["message"] for c in errors)
