"""Benchmarks of gwconf (speed is measured here, never asserted in tests). One command:

    .venv/bin/python bench/bench.py [--tests] [--before CHECKOUT]

prints a Markdown table for bench/README.md. Each comparison is measured side by side in the same
run on the same machine, so the ratios hold on a busy machine where absolute times do not:

1. The mocks against a best-stack ASGI hello world (uvicorn + httptools + uvloop), both driven by
   `wrk` (Debian: `apt-get install wrk`), one server process each, one after the other.
2. A gateway against the mock it fronts: `gwconf load` against the reference gateway, which sends
   the same requests straight to the mock too.
3. `gwconf run` against the reference: the whole catalogue at `-n 2`, and `-k MAP-001`, wall
   clock of the whole command; and where a one-check run spends its time (bench/phases.py), in this
   checkout and, with `--before`, in another one (an older commit) on the same machine.
4. With `--tests`: the README's test command, `python -m pytest -n 6`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
REPEATS = 3
WRK_SECONDS = 5
WRK_CONNECTIONS = 16
HELLO_WORLD = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), http="httptools", loop="uvloop",
            log_level="warning", access_log=False, lifespan="off")
"""


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return (f"{os.cpu_count()} cores ({cpu}), {platform.machine()}, {platform.python_implementation()} "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at start")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, bound: float = 20.0) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise SystemExit(f"{url}: not up within {bound:g}s")


def wrk(url: str, headers: dict[str, str]) -> float:
    """Requests per second, by wrk with one thread (the server gets the other core)."""
    args = ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s", url]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run(args, capture_output=True, text=True, timeout=WRK_SECONDS + 30, check=True).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if not found or errors:
        raise SystemExit(f"wrk on {url}: {output}")
    return float(found.group(1))


def serve(args: list[str], url: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(url)
    return process


def mock_vs_hello_world() -> list[tuple[str, str]]:
    if shutil.which("wrk") is None:
        return [("mock vs hello world", "skipped: wrk is not installed (`apt-get install wrk`)")]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mocks = serve([PYTHON, "-m", "harness.cli", "upstreams", "--port", str(port)], base + "/__gwconf/health")
    try:
        body = {"model": "wan2.2-t2i-flash", "input": {"prompt": "bench"}, "parameters": {}}
        task = httpx.post(f"{base}/api/v1/services/aigc/text2image/image-synthesis", json=body,
                          headers={"X-DashScope-Async": "enable", "Authorization": "Bearer sk-bench"}
                          ).json()["output"]["task_id"]
        polls = wrk(f"{base}/api/v1/tasks/{task}", {"Authorization": "Bearer sk-bench"})
    finally:
        mocks.terminate()
        mocks.wait(10)
    port = free_port()
    hello = serve([PYTHON, "-c", HELLO_WORLD, str(port)], f"http://127.0.0.1:{port}/")
    try:
        plain = wrk(f"http://127.0.0.1:{port}/", {})
    finally:
        hello.terminate()
        hello.wait(10)
    return [
        (f"DashScope mock, task polls (`wrk -t1 -c{WRK_CONNECTIONS}`, {WRK_SECONDS} s)", f"{polls:,.0f} req/s"),
        ("ASGI hello world, uvicorn + httptools + uvloop, same wrk", f"{plain:,.0f} req/s"),
        ("**mock / hello world**", f"**{polls / plain:.2f}x**"),
    ]


def gateway_vs_direct() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([PYTHON, "-m", "harness.cli", "load", "--gateway", "gateways/reference.toml", "--jobs", "500",
                        "--concurrency", "50", "--out", out], cwd=ROOT, capture_output=True, timeout=600)
        document = json.loads((Path(out) / "load.json").read_text())
    through, direct = document["through_gateway"], document["direct_to_mock"]
    return [
        ("reference gateway, 500 jobs, 50 in flight: request p50 through it / straight to the mock",
         f"{through['request_p50'] * 1000:.1f} ms / {direct['request_p50'] * 1000:.1f} ms = "
         f"**{through['request_p50'] / direct['request_p50']:.2f}x**"),
        ("same: jobs/s through it / straight to the mock",
         f"{through['completed'] / through['elapsed']:.0f} / {direct['completed'] / direct['elapsed']:.0f} = "
         f"**{(through['completed'] / through['elapsed']) / (direct['completed'] / direct['elapsed']):.2f}x**"),
        ("same: lost / duplicate ids / wrong results", f"{through['lost']} / {through['duplicate_ids']} / "
         f"{through['wrong_results']}"),
    ]


def timed(args: list[str], cwd: Path = ROOT, timeout: float = 900) -> float:
    started = time.monotonic()
    subprocess.run(args, cwd=cwd, capture_output=True, timeout=timeout, check=False)
    return time.monotonic() - started


def median_of(args: list[str]) -> str:
    times = [timed(args) for _ in range(REPEATS)]
    return f"median {statistics.median(times):.1f} s (min {min(times):.1f}, max {max(times):.1f})"


def catalogue_runs() -> list[tuple[str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as out:
        checks = None
        for label, extra in (("whole catalogue, `-n 2`", ["-n", "2"]), ("`-k MAP-001`", ["-k", "MAP-001"])):
            rows.append((f"`gwconf run` reference, {label}",
                         median_of([PYTHON, "-m", "harness.cli", "run", "--gateway", "gateways/reference.toml",
                                    "--out", out, "-q", *extra])))
            if checks is None:
                checks = len(json.loads((Path(out) / "run.json").read_text())["checks"])
        rows[0] = (rows[0][0].replace("66 checks", f"{checks} checks"), rows[0][1])
    return rows


def phases(checkout: Path, python: str) -> dict[str, float]:
    runs = []
    for _ in range(REPEATS):
        output = subprocess.run([python, str(ROOT / "bench" / "phases.py")], cwd=checkout, capture_output=True,
                                text=True, timeout=300).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
    return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in runs[0]}


def phase_rows(before: Path | None) -> list[tuple[str, str]]:
    after = phases(ROOT, PYTHON)
    earlier = phases(before, str(before / ".venv" / "bin" / "python")) if before else {}
    rows = []
    for name in after:
        value = f"{after[name]:.2f} s"
        if earlier:
            value = f"{earlier.get(name, 0.0):.2f} s -> {value}"
        rows.append((f"one-check run (`-k MAP-001`), phase: {name}", value))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", action="store_true", help="also time the README's test command")
    parser.add_argument("--before", type=Path, help="a checkout (with .venv) to compare start-up phases with")
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    rows = [*mock_vs_hello_world(), *gateway_vs_direct(), *catalogue_runs(), *phase_rows(args.before)]
    if args.tests:
        rows.append(("README test command, `python -m pytest -n 6`",
                     f"{timed([PYTHON, '-m', 'pytest', '-n', '6', '-q'], timeout=1800):.0f} s"))
    print("| benchmark | result |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
