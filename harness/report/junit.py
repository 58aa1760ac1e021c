"""junit.xml: one testcase per check, one testsuite per category, from a jinja2 template.

fail becomes <failure>, error becomes <error>, skip becomes <skipped>, warn passes with the
warning in <system-out>. The failure text is the check's evidence as plain text, so a CI page
shows expected vs actual, the exchanges and the curl repro without opening report.html.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.html import categories_of, clip, environment

TEXT_LIMIT = 2_000  # characters of one body in the failure text


def evidence_text(check: dict[str, Any]) -> str:
    """A check's message and evidence as plain text, the way h2spec prints a failure."""
    e = check["evidence"]
    lines = [f"{check['check_id']} ({check['level']}) {check['title']}"]
    if check["message"]:
        lines.append(f"  -> {check['message']}")
    if e.get("expected") or e.get("actual"):
        lines += [f"     Expected: {e.get('expected', '')}", f"       Actual: {e.get('actual', '')}"]
    for x in e.get("exchanges", []):
        lines.append(f"client: {x['method']} {x['url']} -> {x['error'] or x['status']}"
                     f" ({x['elapsed']:.2f}s)")
        if x["request_body"]:
            lines.append("  request: " + clip(x["request_body"], TEXT_LIMIT))
        if x["response_body"]:
            lines.append("  response: " + clip(x["response_body"], TEXT_LIMIT))
    for u in e.get("upstream", []):
        body = u.get("body")
        shown = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
        lines.append(f"upstream: {u['provider']} {u['method']} {u['path']}"
                     + (f" -> {u['answered']}" if u.get("answered") else ""))
        if body:
            lines.append("  body: " + clip(shown, TEXT_LIMIT))
    lines += [f"note: {n}" for n in e.get("notes", [])]
    if e.get("curl"):
        lines.append("repro: " + clip(e["curl"], TEXT_LIMIT))
    if check.get("spec"):
        lines.append(f"spec: {check['spec']}")
    return "\n".join(lines)


def suites_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    suites = []
    for category in categories_of(document):
        cases = [c for c in document["checks"] if c["category"] == category]
        counts = {o: sum(c["outcome"] == o for c in cases) for o in ("fail", "error", "skip")}
        suites.append({"name": f"gwconf.{category}", "cases": cases, "counts": counts,
                       "time": sum(c["duration"] for c in cases)})
    return suites


def render_junit(document: dict[str, Any]) -> str:
    return environment().get_template("junit.xml.j2").render(
        run=document, suites=suites_of(document), evidence_text=evidence_text)


def write_junit(document: dict[str, Any], out: Path) -> Path:
    path = out / "junit.xml"
    path.write_text(render_junit(document), encoding="utf-8")
    return path
