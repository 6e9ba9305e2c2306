"""`gancc build --run`: run the compiled .om on the validation inputs and compare its outputs
with the CPU reference.

Inputs are written as raw little-endian C-order `.bin` files, one folder per model input and
one file per sample (uint8 image bytes for an AIPP input: packed HWC, or NV12 for
YUV420SP). The runner is ais_bench (`python3 -m ais_bench`, an `ais_bench` executable, or
the path given with --ais-bench) or msame (--msame PATH, or `msame` on PATH). Outputs are
read back the way those tools name them:

    ais_bench  <output>/<output_dirname>/<input stem>_<k>.bin       (k: 0-based output index)
    msame      <output>/<timestamp>/<input stem>_output_<k>.bin

as the dtype atc's --output_type gives each output (by file size when it is not set), in
the reference's shape, and compared with the recipes' metrics. The report records the tool's
path and whether `npu-smi` saw an NPU: outputs from a machine without one (a stand-in tool)
are plumbing checks, never device validation.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import NamedTuple
from pathlib import Path

import numpy as np
import onnx

from gancc.data_io import output_channel_axis
from gancc.errors import GanccError, ToolError, did_you_mean
from gancc.spec.model import ModelSpec
from gancc.metrics import metrics
from gancc.stages.atc import AtcCommand, detect_soc_version

OUTPUT_DTYPES = {"FP32": np.float32, "FP16": np.float16, "UINT8": np.uint8, "INT8": np.int8,
                 "UINT16": np.uint16, "INT16": np.int16, "UINT32": np.uint32, "INT32": np.int32,
                 "UINT64": np.uint64, "INT64": np.int64, "DOUBLE": np.float64}
_BY_SIZE = {4: np.float32, 2: np.float16, 1: np.uint8}


@dataclass(frozen=True)
class DeviceTool:
    kind: str               # "ais_bench" | "msame"
    prefix: tuple[str, ...]  # the command up to its options
    path: str


def find_tool(ais_bench: str | None = None, msame: str | None = None) -> DeviceTool | None:
    for kind, explicit in (("ais_bench", ais_bench), ("msame", msame)):
        if explicit:
            found = shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
            if found is None:
                raise GanccError(f"{kind} not found at '{explicit}'", f"pass the path of {kind}")
            return DeviceTool(kind, (str(Path(found).resolve()),), str(Path(found).resolve()))
    exe = shutil.which("ais_bench")
    if exe:
        return DeviceTool("ais_bench", (exe,), exe)
    if importlib.util.find_spec("ais_bench") is not None:
        return DeviceTool("ais_bench", (sys.executable, "-m", "ais_bench"), sys.executable)
    exe = shutil.which("msame")
    if exe:
        return DeviceTool("msame", (exe,), exe)
    return None


def choose_soc(socs: tuple[str, ...], requested: str | None, detected: str | None
               ) -> tuple[str | None, str]:
    """The SoC whose .om --run runs, and how it was chosen. The runner runs on this machine,
    whose NPU takes only the .om built for its SoC: what npu-smi reports wins (a --run-soc
    or a build for other SoCs is an error), then --run-soc, then the only SoC. Several SoCs
    and no way to tell is an error: never a silent pick."""
    listed = ", ".join(socs)
    if detected:
        if requested and requested != detected:
            raise GanccError(f"--run-soc {requested}, but npu-smi reports an {detected} NPU on "
                             "this machine", f"drop --run-soc, or run on a machine with an "
                             f"{requested} NPU")
        if socs and detected not in socs:
            raise GanccError(f"npu-smi reports an {detected} NPU on this machine, but the .om "
                             f"files are built for {listed}",
                             f"add {detected} to the atc block's soc_version, or build with "
                             f"--soc-version {detected}")
        return detected, "npu-smi info"
    if requested:
        if socs and requested not in socs:
            raise GanccError(f"--run-soc {requested}: the .om files are built for {listed}",
                             did_you_mean(requested, socs) or f"pass one of: {listed}")
        return requested, "--run-soc"
    if len(socs) > 1:
        raise GanccError(f"--run: the .om files are built for {listed}, and npu-smi reports "
                         "no NPU here to tell which one this machine takes",
                         f"pass --run-soc with one of: {listed}")
    return (socs[0] if socs else None), "the only soc_version"


class DevicePick(NamedTuple):
    """The .om --run runs: its atc command, its file, and how its SoC was chosen
    (choose_soc: "npu-smi info", "--run-soc" or "the only soc_version")."""

    command: AtcCommand
    om: str
    soc_chosen_by: str


def pick_command(commands: list[AtcCommand], records: list[dict], tool: DeviceTool,
                 run_soc: str | None = None) -> DevicePick:
    """The .om to run: for the SoC choose_soc picks, batch 1, else the dynamic-batch one,
    else (ais_bench) the smallest."""
    socs = tuple(dict.fromkeys(c.soc_version for c in commands if c.soc_version))
    soc, how = choose_soc(socs, run_soc, detect_soc_version())
    by_batch = {c.batch: (c, r) for c, r in zip(commands, records)
                if soc is None or c.soc_version in (soc, None)}
    for key in (1, 0):
        if key in by_batch and by_batch[key][1]["om"]:
            c, r = by_batch[key]
            return DevicePick(c, r["om"][0], how)
    if tool.kind == "msame":
        raise GanccError("msame feeds one file per run, so --run needs a batch-1 model",
                         "add batch 1 to the input's batch sizes, or use ais_bench")
    c, r = by_batch[min(b for b in by_batch if by_batch[b][1]["om"])]
    return DevicePick(c, r["om"][0], how)


def _om_outputs(model: ModelSpec, final: onnx.ModelProto, out_nodes: list[str]) -> list[str]:
    """Output tensor names in the .om's output order (out_nodes order, else the graph's)."""
    if not out_nodes:
        return [o.name for o in final.graph.output]
    tensors = {n.name: list(n.output) for n in final.graph.node}
    names = []
    for entry in out_nodes:
        node, sep, idx = entry.partition(":")
        names.append(tensors[node][int(idx)] if sep else entry)
    return names


def _out_types(model: ModelSpec, final: onnx.ModelProto, names: list[str]) -> dict[str, str | None]:
    per = {}
    tensors = {n.name: list(n.output) for n in final.graph.node}
    for target, kind in model.atc.output_type_nodes:
        node, sep, idx = target.partition(":")
        per[tensors[node][int(idx or 0)] if sep and node in tensors else target] = kind
    return {n: per.get(n, model.atc.output_type) for n in names}


def write_inputs(feeds: dict[str, np.ndarray], folder: Path) -> list[Path]:
    """One folder per input (in model order), one raw C-order file per sample."""
    dirs = []
    for k, (name, array) in enumerate(feeds.items()):
        d = folder / f"{k}_{name}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(array.shape[0]):
            np.ascontiguousarray(array[i:i + 1]).astype(array.dtype.newbyteorder("<")).tofile(
                d / f"sample_{i}.bin")
        dirs.append(d)
    return dirs


def read_output(path: Path, shape: tuple[int, ...], kind: str | None) -> np.ndarray:
    raw = path.read_bytes()
    count = int(np.prod(shape))
    if kind:
        dtype = OUTPUT_DTYPES[kind]
    else:
        per = len(raw) // max(count, 1)
        if per * count != len(raw) or per not in _BY_SIZE:
            raise GanccError(f"{path.name}: {len(raw)} bytes do not hold {count} values",
                             "set output_type in the atc block so gancc knows the dtype")
        dtype = _BY_SIZE[per]
    data = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    if data.size != count:
        raise GanccError(f"{path.name}: {data.size} {np.dtype(dtype).name} values, expected "
                         f"{count} for shape {list(shape)}")
    return data.reshape(shape)


def run(model: ModelSpec, final: onnx.ModelProto, workdir: Path, command: AtcCommand, om: str,
        tool: DeviceTool, feeds: dict[str, np.ndarray], reference: dict[str, np.ndarray],
        out_nodes: list[str]) -> dict:
    folder = workdir / "device"
    inputs = write_inputs(feeds, folder / "inputs")
    out_root = folder / "outputs"
    shutil.rmtree(out_root, ignore_errors=True)
    out_root.mkdir(parents=True)
    rel = [str(d.relative_to(workdir)) for d in inputs]
    argv = [*tool.prefix, "--model", om, "--input", ",".join(rel),
            "--output", str(out_root.relative_to(workdir))]
    if tool.kind == "ais_bench":
        argv += ["--output_dirname", "run", "--outfmt", "BIN"]
        if command.batch == 0:
            argv += ["--dymBatch", "1"]
    else:
        argv += ["--outfmt", "BIN"]
        if command.batch == 0:
            argv += ["--dymBatch", "1"]
    shown = " ".join(shlex.quote(a) for a in argv)
    try:
        proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True)
    except OSError as err:
        raise ToolError(shown, -1, "", f"cannot run {tool.kind}: {err.strerror or err}") from None
    log = (proc.stdout or "") + (proc.stderr or "")
    (folder / f"{tool.kind}.log").write_text(log, encoding="utf-8")
    if proc.returncode != 0:
        raise ToolError(shown, proc.returncode, log[-3000:], f"{tool.kind} failed",
                        f"see device/{tool.kind}.log; is the NPU driver up (npu-smi info)?")
    if tool.kind == "ais_bench":
        result_dir = out_root / "run"
        pattern = "sample_{i}_{k}.bin"
    else:
        subdirs = sorted((p for p in out_root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
        result_dir = subdirs[-1] if subdirs else out_root
        pattern = "sample_{i}_output_{k}.bin"
    names = _om_outputs(model, final, out_nodes)
    types = _out_types(model, final, names)
    samples = next(iter(feeds.values())).shape[0]
    figures, dtypes = {}, {}
    for k, name in enumerate(names):
        if name not in reference:
            continue
        per_shape = (1,) + tuple(reference[name].shape[1:])
        parts = []
        for i in range(samples):
            path = result_dir / pattern.format(i=i, k=k)
            if not path.is_file():
                raise ToolError(shown, 0, log[-3000:], f"{tool.kind} wrote no {path.relative_to(workdir)}",
                                "the tool's output naming differs from what gancc expects")
            parts.append(read_output(path, per_shape, types[name]))
        actual = np.concatenate(parts).astype(np.float32)
        dtypes[name] = types[name] or f"{parts[0].dtype.name} (by size)"
        figures[name] = metrics(reference[name], actual, output_channel_axis(model))
    soc = detect_soc_version()
    return {"tool": tool.kind, "tool_path": tool.path, "command": shown, "om": om,
            "soc_version": command.soc_version, "samples": samples, "output_dtypes": dtypes,
            "final_vs_reference": figures, "npu_smi_soc": soc, "validated_on_device": soc is not None,
            "note": None if soc else "npu-smi saw no NPU here: these outputs come from "
            f"{tool.path}, not from an Ascend device (a plumbing check, not device validation)"}
