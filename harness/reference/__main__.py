"""`python -m harness.reference --config FILE --port N`: serve the reference gateway."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import uvicorn

from harness.reference.app import build_app


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
    uvicorn.run(build_app(config).app, host=args.host, port=args.port, log_level="warning",
                access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
