"""`python -m harness.reference --config FILE --port N`: serve the reference gateway."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from types import FrameType

import uvicorn

from harness.reference.app import build_app


class PromptServer(uvicorn.Server):
    """Exits at once when stopped. The reference keeps nothing worth a graceful shutdown (its jobs
    live in memory and end with the run), and uvicorn's would cost every run 0.13 s: it notices a
    stop on its next 0.1 s tick, then waits 0.1 s for connections to close."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        try:  # a flush can fail inside a signal handler (a write it interrupted): exit all the same
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.reference")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{args.config}: cannot read gateway config ({exc})", file=sys.stderr)
        return 2
    PromptServer(uvicorn.Config(build_app(config).app, host=args.host, port=args.port, log_level="warning",
                                access_log=False)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
