"""Terminal output: stage progress, loud warnings, tables. Everything goes to stderr, so
stdout stays free for machine-readable output (`--json`)."""

from __future__ import annotations

import time
from contextlib import contextmanager

from rich.console import Console
from rich.panel import Panel


class Ui:
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
        # Shown even with --quiet: these are the things a user must not miss.
        self.console.print(Panel(text, title=f"[bold]{title}[/bold]", border_style="yellow",
                                 expand=False))

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
            self.console.print(f"  [green]✓[/green] {name:<10} {timings[name]:6.2f}s  {detail}")
