"""Bad input to gwconf is one clear line and exit 2, never a traceback."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import CASSETTES_DIR, PROJECT_ROOT

GWCONF = [sys.executable, "-m", "harness.cli"]


def gwconf(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GWCONF, *args], capture_output=True, text=True, timeout=timeout, cwd=PROJECT_ROOT)


def one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("gwconf: error: ")
    for needle in needles:
        assert needle in lines[0]


def test_checks_json_lists_the_catalogue() -> None:
    result = gwconf("checks", "--json")
    assert result.returncode == 0, result.stderr
    catalogue = json.loads(result.stdout)
    assert len(catalogue) >= 25
    assert {"id", "title", "level", "category", "needs", "spec"} <= catalogue[0].keys()
    assert len({c["id"] for c in catalogue}) == len(catalogue)


def test_missing_cassette_directory(tmp_path: Path) -> None:
    one_line_error(gwconf("cassettes", "validate", str(tmp_path / "nope")), "nope", "not found")
    one_line_error(gwconf("upstreams", "--cassettes", str(tmp_path / "nope")), "nope")


def test_cassette_with_invalid_yaml(tmp_path: Path) -> None:
    shutil.copytree(CASSETTES_DIR, tmp_path / "c")
    broken = tmp_path / "c" / "dashscope" / "image-sync.yaml"
    broken.write_text("interactions: [\n  - {request: \n")
    result = gwconf("cassettes", "validate", str(tmp_path / "c"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "image-sync.yaml" in line and "invalid YAML" in line]
    one_line_error(gwconf("upstreams", "--cassettes", str(tmp_path / "c")), "image-sync.yaml", "invalid YAML")


def test_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        one_line_error(gwconf("upstreams", "--port", str(port)), f"127.0.0.1:{port}")


def test_upstreams_port_places_every_mock_on_consecutive_ports() -> None:
    from harness.upstream.server import MOCK_NAMES, consecutive_ports

    assert consecutive_ports(18000) == {name: 18000 + i for i, name in enumerate(MOCK_NAMES)}


def test_upstreams_prints_shell_assignments_and_serves() -> None:
    process = subprocess.Popen([*GWCONF, "upstreams"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=PROJECT_ROOT)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(3)]
        urls = dict(line.split("=", 1) for line in lines)
        assert set(urls) >= {"GWCONF_DASHSCOPE_URL", "GWCONF_OPENAI_URL", "GWCONF_REPLICATE_URL"}
        import httpx

        assert httpx.get(urls["GWCONF_OPENAI_URL"] + "/v1/models", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(("text", "needles"), [
    ('name = "x"\nbase_url = "http://127.0.0.1:1"\napi_key_env = "K"\n', ["broken.toml", "models"]),
    ('name = "x"\nbase_url = "ftp://h"\napi_key_env = "K"\nmodels = []\n', ["broken.toml", "base_url"]),
    ('name = "x"\nthis is not toml\n', ["broken.toml", "invalid TOML"]),
    ('name = "x"\nbase_url = "http://h"\napi_key_env = "K"\n[[models]]\nalias = "a"\nprovider = "nobody"\n'
     'upstream_model = "m"\ncapability = "chat"\n', ["broken.toml", "models.0.provider"]),
])
def test_malformed_profile_names_file_and_field(tmp_path: Path, text: str, needles: list[str]) -> None:
    profile = tmp_path / "broken.toml"
    profile.write_text(text)
    one_line_error(gwconf("run", "--gateway", str(profile), "--out", str(tmp_path / "out")), *needles)


def test_missing_profile_file(tmp_path: Path) -> None:
    one_line_error(gwconf("run", "--gateway", str(tmp_path / "none.toml")), "none.toml")


def test_gateway_on_a_closed_port_is_a_bounded_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    profile = tmp_path / "closed.toml"
    profile.write_text(
        f'name = "closed"\nbase_url = "http://127.0.0.1:{closed}"\napi_key_env = "GWCONF_TEST_KEY"\n'
        '[timeouts]\nstartup = 2\n[[models]]\nalias = "a"\nprovider = "dashscope"\n'
        'upstream_model = "qwen-image-2.0-pro"\ncapability = "image.generate"\n')
    result = subprocess.run([*GWCONF, "run", "--gateway", str(profile), "--out", str(tmp_path / "o"), "-q"],
                            capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT,
                            env={**__import__("os").environ, "GWCONF_TEST_KEY": "gwk-test-key-123456"})
    one_line_error(result, f"127.0.0.1:{closed}", "not healthy within 2s")


def test_unset_client_key_env_is_named(tmp_path: Path) -> None:
    profile = tmp_path / "nokey.toml"
    profile.write_text('name = "nokey"\nbase_url = "http://127.0.0.1:9"\napi_key_env = "GWCONF_SURELY_UNSET"\n'
                       '[[models]]\nalias = "a"\nprovider = "openai"\nupstream_model = "m"\ncapability = "chat"\n')
    one_line_error(gwconf("run", "--gateway", str(profile)), "GWCONF_SURELY_UNSET")


def test_report_of_a_non_run_file(tmp_path: Path) -> None:
    bogus = tmp_path / "run.json"
    bogus.write_text('{"hello": 1}')
    one_line_error(gwconf("report", str(bogus), "--out", str(tmp_path / "r")), "run.json")
    one_line_error(gwconf("diff", str(bogus), str(bogus)), "run.json")


def test_bad_selection_and_out_file_are_one_line_errors(tmp_path: Path) -> None:
    profile = str(PROJECT_ROOT / "gateways" / "reference.toml")
    one_line_error(gwconf("run", "--gateway", profile, "-k", "MAP-001 and ("), "-k", "not a valid selection")
    one_line_error(gwconf("run", "--gateway", profile, "-k", "NO-SUCH-999", "--out", str(tmp_path / "o")),
                   "no check matches")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_line_error(gwconf("run", "--gateway", profile, "--out", str(a_file)), "must be a directory")
    one_line_error(gwconf("report", str(a_file), "--out", str(a_file)), "must be a directory")


def test_version_and_python_dash_m_harness() -> None:
    result = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True,
                            timeout=60, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("gwconf ")


def test_checks_table_has_a_spec_column() -> None:
    result = subprocess.run([*GWCONF, "checks"], capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT,
                            env={**__import__("os").environ, "COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    assert "spec" in result.stdout.splitlines()[2]
    assert "https://www.alibabacloud.com/help/en/model-studio/qwen-image-api" in result.stdout
