"""What a successful build tidies in its output root: the partial outputs of an earlier
failure of the same model, which would otherwise sit beside the new artifacts looking
current."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def remove_stale_failure(out_root: Path, model: str, failed_dir: Path | None = None
                         ) -> list[Path]:
    """Remove an earlier failed build's folder of `model`: `failed_dir` (where the build
    keeps a failure's outputs) and `<out_root>/<model>.failed/` (where gancc kept them
    before). Returns what was removed; a folder that cannot be removed is left alone (it is
    only clutter, never a reason to fail a build that succeeded)."""
    removed = []
    legacy = Path(out_root) / f"{model}.failed"
    for folder in (failed_dir, legacy if _failure_of(legacy, model) else None):
        if folder is None or not folder.is_dir() or folder.is_symlink():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    return removed


def _failure_of(folder: Path, model: str) -> bool:
    """Whether `folder` holds a failed build of `model` (its report says so): a model may
    itself be named `<model>.failed`, and its output folder is not a stale failure."""
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and report.get("model") == model \
        and report.get("status") != "ok"
