"""Structural graph diff: what changed between two ONNX graphs, grouped by rewrite.

`diff_models(a, b)` matches nodes by topology, op type, attributes and constant values
(gancc.diff.match), so renames and initializer shuffles are not reported, then lists the
differences (gancc.diff.compare). Renderers: text and JSON (gancc.diff.text), a
self-contained side-by-side HTML page (gancc.diff.html). `gancc diff` is the command line.
"""

from gancc.diff.compare import DiffResult, diff_models

__all__ = ["DiffResult", "diff_models"]
