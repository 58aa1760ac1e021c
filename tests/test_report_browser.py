"""The HTML report as a browser renders it: headless Chromium, a screenshot, the rendered text.

Needs Debian's chromium (`apt-get install -y chromium`). Skipped when it is absent, except in
CI (env CI set), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from harness.report.render import render_reports
from tests.test_report_render import sample_run

TIMEOUT = 90


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is required in CI: apt-get install -y chromium")
    pytest.skip("chromium not installed (apt-get install -y chromium); runs in CI")


def headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL)


def visible_text(dom: str) -> str:
    """The DOM's text without <style> and <script> blocks or tags."""
    dom = re.sub(r"<(style|script)\b.*?</\1>", " ", dom, flags=re.DOTALL | re.IGNORECASE)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", dom)).split())


def test_report_renders_verdict_and_failing_checks_in_chromium(tmp_path: Path):
    browser = chromium()
    render_reports([sample_run()], tmp_path / "out")
    page = (tmp_path / "out" / "report.html").as_uri()

    shot = tmp_path / "report.png"
    done = headless(browser, tmp_path / "profile-shot", f"--screenshot={shot}",
                    "--window-size=1280,2000", page)
    assert shot.exists() and shot.stat().st_size > 10_000, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    done = headless(browser, tmp_path / "profile-dom", "--dump-dom", page)
    assert done.returncode == 0, done.stderr[-2000:]
    text = visible_text(done.stdout)
    assert "Verdict: FAIL" in text
    assert "MUST 1/4 passed (25%)" in text
    for check_id in ("MAP-002", "MAP-003", "NORM-001"):
        assert check_id in text
    # the filter script ran and touched the page without hiding anything
    assert "6 of 6 shown" in text
    assert 'class="js"' in done.stdout
