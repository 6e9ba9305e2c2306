"""What a build stage is, and how the build runs one.

A stage has a kebab-case `name` (the progress line, `timings` in report.json, `stages` in
report.json), and three methods:

- `skip(ctx)`: why this build does not run it (a sentence the report records), or None;
- `run(ctx)`: do the work, leave artifacts in the context, return the stage's report
  section (stored as `report.<section>`) or None;
- `show(ctx, result)`: what the console says about it, after its progress line.

`timed` stages get a progress line with their seconds (as `gancc build` has always shown
them); the others (writing small files, checks) are quick and silent unless they warn.
"""

from __future__ import annotations

import time
from typing import Any

from gancc.build.context import BuildContext
from gancc.stages.report import StageRecord


class Stage:
    name = ""
    section: str | None = None      # the BuildReport field run()'s result goes to
    timed = True

    def skip(self, ctx: BuildContext) -> str | None:
        return None

    def detail(self, ctx: BuildContext) -> str:
        """Shown on the progress line next to the stage's name."""
        return ""

    def run(self, ctx: BuildContext) -> Any:
        raise NotImplementedError

    def show(self, ctx: BuildContext, result: Any) -> None:
        """Console lines after the stage ran."""

    def announce_skip(self, ctx: BuildContext, reason: str) -> None:
        """Console lines when the stage is skipped (most say nothing)."""


def run_stage(stage: Stage, ctx: BuildContext) -> None:
    reason = stage.skip(ctx)
    if reason is not None:
        ctx.report.stages.append(StageRecord(stage.name, skipped=reason))
        stage.announce_skip(ctx, reason)
        return
    start = time.perf_counter()
    try:
        if stage.timed:
            with ctx.ui.stage(stage.name, ctx.report.timings, stage.detail(ctx)):
                result = stage.run(ctx)
        else:
            result = stage.run(ctx)
    finally:
        ctx.report.stages.append(StageRecord(stage.name, time.perf_counter() - start))
    if stage.section is not None and result is not None:
        setattr(ctx.report, stage.section, result)
    stage.show(ctx, result)
