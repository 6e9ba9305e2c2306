"""Terminal output. Progress, logs and warnings go to stderr (`Ui`); a command's results go to
stdout (`Ui.result`, `print_table`), so `gancc build ... > log` keeps the results and a pipe
gets plain text: no box drawing, no cut names, no colour when stdout is not a terminal."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

from rich.console import Console
from rich.panel import Panel


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


class Ui:
    """What a build says while it runs. `quiet`: nothing but errors (which the CLI prints)."""

    def __init__(self, quiet: bool = False):
        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet

    def heading(self, text: str) -> None:
        if not self.quiet:
            self.console.print(f"[bold]{text}[/bold]")

    def info(self, text: str) -> None:
        if not self.quiet:
            # soft_wrap: a log line stays one line (greppable) even when stderr is not a tty
            self.console.print(f"  {text}", soft_wrap=True)

    def warn(self, title: str, text: str) -> None:
        # Loud on a terminal; a plain `warning (TITLE): ...` line in a log file. Warnings are
        # also in report.json, so --quiet (errors only) loses nothing.
        if self.quiet:
            return
        if self.console.is_terminal:
            self.console.print(Panel(text, title=f"[bold]{title}[/bold]", border_style="yellow",
                                     expand=False))
        else:
            self.console.print(f"warning ({title}): {text}", soft_wrap=True)

    def result(self, text: str) -> None:
        """A line of the command's result: on stdout, plain and never wrapped."""
        if not self.quiet:
            print(text, flush=True)

    @contextmanager
    def stage(self, name: str, timings: dict[str, float], detail: str = ""):
        """Time a stage, show a spinner while it runs and a check mark (or cross) after."""
        start = time.perf_counter()
        status = None
        if not self.quiet and self.console.is_terminal:
            status = self.console.status(f"{name} {detail}".strip())
            status.start()
        try:
            yield
        except BaseException:
            timings[name] = time.perf_counter() - start
            if status:
                status.stop()
            if not self.quiet:
                self.console.print(f"  [red]x[/red] {name:<10} failed after {timings[name]:.2f}s")
            raise
        timings[name] = time.perf_counter() - start
        if status:
            status.stop()
        if not self.quiet:
            self.console.print(f"  [green]✓[/green] {name:<10} {timings[name]:6.2f}s  {detail}",
                               soft_wrap=True)


def print_table(columns: list[str], rows: list[list[str]], title: str | None = None,
                styles: dict[str, str] | None = None) -> None:
    """A table on stdout that never cuts a cell. On a terminal: a rich table whose cells fold
    (wrap) instead of ending in '…'; otherwise plain columns, two spaces apart, a header row
    first and no title, so `grep`, `cut` and `awk` see every name whole."""
    if not stdout_is_terminal():
        widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
        for row in [columns, *rows]:
            cells = [cell.ljust(w) for cell, w in zip(row[:-1], widths)] + [row[-1]]
            print("  ".join(cells).rstrip())
        return
    from rich.markup import escape
    from rich.table import Table

    styles = styles or {}
    table = Table(title=escape(title) if title else None)
    name_width = max([len(columns[0])] + [len(r[0]) for r in rows])
    for i, column in enumerate(columns):
        # the first column holds the names users type: kept whole on one line where it fits
        table.add_column(column, overflow="fold", min_width=min(name_width, 40) if i == 0
                         else None)
    for row in rows:   # `styles`: a cell's text -> its style (e.g. "fired": "green")
        table.add_row(*(f"[{styles[c]}]{escape(c)}[/]" if c in styles else escape(c)
                        for c in row))
    Console(highlight=False).print(table)
