"""Where the shipped data lives: next to the package in a checkout, or under the prefix."""

from __future__ import annotations

import os
from pathlib import Path


def _project_root() -> Path:
    env = os.environ.get("GWCONF_HOME")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    return here


PROJECT_ROOT = _project_root()
SCHEMAS_DIR = PROJECT_ROOT / "schemas"
CASSETTES_DIR = PROJECT_ROOT / "cassettes"
SUITES_DIR = PROJECT_ROOT / "suites"
GATEWAYS_DIR = PROJECT_ROOT / "gateways"
