"""report.md: a short summary of one run, sized for a pull-request comment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report.html import environment

LISTED = 25  # failing checks listed in full; the rest are counted


def render_markdown(document: dict[str, Any]) -> str:
    return environment(autoescape=False).get_template("report.md.j2").render(
        run=document, listed=LISTED)


def write_markdown(document: dict[str, Any], out: Path) -> Path:
    path = out / "report.md"
    path.write_text(render_markdown(document), encoding="utf-8")
    return path
