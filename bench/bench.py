"""Benchmarks of gwconf (speed is measured here, never asserted in tests).

    .venv/bin/python bench/bench.py            # prints a Markdown table for bench/README.md

1. The full catalogue against the bundled reference gateway through `gwconf run`, with one
   and with two pytest workers (wall clock of the whole command, startup included).
2. The DashScope mock's async task throughput: submits, each polled to SUCCEEDED, over one
   keep-alive client.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.config._cassette import load_cassettes  # noqa: E402
from harness.paths import CASSETTES_DIR  # noqa: E402
from harness.upstream import start_upstreams  # noqa: E402

REPEATS = 3
TASKS = 200


def timed_run(workers: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "harness.cli", "run", "--gateway", "gateways/reference.toml",
                        "--out", out, "-q", "-n", str(workers)], cwd=ROOT, check=True, capture_output=True,
                       timeout=600)
        elapsed = time.monotonic() - started
        checks = len(json.loads((Path(out) / "run.json").read_text())["checks"])
    return elapsed, checks


def task_throughput() -> float:
    with start_upstreams(load_cassettes(CASSETTES_DIR), CASSETTES_DIR / "files") as up, httpx.Client() as http:
        base = up.urls["dashscope"]
        body = {"model": "qwen-image-plus", "input": {"prompt": "bench"}, "parameters": {}}
        started = time.monotonic()
        for _ in range(TASKS):
            task = http.post(f"{base}/api/v1/services/aigc/text2image/image-synthesis", json=body,
                             headers={"X-DashScope-Async": "enable"}).json()["output"]["task_id"]
            while http.get(f"{base}/api/v1/tasks/{task}").json()["output"]["task_status"] != "SUCCEEDED":
                pass
        return TASKS / (time.monotonic() - started)


def main() -> None:
    rows = []
    for workers in (1, 2):
        runs = [timed_run(workers) for _ in range(REPEATS)]
        times = [t for t, _ in runs]
        rows.append((f"`gwconf run` reference, {runs[0][1]} checks, `-n {workers}`",
                     f"median {statistics.median(times):.1f} s (min {min(times):.1f}, max {max(times):.1f})"))
    rate = task_throughput()
    rows.append((f"DashScope mock: {TASKS} async tasks, submit + 3 polls each", f"{rate:.0f} tasks/s"))
    print(f"Machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"{REPEATS} repeats\n")
    print("| benchmark | result |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
