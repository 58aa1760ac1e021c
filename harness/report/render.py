"""Every report of one or several run.json documents, written into one directory.

One run: report.html, report.md and junit.xml. Several runs: matrix.html and matrix.md, and
each run's own three reports under runs/<gateway>-<run id>/, linked from the matrix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from harness.report.html import write_html
from harness.report.junit import write_junit
from harness.report.markdown import write_markdown
from harness.report.matrix import write_matrix


def write_run_reports(document: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [write_html(document, out), write_markdown(document, out), write_junit(document, out)]


def run_dirname(document: dict[str, Any]) -> str:
    raw = f"{document['gateway']['name']}-{document['run_id']}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._") or "run"


OPTIONAL_GATEWAY_FIELDS = {"version": None, "key_model": "", "notes": []}


def with_optional_fields(document: dict[str, Any]) -> dict[str, Any]:
    """The schema leaves some gateway fields optional; templates may read them all."""
    return {**document, "gateway": {**OPTIONAL_GATEWAY_FIELDS, **document["gateway"]},
            "options": document.get("options", {})}


def render_reports(documents: list[dict[str, Any]], out: Path,
                   sources: list[Path] | None = None) -> list[Path]:
    """Write the reports of `documents` (already-validated run.json dicts) into `out`.

    With several runs, a run whose `sources` directory already holds its report.html is linked
    from the matrix where it is; the others get their reports under out/runs/.
    """
    if not documents:
        raise ValueError("render_reports needs at least one run document")
    documents = [with_optional_fields(d) for d in documents]
    out.mkdir(parents=True, exist_ok=True)
    if len(documents) == 1:
        return write_run_reports(documents[0], out)
    written: list[Path] = []
    links: list[str | None] = []
    used: set[str] = set()
    for index, document in enumerate(documents):
        existing = sources[index] / "report.html" if sources else None
        if existing is not None and existing.is_file():
            links.append(Path(os.path.relpath(existing.resolve(), out.resolve())).as_posix())
            continue
        name = run_dirname(document)
        while name in used:
            name += "_"
        used.add(name)
        written += write_run_reports(document, out / "runs" / name)
        links.append(f"runs/{name}/report.html")
    return write_matrix(documents, out, links) + written
