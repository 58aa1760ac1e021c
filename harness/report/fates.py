"""Parameter fate tables: run.json `parameter_fates` as one table per provider, and across runs.

Pure functions over run.json documents; the templates `_fates.*.j2` and `_fates_matrix.*.j2`
render them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FATE_ORDER = ("forwarded", "mapped", "refused", "dropped", "altered", "failed")
GOOD = frozenset({"forwarded", "mapped", "refused"})


@dataclass
class FateTable:
    provider: str
    rows: list[dict[str, Any]]  # the parameter_fates entries, in check then parameter order
    counts: dict[str, int]  # fate -> how many rows


def fate_tables(document: dict[str, Any]) -> list[FateTable]:
    """One table per provider, providers in the order PARAM judged them."""
    tables: dict[str, FateTable] = {}
    for fate in document.get("parameter_fates") or []:
        table = tables.setdefault(fate["provider"], FateTable(fate["provider"], [], {}))
        table.rows.append(fate)
        table.counts[fate["fate"]] = table.counts.get(fate["fate"], 0) + 1
    for table in tables.values():
        table.counts = {f: table.counts[f] for f in FATE_ORDER if f in table.counts}
    return list(tables.values())


@dataclass
class FateRow:
    provider: str
    endpoint: str
    parameter: str
    cells: list[str]  # per run: its fates over the aliases ("forwarded", "mapped / dropped"), "" when not judged


def fate_matrix(documents: list[dict[str, Any]]) -> list[FateRow]:
    """Each documented parameter down, each run across: what became of it there."""
    keys: dict[tuple[str, str, str], None] = {}
    per_run: list[dict[tuple[str, str, str], list[str]]] = []
    for document in documents:
        seen: dict[tuple[str, str, str], list[str]] = {}
        for fate in document.get("parameter_fates") or []:
            key = (fate["provider"], fate["endpoint"], fate["parameter"])
            keys.setdefault(key)
            if fate["fate"] not in seen.setdefault(key, []):
                seen[key].append(fate["fate"])
        per_run.append(seen)
    return [FateRow(*key, [" / ".join(run.get(key, [])) for run in per_run]) for key in keys]


def cell_class(cell: str) -> str:
    """A matrix cell's colour: pass when every fate is acceptable, fail when any is not."""
    if not cell:
        return "skip"
    return "pass" if all(f in GOOD for f in cell.split(" / ")) else "fail"
