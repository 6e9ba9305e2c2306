"""Stage 8: report.json, the machine-readable account of one model's build."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from gancc.fsutil import write_text_atomic
from gancc.versions import package_versions

_TOOLS = ("torch", "onnx", "onnxruntime", "onnxsim", "numpy", "lark", "protobuf")


def tool_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **package_versions(_TOOLS)}


def _default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "to_json"):
        return obj.to_json()
    if isinstance(obj, float):
        return obj
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def write_report(report: dict, path: Path) -> None:
    text = json.dumps(report, indent=2, default=_default, allow_nan=True)
    write_text_atomic(path, text + "\n")
