"""What `gancc diff` can compare: ONNX files, and stages of a build's IR dump.

An operand is one of

    model.onnx                  an ONNX file
    DIR:STAGE                   a stage of an IR dump folder (`gancc build --dump-dir`):
                                STAGE is a name (export, simplify, a pass name, final) or a
                                number (2 or 02); DIR is the dump folder itself, or a build
                                folder whose dumps are in DIR/ir/
    DIR                         a build folder: its final graph (named in report.json)

A dump folder holds NN-<stage>.onnx files, numbered in pipeline order; `final` is the last.
With a single `DIR:STAGE` operand the diff is STAGE against the stage before it, i.e. what
that pass did. Every failure names the operand and what exists instead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import onnx

from gancc.errors import GanccError
from gancc.stages.lint import check_input_graph

_DUMP_FILE = re.compile(r"^(\d+)-(.+)\.onnx$")


@dataclass(frozen=True)
class Operand:
    path: Path
    label: str


def dump_stages(folder: Path) -> list[tuple[int, str, Path]]:
    """(number, stage name, file) of each dump in `folder`, in pipeline order."""
    stages = []
    for path in folder.glob("*.onnx"):
        m = _DUMP_FILE.match(path.name)
        if m:
            stages.append((int(m.group(1)), m.group(2), path))
    return sorted(stages)


def _dump_folder(folder: Path, spec: str) -> Path:
    for candidate in (folder, folder / "ir"):
        if candidate.is_dir() and dump_stages(candidate):
            return candidate
    if not folder.exists():
        raise GanccError(f"{spec}: no such folder: {folder}")
    raise GanccError(f"{spec}: {folder} holds no IR dump (NN-<stage>.onnx files)",
                     "build with `gancc build SPEC --dump-dir` to write the dumps into the "
                     "build folder, or point at the folder given to --dump-dir")


def _pick_stage(folder: Path, stage: str, spec: str) -> int:
    """Index into dump_stages(folder) of `stage`."""
    stages = dump_stages(folder)
    names = [name for _, name, _ in stages]
    if stage.isdigit():
        for k, (number, _, _) in enumerate(stages):
            if number == int(stage):
                return k
    elif stage == "final":
        return len(stages) - 1
    elif stage in names:
        hits = [k for k, name in enumerate(names) if name == stage]
        if len(hits) > 1:
            raise GanccError(f"{spec}: stage '{stage}' ran {len(hits)} times in this dump",
                             "name it by number: " + ", ".join(
                                 f"{stages[k][0]:02d}" for k in hits))
        return hits[0]
    listing = ", ".join(f"{number:02d}-{name}" for number, name, _ in stages)
    raise GanccError(f"{spec}: no stage '{stage}' in the dump {folder}",
                     f"its stages: {listing}, final")


def resolve(spec: str) -> Operand:
    """One operand of `gancc diff` as a file to load, with a label for the output."""
    path = Path(spec)
    if path.is_file():
        return Operand(path, spec)
    if ":" in spec and not path.exists():
        base, _, stage = spec.rpartition(":")
        folder = _dump_folder(Path(base), spec)
        _, name, file = dump_stages(folder)[_pick_stage(folder, stage, spec)]
        return Operand(file, f"{base}:{name}")
    if path.is_dir():
        report = path / "report.json"
        if report.is_file():
            try:
                final = json.loads(report.read_text(encoding="utf-8"))["final"]["file"]
            except (ValueError, KeyError, TypeError):
                raise GanccError(f"{report}: names no final graph (a failed build?)") from None
            return Operand(path / final, spec)
        raise GanccError(f"{spec} is a folder: name a stage as {spec}:STAGE, or an .onnx file")
    raise GanccError(f"no such file: {spec}")


def resolve_previous(spec: str) -> tuple[Operand, Operand]:
    """For a single `DIR:STAGE` operand: the stage before it, and it."""
    if ":" not in spec or Path(spec).exists():
        raise GanccError(f"one operand given ({spec}): name two graphs, or one dump stage as "
                         "DIR:STAGE to see what that stage changed")
    base, _, stage = spec.rpartition(":")
    folder = _dump_folder(Path(base), spec)
    stages = dump_stages(folder)
    k = _pick_stage(folder, stage, spec)
    if k == 0:
        raise GanccError(f"{spec}: '{stages[0][1]}' is the first stage; nothing comes before it")
    return (Operand(stages[k - 1][2], f"{base}:{stages[k - 1][1]}"),
            Operand(stages[k][2], f"{base}:{stages[k][1]}"))


def load(operand: Operand) -> onnx.ModelProto:
    if not operand.path.is_file():
        raise GanccError(f"no such file: {operand.path} ({operand.label})")
    try:
        model = onnx.load(str(operand.path))
    except Exception as err:  # noqa: BLE001 (protobuf and external-data errors have many types)
        raise GanccError(f"{operand.path}: cannot read as ONNX: {type(err).__name__}: {err}") from None
    check_input_graph(model, operand.path)   # an empty file is no graph of 0 nodes
    return model
