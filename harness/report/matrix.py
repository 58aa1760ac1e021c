"""The compatibility matrix of several runs: checks down, gateways across (like Autobahn's).

Each column is one run.json; a check missing from a run shows as a blank cell. Columns are
labelled by gateway name and version, with the run id added when two columns would clash.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.checks._registry import CATEGORIES
from harness.report.html import environment


@dataclass
class Column:
    label: str
    run: dict[str, Any]
    link: str | None  # relative path to that run's report.html, when rendered beside the matrix
    by_id: dict[str, dict[str, Any]]


@dataclass
class Row:
    check_id: str
    title: str
    level: str
    category: str
    cells: list[dict[str, Any] | None]  # one check entry per column, None when not run there


def columns_of(documents: list[dict[str, Any]], links: list[str | None] | None = None,
               ) -> list[Column]:
    names = [d["gateway"]["name"] + (f" {d['gateway']['version']}" if d["gateway"].get("version")
                                     else "") for d in documents]
    clash = Counter(names)
    links = links or [None] * len(documents)
    return [Column(f"{name} ({d['run_id']})" if clash[name] > 1 else name, d, link,
                   {c["check_id"]: c for c in d["checks"]})
            for name, d, link in zip(names, documents, links, strict=True)]


def rows_of(columns: list[Column]) -> list[Row]:
    first: dict[str, dict[str, Any]] = {}
    for column in columns:
        for check in column.run["checks"]:
            first.setdefault(check["check_id"], check)
    order = list(CATEGORIES)

    def key(check_id: str) -> tuple[int, str, int, str]:
        category = first[check_id]["category"]
        number = check_id.partition("-")[2]
        return (order.index(category) if category in order else len(order), category,
                int(number) if number.isdigit() else 0, check_id)

    return [Row(i, first[i]["title"], first[i]["level"], first[i]["category"],
                [c.by_id.get(i) for c in columns]) for i in sorted(first, key=key)]


def categories_in(rows: list[Row]) -> list[str]:
    return list(dict.fromkeys(r.category for r in rows))


def _context(documents: list[dict[str, Any]], links: list[str | None] | None) -> dict[str, Any]:
    columns = columns_of(documents, links)
    rows = rows_of(columns)
    return {"columns": columns, "rows": rows, "categories": categories_in(rows)}


def render_matrix_html(documents: list[dict[str, Any]], links: list[str | None] | None = None,
                       ) -> str:
    return environment().get_template("matrix.html.j2").render(**_context(documents, links))


def render_matrix_markdown(documents: list[dict[str, Any]]) -> str:
    return environment(autoescape=False).get_template("matrix.md.j2").render(
        **_context(documents, None))


def write_matrix(documents: list[dict[str, Any]], out: Path,
                 links: list[str | None] | None = None) -> list[Path]:
    html, md = out / "matrix.html", out / "matrix.md"
    html.write_text(render_matrix_html(documents, links), encoding="utf-8")
    md.write_text(render_matrix_markdown(documents), encoding="utf-8")
    return [html, md]
