"""Each assertion of a check has an id: the check's n-th asserting call site, in source order
("MAP-004#3"). Numbered from the function's source with `ast`, so no suite writes ids by hand,
and found again from the frame a failure was raised in.

An asserting call site in a check function is a call of `t.expect`, `t.fail`, `t.expect_*`, a
`t.step`/`t.job`/`t.answer` given `bounded=` (that fails a gateway that does not answer in
time), or of a helper of the suite that is handed `t` and itself holds an asserting call site.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

ASSERTING = frozenset({"expect", "fail", "blocked"})
BOUNDED = frozenset({"step", "job", "answer"})


@dataclass(frozen=True)
class Site:
    """One asserting call: its number and where it is in the module's file."""

    number: int
    line: int
    col: int
    end_line: int
    end_col: int
    text: str

    def holds(self, line: int, col: int) -> bool:
        return (self.line, self.col) <= (line, col) <= (self.end_line, self.end_col)


def _parse(func: Callable[..., Any]) -> tuple[ast.FunctionDef, int] | None:
    try:
        lines, start = inspect.getsourcelines(func)
    except (OSError, TypeError):
        return None
    tree = ast.parse(textwrap.dedent("".join(lines)))
    node = tree.body[0] if tree.body else None
    return (node, start) if isinstance(node, ast.FunctionDef) else None


def _judgement_name(node: ast.FunctionDef) -> str | None:
    return node.args.args[0].arg if node.args.args else None


def _asserts(call: ast.Call, t: str, scope: dict[str, Any], depth: int) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == t:
        if func.attr in ASSERTING or func.attr.startswith("expect_"):
            return True
        return func.attr in BOUNDED and any(k.arg == "bounded" for k in call.keywords)
    passes_t = any(isinstance(a, ast.Name) and a.id == t for a in call.args)
    if passes_t and isinstance(func, ast.Name) and depth < 3:
        helper = scope.get(func.id)
        return callable(helper) and bool(_sites(helper, depth + 1))
    return False


def _sites(func: Callable[..., Any], depth: int = 0) -> tuple[Site, ...]:
    parsed = _parse(func)
    if parsed is None:
        return ()
    node, start = parsed
    t = _judgement_name(node)
    if t is None:
        return ()
    scope = getattr(func, "__globals__", {})
    calls = sorted((c for c in ast.walk(node) if isinstance(c, ast.Call) and _asserts(c, t, scope, depth)),
                   key=lambda c: (c.lineno, c.col_offset))
    # A call nested inside another asserting call (t.expect(helper(t), ...)) is its own site.
    return tuple(Site(n, c.lineno + start - 1, c.col_offset, (c.end_lineno or c.lineno) + start - 1,
                      c.end_col_offset or 0, ast.unparse(c)[:120])
                 for n, c in enumerate(calls, 1))


@functools.cache
def sites(func: Callable[..., Any]) -> tuple[Site, ...]:
    """The asserting call sites of a check function, numbered from 1 in source order."""
    return _sites(func)


def assertion_ids(check_id: str, func: Callable[..., Any]) -> list[str]:
    return [f"{check_id}#{s.number}" for s in sites(func)]


def raised_at(check_id: str, func: Callable[..., Any], tb: TracebackType | None) -> str:
    """The id of the assertion a failure raised through, or "" when it came from elsewhere."""
    code = func.__code__
    frame_tb = None
    while tb is not None:
        if tb.tb_frame.f_code is code:
            frame_tb = tb
        tb = tb.tb_next
    if frame_tb is None:
        return ""
    positions = list(code.co_positions())
    index = frame_tb.tb_lasti // 2
    line, _, col, _ = positions[index] if 0 <= index < len(positions) else (frame_tb.tb_lineno, None, 0, None)
    line = line or frame_tb.tb_lineno
    holding = [s for s in sites(func) if s.holds(line, col or 0)]
    if not holding:
        holding = [s for s in sites(func) if s.line <= line <= s.end_line]
    if not holding:
        return ""
    innermost = min(holding, key=lambda s: (s.end_line - s.line, s.end_col - s.col))
    return f"{check_id}#{innermost.number}"
