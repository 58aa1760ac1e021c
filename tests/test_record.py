"""`gwconf record` against the mocks (tests never call a real provider): scrubbed and replayable."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from harness.config._cassette import load_cassette
from harness.config._cassette_check import problems_in
from harness.paths import CASSETTES_DIR, PROJECT_ROOT

KEY = "sk-live-recording-key-abcdef0123456789"


def test_record_async_task_is_scrubbed_and_replayable(upstreams, tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    shutil.copytree(CASSETTES_DIR / "files", cassettes / "files")
    request = tmp_path / "req.json"
    request.write_text(json.dumps({
        "capability": "image.generate", "models": ["qwen-image-plus"],
        "path": "/api/v1/services/aigc/text2image/image-synthesis",
        "headers": {"X-DashScope-Async": "enable"},
        "body": {"model": "qwen-image-plus", "input": {"prompt": f"a fox (key {KEY})"}, "parameters": {"n": 1}},
    }))
    result = subprocess.run(
        [sys.executable, "-m", "harness.cli", "record", "--provider", "dashscope", "--scenario", "recorded-task",
         "--request", str(request), "--key-env", "GWCONF_TEST_PROVIDER_KEY", "--poll", "--live",
         "--base-url", upstreams.urls["dashscope"], "--cassettes", str(cassettes)],
        capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT,
        env={"PATH": "/usr/bin:/bin", "GWCONF_TEST_PROVIDER_KEY": KEY})
    assert result.returncode == 0, result.stderr
    path = cassettes / "dashscope" / "recorded-task.yaml"
    text = path.read_text()
    assert KEY not in text and "Bearer" not in text
    cassette = load_cassette(path)
    assert cassette.provenance.kind == "live-recording"
    assert [i.method for i in cassette.interactions] == ["POST", "GET", "GET", "GET"]
    assert cassette.ids["task_id"] in text
    assert "http://mock.gwconf.invalid/files/recorded-task-1.png" in text
    assert (cassettes / "files" / "recorded-task-1.png").read_bytes().startswith(b"\x89PNG")
    assert list(problems_in(path)) == []


def test_record_refuses_without_live_flag(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "harness.cli", "record", "--provider", "dashscope",
                             "--scenario", "x", "--request", str(tmp_path / "r.json"), "--key-env", "K"],
                            capture_output=True, text=True, timeout=60, cwd=PROJECT_ROOT)
    assert result.returncode == 2
    assert "--live" in result.stderr and "Traceback" not in result.stderr
