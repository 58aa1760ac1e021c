"""report.html: one self-contained page rendered by jinja2 from a run.json document.

The page loads nothing: CSS and the small filter script are inline, and a Content-Security-
Policy forbids every fetch. It reads without JavaScript (the script only filters rows). The
filters and the jinja2 environment here are shared by the other renderers of this package.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from harness.checks._registry import CATEGORIES
from harness.records._outcome import OUTCOMES
from harness.report.fates import cell_class, fate_matrix, fate_tables

HTML_BODY_LIMIT = 4_000  # at most this many characters of one body on the page
PAGE_BUDGET = 120_000  # characters of bodies per page, shared out over every body shown
MIN_BODY = 400
GLYPHS = {"pass": "✅", "fail": "❌", "warn": "⚠️", "skip": "⏭️", "error": "💥", "blocked": "🔗"}
_MD_SPECIAL = re.compile(r"[\\`*_\[\]|#]")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def pct(rate: float) -> str:
    """A rate as a percentage that never rounds a shortfall up to 100%."""
    return "100%" if rate >= 1 else f"{math.floor(rate * 100)}%"


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def short_digest(digest: str | None) -> str:
    return (digest or "")[:19]


def clip(text: str, limit: int = HTML_BODY_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [{len(text) - limit} more chars in run.json]"


def pretty(body: Any, limit: int = HTML_BODY_LIMIT) -> str:
    """A body as indented JSON when it is JSON, else as text; clipped for the page."""
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return clip(body, limit)
        if not isinstance(parsed, dict | list):
            return clip(body, limit)
        body = parsed
    if body is None or body == "":
        return ""
    return clip(json.dumps(body, indent=2, ensure_ascii=False, default=str), limit)


def md_text(text: Any) -> str:
    """Text safe inside one Markdown line: no HTML, no emphasis or table markup, one line."""
    text = " ".join(str(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)


def xml_text(text: Any) -> str:
    """Text without the control characters XML 1.0 forbids even when escaped."""
    return _XML_ILLEGAL.sub("\ufffd", str(text))


def categories_of(document: dict[str, Any]) -> list[str]:
    """The document's categories in the catalogue's order, unknown ones last."""
    seen = {c["category"] for c in document["checks"]} | set(document["summary"]["by_category"])
    order = list(CATEGORIES)
    return sorted(seen, key=lambda c: (order.index(c) if c in order else len(order), c))


def failing(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in document["checks"] if c["outcome"] in ("fail", "error")]


@dataclass
class RootCauses:
    """A run's failures by root cause: each failing check with the checks its failure blocks."""

    causes: list[tuple[dict[str, Any], list[dict[str, Any]]]]  # (failing check, the checks it blocks)
    blocked: list[dict[str, Any]]

    @property
    def blocking(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        return [(c, b) for c, b in self.causes if b]

    @property
    def alone(self) -> list[dict[str, Any]]:
        return [c for c, b in self.causes if not b]

    @property
    def must(self) -> int:
        return sum(c["level"] == "MUST" and c["outcome"] in ("fail", "error") for c, _ in self.causes)


def root_causes(document: dict[str, Any]) -> RootCauses:
    checks = document["checks"]
    blocked = [c for c in checks if c["outcome"] == "blocked"]
    causes = [(c, [b for b in blocked if c["check_id"] in b.get("blocked_by", [])])
              for c in checks if c["outcome"] in ("fail", "warn", "error")]
    level = {"MUST": 0, "SHOULD": 1, "MAY": 2}
    causes.sort(key=lambda cb: (-len(cb[1]), level.get(cb[0]["level"], 3)))
    return RootCauses(causes, blocked)


@cache
def environment(autoescape: bool = True) -> Environment:
    env = Environment(
        loader=PackageLoader("harness", "report/templates"),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(pct=pct, seconds=seconds, short=short_digest, pretty=pretty,
                       clip=clip, xml=xml_text, md=md_text)
    env.globals.update(OUTCOMES=OUTCOMES, CATEGORIES=CATEGORIES, GLYPHS=GLYPHS,
                       categories_of=categories_of, failing=failing,
                       root_causes=root_causes)
    env.globals.update(fate_tables=fate_tables, fate_matrix=fate_matrix, fate_class=cell_class)
    return env


def body_limits(document: dict[str, Any]) -> dict[str, int]:
    """Characters per body, by outcome: the page budget split over all bodies, failures x3."""
    weights = {"fail": 3, "error": 3, "warn": 2, "pass": 1, "skip": 1, "blocked": 1}
    shares = 0
    for check in document["checks"]:
        e = check["evidence"]
        bodies = 2 * len(e.get("exchanges", [])) + len(e.get("upstream", [])) + 1
        shares += bodies * weights.get(check["outcome"], 1)
    unit = PAGE_BUDGET // max(shares, 1)
    return {o: max(MIN_BODY, min(HTML_BODY_LIMIT, unit * w)) for o, w in weights.items()}


def render_html(document: dict[str, Any]) -> str:
    return environment().get_template("report.html.j2").render(
        run=document, limits=body_limits(document))


def write_html(document: dict[str, Any], out: Path) -> Path:
    path = out / "report.html"
    path.write_text(render_html(document), encoding="utf-8")
    return path
