"""junit.xml: one testcase per check, one testsuite per category, from a jinja2 template.

fail becomes <failure>, error becomes <error>, skip becomes <skipped>, warn passes with the
warning in <system-out>. Outcomes that decide nothing on their own (``blocked``, and any later
one) are <skipped> with their reason. The failure text is the check's evidence as plain text,
so a CI page shows expected vs actual, the exchanges and the curl repro without opening
report.html. Every testcase carries its level, category, spec and outcome as <properties>.

A run judged against a baseline (run.json ``gate``) tells the gate's verdict: an expected
failure and a non-binding pending check are <skipped> with the reason (their evidence in
<system-out>), and with ``--ratchet`` an expected failure that now passes is a <failure>.
The shape is the one CI readers take (tests validate it against ``tests/junit.xsd``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report.baseline import BAD
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


@dataclass(frozen=True)
class Case:
    """One <testcase>: its properties and at most one result element."""

    check: dict[str, Any]
    properties: list[tuple[str, str]]
    result: str | None  # "failure", "error", "skipped" or None (passed)
    type: str = ""
    message: str = ""
    text: str = ""  # the result element's body
    out: str = ""  # <system-out>


def blocked_cause(check: dict[str, Any]) -> str:
    """The check(s) a blocked check waits on, however the outcome names them."""
    cause = check.get("blocked_by") or ""
    return ", ".join(map(str, cause)) if isinstance(cause, list) else str(cause)


def blocked_reason(check: dict[str, Any]) -> str:
    cause = blocked_cause(check)
    return "blocked" + (f" by {cause}" if cause else "") + (f": {check['message']}" if check["message"] else "")


def case_of(check: dict[str, Any], gate: dict[str, Any] | None) -> Case:
    """How one check reads in JUnit, with the gate's verdict when the run was judged."""
    outcome = check["outcome"]
    properties = [("level", check["level"]), ("category", check["category"]),
                  ("spec", check.get("spec", "")), ("outcome", outcome)]
    verdict = (gate or {}).get("checks", {}).get(check["check_id"])
    if verdict:
        properties += [("gate", verdict["status"]), ("gate_reason", verdict["reason"])]
    if check.get("blocked_by"):
        properties.append(("blocked_by", blocked_cause(check)))

    def case(result: str | None, type_: str = "", message: str = "", text: str = "", out: str = "") -> Case:
        return Case(check, properties, result, type_, message, text, out)

    if verdict and not verdict["failing"] and verdict["status"] in ("expected", "pending") and outcome in BAD:
        return case("skipped", message=f"{verdict['status']}: {verdict['reason']}", out=evidence_text(check))
    if verdict and verdict["failing"] and verdict["status"] == "fixed":
        return case("failure", "ratchet", f"expected failure now passes: {verdict['reason']}", evidence_text(check))
    if outcome == "fail":
        return case("failure", check["level"], check["message"], evidence_text(check))
    if outcome == "error":
        return case("error", "error", check["message"], evidence_text(check))
    if outcome == "warn":
        return case(None, out="warning: " + evidence_text(check))
    if outcome == "pass":
        return case(None, out=f"note: {verdict['reason']}" if verdict else "")
    if outcome == "skip":
        return case("skipped", message=check["message"])
    if outcome == "blocked":
        return case("skipped", message=blocked_reason(check))
    return case("skipped", message=f"{outcome}: {check['message']}")  # decides nothing on its own


def suites_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    suites = []
    gate = document.get("gate")
    for category in categories_of(document):
        cases = [case_of(c, gate) for c in document["checks"] if c["category"] == category]
        counts = {r: sum(c.result == r for c in cases) for r in ("failure", "error", "skipped")}
        suites.append({"name": f"gwconf.{category}", "cases": cases, "counts": counts,
                       "time": sum(c.check["duration"] for c in cases)})
    return suites


def render_junit(document: dict[str, Any]) -> str:
    suites = suites_of(document)
    totals = {r: sum(s["counts"][r] for s in suites) for r in ("failure", "error", "skipped")}
    return environment().get_template("junit.xml.j2").render(run=document, suites=suites, totals=totals)


def write_junit(document: dict[str, Any], out: Path) -> Path:
    path = out / "junit.xml"
    path.write_text(render_junit(document), encoding="utf-8")
    return path
