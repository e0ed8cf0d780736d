"""``auditinf eval CASES_DIR [--json]``: the accuracy harness (:mod:`auditinf.eval`) on the command line.

Prints one rich table per case kind (cases passed, decoded exactly, required flags found, minimum
severity met, malicious rated benign, benign swaps rated malicious), the failures, and the skipped
cases with their reason; ``--json`` prints ``{"summary": {...}, "cases": [{"id", "kind", "passed",
"failures"}]}`` instead. Exit 0 when no case failed, 1 when one did, 2 when the folder is unusable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .cli_common import emit
from .errors import InputError

__all__ = ["register"]

# (metric, column label): decoded exactly, required flags found, minimum severity met, malicious
# rated benign, benign swap rated malicious
_COLUMNS = (("decoded_exactly", "decoded"), ("flags_found", "flags"), ("min_severity_met", "severity"),
            ("malicious_rated_benign", "mal→benign"), ("benign_swap_rated_malicious", "swap→mal"))


def _ratio(pair: list[int]) -> str:
    hits, applicable = pair
    return f"{hits}/{applicable}" if applicable else "–"


def _cell(metrics: dict[str, bool], metric: str) -> str:
    """✓ good, ✗ bad, blank when the metric does not apply (the last two count bad outcomes)."""
    if metric not in metrics:
        return ""
    bad = metrics[metric] if metric in ("malicious_rated_benign", "benign_swap_rated_malicious") else not metrics[metric]
    return "✗" if bad else "✓"


def _print_tables(report, console: Console) -> None:
    summary = report.summary()
    for kind, row in sorted(summary["by_kind"].items()):
        table = Table(title=f"{kind}: {row['passed']}/{row['cases'] - row['skipped']} passed"
                      + (f", {row['skipped']} skipped" if row["skipped"] else ""), title_justify="left")
        table.add_column("case", overflow="fold")
        table.add_column("result")
        for _, label in _COLUMNS:
            table.add_column(label, justify="right")
        for case in (c for c in report.cases if c.kind == kind):
            table.add_row(case.id, case.status, *[_cell(case.metrics, m) for m, _ in _COLUMNS])
        table.add_row("[bold]total[/bold]", f"{row['passed']} passed", *[_ratio(row[m]) for m, _ in _COLUMNS])
        console.print(table)
    for case in report.cases:
        for failure in case.failures:
            console.print(f"[red]FAIL[/red] {case.id}: {failure}", highlight=False)
        if case.status == "skipped":
            console.print(f"[dim]skip {case.id}: {case.reason}[/dim]", highlight=False)
    console.print(f"{summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped; "
                  f"malicious rated benign: {summary['malicious_rated_benign']}; benign swaps rated malicious: "
                  f"{summary['benign_swaps_rated_malicious']}")


def eval_cases(cases_dir: Annotated[Path, typer.Argument(help="folder of case files (../shared/cases format)")],
               as_json: Annotated[bool, typer.Option("--json", help="machine-readable report")] = False) -> None:
    """Run every case file through the deterministic analysis and score it (exit 1 on any failure)."""
    from .eval import run_eval

    if not cases_dir.is_dir():
        emit(InputError(f"no such folder: {cases_dir}", code="invalid_request").to_dict())
        raise typer.Exit(2)
    report = run_eval(cases_dir)
    if as_json:
        emit(report.to_dict())
    else:
        _print_tables(report, Console())
    raise typer.Exit(0 if report.ok else 1)


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the ``auditinf`` command line."""
    app.command("eval")(eval_cases)
