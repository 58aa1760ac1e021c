"""What `gwconf run` shows on the terminal: a progress bar per category, then a summary table.

Progress draws only when an outcome arrives (no refresh thread), so nothing writes while pytest
captures output; it draws on stderr unless given another console. On a terminal it keeps live
bars; anywhere else (a pipe, a CI log) it prints one line per finished check as it finishes:
`MAP-001 pass 0.12s`. quiet=True draws nothing and makes the summary one line.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from harness.checks._registry import CATEGORIES
from harness.records._outcome import OUTCOMES, Outcome

STYLES = {"pass": "green", "fail": "red", "warn": "yellow", "skip": "dim", "error": "magenta",
          "blocked": "cyan"}
SHOWN_FAILURES = 30


def tally(counts: Mapping[str, int]) -> str:
    return " ".join(f"[{STYLES[o]}]{counts[o]} {o}[/]" for o in OUTCOMES if counts.get(o))


class Progress:
    """Bars for all checks and for each category; the OutcomeCollector feeds it."""

    def __init__(self, console: Console | None = None, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        # Bars redraw in place, which a log cannot show: a log gets a line per check instead.
        self.lines = not quiet and not self.console.is_terminal
        self.bars = RichProgress(
            TextColumn("{task.description:<30}"), BarColumn(bar_width=32), MofNCompleteColumn(),
            TextColumn("{task.fields[tally]}"), TimeElapsedColumn(),
            console=self.console, auto_refresh=False, disable=quiet or self.lines)
        self.overall: TaskID | None = None
        self.per_category: dict[str, TaskID] = {}
        self.totals: dict[str, int] = {}
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self.started = False
        self.announcement = ""

    def start_total(self, n: int, per_category: Mapping[str, int] | None = None) -> None:
        """Begin with `n` checks; `per_category` (category -> count) sizes the category bars."""
        self.totals = dict(per_category or {})
        self._announce()
        if not self.started:
            self.bars.start()
            self.started = True
        if self.overall is None:
            self.overall = self.bars.add_task("all checks", total=n, tally="")
        else:
            self.bars.update(self.overall, total=n)
        for category in sorted(self.totals, key=_category_order):
            self._category_bar(category)
        self.bars.refresh()

    def _category_bar(self, category: str) -> TaskID:
        if category not in self.per_category:
            name = f"  {category} {CATEGORIES.get(category, '')}"[:30]
            self.per_category[category] = self.bars.add_task(
                name, total=self.totals.get(category), tally="")
        return self.per_category[category]

    def advance(self, outcome: Outcome | Mapping[str, Any]) -> None:
        """Count one finished check (an Outcome or its run.json dict)."""
        if isinstance(outcome, Outcome):
            check_id, category, result, seconds = (outcome.check_id, outcome.category, outcome.outcome,
                                                   outcome.duration)
        else:
            check_id, category, result, seconds = (outcome["check_id"], outcome["category"],
                                                   outcome["outcome"], outcome["duration"])
        if self.lines:
            self.console.print(f"{check_id} {result} {seconds:.2f}s", highlight=False, soft_wrap=True)
        if self.overall is None:
            self.start_total(0)
        assert self.overall is not None
        self.counts[""][result] += 1
        self.counts[category][result] += 1
        self.bars.update(self.overall, advance=1, tally=tally(self.counts[""]))
        self.bars.update(self._category_bar(category), advance=1,
                         tally=tally(self.counts[category]))
        self.bars.refresh()

    def announce(self, text: str) -> None:
        """One line (the run's budget), shown as the checks start, unless quiet: a run refused
        before that ends with its one error line alone."""
        self.announcement = text

    def _announce(self) -> None:
        if self.announcement and not self.quiet:
            self.console.print(f"gwconf: {escape(self.announcement)}", highlight=False, soft_wrap=True)
        self.announcement = ""

    def stop(self) -> None:
        if not self.started:
            return
        for category, task in self.per_category.items():
            done = sum(self.counts[category].values())
            self.bars.update(task, total=max(done, self.totals.get(category, 0)) or done)
        self.bars.refresh()
        self.bars.stop()
        self.started = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _category_order(category: str) -> tuple[int, str]:
    order = list(CATEGORIES)
    return (order.index(category) if category in order else len(order), category)


def verdict_line(document: Mapping[str, Any]) -> Text:
    s = document["summary"]
    verdict = s["verdict"]
    failing = [c["check_id"] for c in document["checks"] if c["outcome"] in ("fail", "error")]
    line = Text.assemble(
        ("gwconf: ", "bold"), (verdict.upper(), f"bold {STYLES[verdict]}"),
        f" {document['gateway']['name']}: MUST {s['must']['passed']}/{s['must']['total']}"
        f" ({s['must']['rate'] * 100:.0f}%), ",
        Text.from_markup(tally(s["by_outcome"]) or "no checks"))
    if failing:
        shown = ", ".join(failing[:SHOWN_FAILURES])
        more = f" and {len(failing) - SHOWN_FAILURES} more" if len(failing) > SHOWN_FAILURES else ""
        line.append(f"; failing: {shown}{more}")
    return line


def print_summary(document: Mapping[str, Any], console: Console, *, quiet: bool = False) -> None:
    """The run's summary: per-category table and failing checks, or one line when quiet."""
    if quiet:
        console.print(verdict_line(document), soft_wrap=True)
        return
    s = document["summary"]
    table = Table(title=f"gwconf: {document['gateway']['name']} ({document['run_id']})",
                  title_justify="left")
    table.add_column("category")
    for o in OUTCOMES:
        table.add_column(o, justify="right", style=STYLES[o])
    table.add_column("MUST passed", justify="right")
    categories = sorted(set(s["by_category"]) | set(s["must_by_category"]), key=_category_order)
    for category in categories:
        counts = s["by_category"].get(category, {})
        must = s["must_by_category"].get(category)
        table.add_row(f"{category} [dim]{escape(CATEGORIES.get(category, ''))}[/]",
                      *(str(counts.get(o, 0) or "") for o in OUTCOMES),
                      f"{must['passed']}/{must['total']}" if must else "-")
    table.add_section()
    table.add_row("[bold]total[/]", *(str(s["by_outcome"].get(o, 0)) for o in OUTCOMES),
                  f"{s['must']['passed']}/{s['must']['total']}")
    console.print(table)
    failing = [c for c in document["checks"] if c["outcome"] in ("fail", "error")]
    for check in failing[:SHOWN_FAILURES]:
        console.print(Text.assemble(
            (f"  {check['outcome']:<5} ", STYLES[check["outcome"]]), (check["check_id"], "bold"),
            f" {check['level']} {check['title']}",
            (f"\n        {check['message']}" if check["message"] else "", "dim")))
    if len(failing) > SHOWN_FAILURES:
        console.print(f"  … and {len(failing) - SHOWN_FAILURES} more in report.html")
    console.print(verdict_line(document), soft_wrap=True)
