"""Stage 5-6: the atc command lines (and AIPP config) for each batch size, and running atc.

Commands come from a typed option set (`AtcOptionSet`: every option gancc writes, with the
rules ATC enforces checked before anything runs), built from the spec and the final graph,
then rendered for the shell the way the Ascend docs write them
(`--input_shape="name:1,3,256,256"`), inside an `atc.sh` that changes to its own folder
first, so the build folder can be copied to an Ascend host and run as is. atc runs only when
it is installed (on PATH, or `--atc PATH`); its failure output is parsed for error codes.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from gancc import aipp as aipp_msg
from gancc.errors import GanccError, SpecError, ToolError, did_you_mean
from gancc.spec.model import AtcOptions, ModelSpec, TensorFlowSource

ATC_SUCCESS = "ATC run success"
ATC_FAILED = "ATC run failed"
# Values the docs always write in double quotes; others are quoted only when the shell needs it.
_ALWAYS_QUOTED = ("input_shape", "out_nodes", "dynamic_batch_size", "output_type",
                  "dynamic_image_size", "dynamic_dims", "input_fp16_nodes", "auto_tune_mode")

# ATC error codes (the CANN error-code pages): what they mean, and what to do in gancc terms.
ERROR_CODES = {
    "E10001": ("an option value is invalid", "check the flag the message names; `gancc check` "
               "validates the spec's atc block"),
    "E10003": ("an option value is invalid", "check the flag the message names (e.g. "
               "dynamic_batch_size takes digits and commas only)"),
    "E10034": ("an input fed by AIPP is fp16", "drop that input from input_fp16_nodes"),
    "E10052": ("the AIPP config breaks a rule", "crop/padding sizes must add up to the model "
               "input; with dynamic_image_size crop/padding must be off; one aipp block per input"),
    "E10501": ("an op's IR is not registered", "source CANN's set_env.sh (ASCEND_OPP_PATH), and "
               "install the ops package for this soc_version"),
    "E13005": ("a config file did not parse", "gancc writes valid AIPP files: was aipp.cfg edited, "
               "or is this CANN too old for a field (padding_value)?"),
    "E16001": ("--out_nodes names a node the model lacks", "name graph outputs in out_nodes; node "
               "names such as Tanh_156 change with the exporter"),
    "E16002": ("no ONNX parser for an op at this opset", "run `gancc lint` on the .onnx: it names "
               "the op and the rewrite or opset that fixes it"),
    "E19010": ("no parser for an op (older CANN)", "run `gancc lint`; try opset 11, or a rewrite "
               "that replaces the op"),
    "E81012": ("AIPP op failed to compile (old TBE)", "an AIPP value is out of range; `gancc check` "
               "checks them"),
}


def explain_failure(log: str) -> tuple[list[str], list[str]]:
    """The error codes in an atc log, and one line per code: its message and what to do."""
    codes = list(dict.fromkeys(re.findall(r"\b([EW]\d{5})\b", log)))
    lines = []
    for code in codes:
        said = next((ln.strip() for ln in log.splitlines() if code in ln), "")
        meaning, todo = ERROR_CODES.get(code, ("", "see the CANN error-code reference"))
        lines.append(f"{code}: {meaning + ': ' if meaning else ''}{todo}"
                     + (f"\n      atc said: {said[:300]}" if said else ""))
    return codes, lines


class AtcOptionError(GanccError):
    def __init__(self, option: str, message: str, hint: str | None = None):
        super().__init__(message, hint)
        self.option = option


@dataclass
class AtcOptionSet:
    """The documented atc options gancc writes, typed. `check()` applies ATC's own rules;
    `argv()` renders them in the order the Ascend docs write them."""

    model: str
    output: str
    soc_version: str
    framework: int = 5                   # 5 = ONNX (3 TensorFlow, 1 MindSpore, 0 Caffe)
    weight: str | None = None            # Caffe only
    input_format: str = "NCHW"
    input_shape: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    dynamic_batch_size: tuple[int, ...] = ()
    dynamic_image_size: tuple[tuple[int, int], ...] = ()
    dynamic_dims: tuple[tuple[int, ...], ...] = ()
    out_nodes: tuple[str, ...] = ()
    output_type: str | None = None
    output_type_nodes: tuple[tuple[str, str], ...] = ()   # (node:index or name, TYPE)
    input_fp16_nodes: tuple[str, ...] = ()
    insert_op_conf: str | None = None
    aipp_inputs: tuple[str, ...] = ()
    enable_small_channel: bool | None = None
    precision_mode: str | None = None
    op_select_implmode: str | None = None
    keep_dtype: str | None = None
    fusion_switch_file: str | None = None
    auto_tune_mode: tuple[str, ...] = ()   # ("RL", "GA"); CANN 5.x Auto Tune (docs/ascend.md)
    log: str = "error"
    extra: tuple[str, ...] = ()

    def check(self, graph_inputs: list[str] | None = None) -> None:
        self._check_auto_tune()
        self._check_one_dynamic_option()
        self._check_framework_and_format()
        self._check_dynamic_gears()
        self._check_node_names(graph_inputs)

    def _check_auto_tune(self) -> None:
        # the atc option page: --auto_tune_mode cannot be used with --op_bank_path
        if self.auto_tune_mode and any(f.partition("=")[0] == "--op_bank_path" for f in self.extra):
            raise AtcOptionError("auto_tune_mode", "--auto_tune_mode and --op_bank_path are "
                                 "mutually exclusive", "drop --op_bank_path from extra, or the "
                                 "auto_tune_mode")

    def _check_one_dynamic_option(self) -> None:
        dynamic = [n for n in ("dynamic_batch_size", "dynamic_image_size", "dynamic_dims")
                   if getattr(self, n)]
        if len(dynamic) > 1:
            raise AtcOptionError(dynamic[1], f"--{dynamic[0]} and --{dynamic[1]} are mutually "
                                 "exclusive", "ATC takes at most one dynamic_* option")

    def _check_framework_and_format(self) -> None:
        if self.weight and self.framework != 0:
            raise AtcOptionError("weight", "--weight is for Caffe models only")
        formats = {5: ("NCHW", "NCDHW", "ND"), 3: ("NCHW", "NHWC", "ND", "NCDHW", "NDHWC")}
        allowed = formats.get(self.framework, ("NCHW", "ND"))
        if self.insert_op_conf or self.dynamic_image_size:
            allowed = tuple(dict.fromkeys(("NCHW", "NHWC") + allowed))
        if self.input_format and self.input_format not in allowed:   # "": atc's default
            raise AtcOptionError("input_format", f"--input_format={self.input_format} is not "
                                 f"accepted here; allowed: {', '.join(allowed)}",
                                 "NHWC needs AIPP or dynamic_image_size for ONNX models")
        if self.insert_op_conf and self.input_format not in ("NCHW", "NHWC"):
            raise AtcOptionError("input_format", "with AIPP, --input_format is NCHW or NHWC")

    def _check_dynamic_gears(self) -> None:
        if self.dynamic_batch_size:
            gears = self.dynamic_batch_size
            if not 2 <= len(gears) <= 100:
                raise AtcOptionError("dynamic_batch_size", f"dynamic_batch_size has {len(gears)} "
                                     "gear(s); ATC takes 2 to 100")
            if any(dims[0] != -1 for _, dims in self.input_shape):
                raise AtcOptionError("dynamic_batch_size", "dynamic_batch_size needs -1 as the "
                                     "first dim of every --input_shape entry")
        if self.dynamic_image_size:
            if not 2 <= len(self.dynamic_image_size) <= 100:
                raise AtcOptionError("dynamic_image_size", "dynamic_image_size takes 2 to 100 gears")
            if self.input_format not in ("NCHW", "NHWC"):
                raise AtcOptionError("dynamic_image_size", "dynamic_image_size needs NCHW or NHWC")
        if self.dynamic_dims:
            if self.input_format != "ND":
                raise AtcOptionError("dynamic_dims", "dynamic_dims needs input_format ND",
                                     "add `input_format ND` to the atc block")
            if self.insert_op_conf:
                raise AtcOptionError("dynamic_dims", "dynamic_dims and AIPP (--insert_op_conf) "
                                     "are mutually exclusive (ATC E10001)")
            unknown = sum(d == -1 for _, dims in self.input_shape for d in dims)
            for gear in self.dynamic_dims:
                if len(gear) != unknown:
                    raise AtcOptionError("dynamic_dims", f"dynamic_dims gear {gear} has {len(gear)} "
                                         f"value(s) but --input_shape has {unknown} -1 dim(s)")
            if not 2 <= len(self.dynamic_dims) <= 100:
                raise AtcOptionError("dynamic_dims", "dynamic_dims takes 2 to 100 gears")

    def _check_node_names(self, graph_inputs: list[str] | None) -> None:
        """Input and output names must exist (graph_inputs None: no graph to check against)."""
        names = [n for n, _ in self.input_shape]
        for name in self.input_fp16_nodes:
            if graph_inputs is not None and name not in graph_inputs:
                raise AtcOptionError("input_fp16_nodes", f"input_fp16_nodes names '{name}', which "
                                     "is not a graph input", did_you_mean(name, graph_inputs))
            if name in self.aipp_inputs:
                raise AtcOptionError("input_fp16_nodes", f"input '{name}' is fed by AIPP and "
                                     "cannot be fp16 (ATC E10034)")
        if graph_inputs is not None:
            for name in names:
                if name not in graph_inputs:
                    raise AtcOptionError("input_shape", f"--input_shape names '{name}', which is "
                                         "not a graph input", did_you_mean(name, graph_inputs))
        if self.output_type_nodes:
            for target, _ in self.output_type_nodes:
                if target not in self.out_nodes:
                    raise AtcOptionError("output_type", f"per-output output_type names "
                                         f"'{target}', which --out_nodes does not list",
                                         "ATC needs every per-node output_type node in out_nodes")

    def argv(self) -> list[str]:
        shape = ";".join(f"{n}:{','.join(map(str, dims))}" for n, dims in self.input_shape)
        a = ["atc", f"--framework={self.framework}", f"--model={self.model}"]
        if self.weight:
            a.append(f"--weight={self.weight}")
        a.append(f"--output={self.output}")
        if self.input_format:
            a.append(f"--input_format={self.input_format}")
        a.append(f"--input_shape={shape}")
        if self.dynamic_batch_size:
            a.append(f"--dynamic_batch_size={','.join(map(str, self.dynamic_batch_size))}")
        if self.dynamic_image_size:
            a.append("--dynamic_image_size=" + ";".join(f"{h},{w}" for h, w in self.dynamic_image_size))
        if self.dynamic_dims:
            a.append("--dynamic_dims=" + ";".join(",".join(map(str, g)) for g in self.dynamic_dims))
        a.append(f"--soc_version={self.soc_version}")
        if self.out_nodes:
            a.append(f"--out_nodes={';'.join(self.out_nodes)}")
        if self.output_type_nodes:
            a.append("--output_type=" + ";".join(f"{t}:{k}" if ":" in t else f"{t}:0:{k}"
                                                  for t, k in self.output_type_nodes))
        elif self.output_type:
            a.append(f"--output_type={self.output_type}")
        if self.input_fp16_nodes:
            a.append(f"--input_fp16_nodes={';'.join(self.input_fp16_nodes)}")
        if self.insert_op_conf:
            a.append(f"--insert_op_conf={self.insert_op_conf}")
        if self.enable_small_channel is not None:
            a.append(f"--enable_small_channel={int(self.enable_small_channel)}")
        if self.precision_mode:
            a.append(f"--precision_mode={self.precision_mode}")
        if self.op_select_implmode:
            a.append(f"--op_select_implmode={self.op_select_implmode}")
        if self.keep_dtype:
            a.append(f"--keep_dtype={self.keep_dtype}")
        if self.fusion_switch_file:
            a.append(f"--fusion_switch_file={self.fusion_switch_file}")
        if self.auto_tune_mode:
            a.append(f"--auto_tune_mode={','.join(self.auto_tune_mode)}")
        a += list(self.extra)
        a.append(f"--log={self.log}")
        return a


@dataclass(frozen=True)
class AtcCommand:
    batch: int          # the batch size, or 0 for one dynamic-batch command
    argv: tuple[str, ...]
    om_base: str        # the --output value; atc writes <om_base>.om (or <om_base>_<os>_<arch>.om)
    soc_version: str | None = None   # the SoC this command compiles for
    soc_suffix: str = ""             # "_<soc>" when the spec lists several SoCs, else ""

    @property
    def tag(self) -> str:
        return (f"bs{self.batch}" if self.batch else "dynbs") + self.soc_suffix

    def shell(self) -> str:
        return shell_line(self.argv)


# A flag name written bare before its quoted value; anything else is quoted whole.
_FLAG = re.compile(r"--[A-Za-z0-9_]+\Z")


def shell_line(argv: tuple[str, ...] | list[str]) -> str:
    """argv as one bash line that runs exactly argv: `--key="value"` the way the Ascend docs
    write it where that is safe (no character bash expands inside double quotes, no control
    character), else single-quoted by shlex. A spec string never reaches the shell unquoted."""
    parts = [shlex.quote(argv[0])]
    for arg in argv[1:]:
        key, sep, value = arg.partition("=")
        if not sep or not _FLAG.match(key):
            parts.append(shlex.quote(arg))
        elif key.lstrip("-") not in _ALWAYS_QUOTED and shlex.quote(value) == value:
            parts.append(arg)
        elif re.search(r'["$`\\!]', value) or has_control(value):
            parts.append(f"{key}={shlex.quote(value)}")
        else:
            parts.append(f'{key}="{value}"')
    return " ".join(parts)


def has_control(text: str) -> bool:
    """Whether `text` holds a control character or a line/paragraph separator."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029" for ch in text)


def comment_text(text: str) -> str:
    """`text` for a `#` comment line: control characters (a newline would end the comment and
    start a command) written as escapes."""
    if not has_control(text):
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii") if has_control(ch) else ch
                   for ch in text)


def write_aipp(model: ModelSpec, path: Path, spec_path: str, blocks: list[dict]) -> str:
    """Write `blocks` (gancc.aipp.resolve.block_dicts) as the AIPP config ATC reads."""
    from gancc.fsutil import write_text_atomic

    for block in blocks:
        reserved = sorted(set(block) & aipp_msg.RESERVED_FIELDS)
        if reserved:   # checked at the spec already; never let one reach the file
            raise GanccError(f"refusing to write reserved AIPP field(s) {', '.join(reserved)}")
    header = (f"AIPP config for model '{model.name}', generated by gancc from "
              f"{comment_text(spec_path)}.\n"
              "Passed to atc as --insert_op_conf; the AIPP input becomes uint8 NHWC.")
    text = aipp_msg.to_text(blocks, header)
    aipp_msg.parse_config(text)   # what we write must be what ATC's TextFormat parser reads
    write_text_atomic(path, text)
    return text


def _producer(final: onnx.ModelProto) -> dict[str, tuple[str, int]]:
    out = {}
    for node in final.graph.node:
        for i, name in enumerate(node.output):
            out[name] = (node.name, i)
    return out


def resolve_out_nodes(model: ModelSpec, final: onnx.ModelProto | None) -> tuple[list[str], list[str]]:
    """out_nodes as atc should get them, and notes on what was resolved.

    `node:index` entries whose tensor is a graph output become that output's name (node
    names such as Tanh_156 are exporter artefacts); entries must exist in the final graph.
    When a per-output output_type is given, ATC wants node:index entries, so every entry is
    written that way, resolved against this graph. Without an ONNX graph (a TensorFlow .pb
    compiled directly) the entries are written as given.
    """
    if final is None:
        return list(model.atc.out_nodes), []
    outputs = [o.name for o in final.graph.output]
    nodes = {n.name: n for n in final.graph.node}
    span = model.atc.spans.get("out_nodes")
    notes: list[str] = []
    resolved: list[str] = []
    for entry in model.atc.out_nodes:
        node, sep, index = entry.partition(":")
        if sep:
            if node not in nodes:
                raise SpecError(f"out_nodes names node '{node}', which the final graph does not have",
                                span, f"name a graph output instead ({', '.join(outputs)}): node "
                                "names such as Tanh_156 change with the exporter version")
            if not index.isdigit() or int(index) >= len(nodes[node].output):
                raise SpecError(f"out_nodes entry '{entry}': node '{node}' has "
                                f"{len(nodes[node].output)} output(s)", span)
            tensor = nodes[node].output[int(index)]
            if tensor in outputs:
                notes.append(f"out_nodes {entry} is graph output '{tensor}': written as '{tensor}'")
                entry = tensor
        elif entry not in outputs:
            raise SpecError(f"out_nodes names '{entry}', which is not an output of the final graph",
                            span, did_you_mean(entry, outputs))
        resolved.append(entry)
    styles = {":" in e for e in resolved}
    if model.atc.output_type_nodes or len(styles) > 1:
        producer = _producer(final)
        as_nodes = []
        for e in resolved:
            if ":" in e:
                as_nodes.append(e)
            else:
                node, idx = producer[e]
                as_nodes.append(f"{node}:{idx}")
        if as_nodes != resolved:
            notes.append("out_nodes written as node:index (" + ";".join(as_nodes) + "), "
                         "resolved against this graph: ATC takes one style per call"
                         + (" and per-node output_type needs node names"
                            if model.atc.output_type_nodes else ""))
        resolved = as_nodes
    return resolved, notes


def _output_type_nodes(model: ModelSpec, final: onnx.ModelProto | None, out_nodes: list[str]):
    if final is None:
        return tuple(model.atc.output_type_nodes)
    outputs = [o.name for o in final.graph.output]
    producer = _producer(final)
    pairs = []
    for target, kind in model.atc.output_type_nodes:
        if target in outputs:
            node, idx = producer[target]
            target = f"{node}:{idx}"
        if target not in out_nodes:
            raise SpecError(f"output_type names '{target}', which out_nodes does not list",
                            model.atc.spans.get("output_type"),
                            "ATC needs per-node output_type nodes in out_nodes: add the output "
                            "to out_nodes")
        pairs.append((target, kind))
    return tuple(pairs)


def detect_soc_version(npu_smi: str = "npu-smi") -> str | None:
    """"Ascend" + the Name column of `npu-smi info` (e.g. 310P3 -> Ascend310P3), if present."""
    exe = shutil.which(npu_smi)
    if not exe:
        return None
    try:
        proc = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_npu_smi(proc.stdout) if proc.returncode == 0 else None


def parse_npu_smi(text: str) -> str | None:
    """The SoC name from `npu-smi info`'s table: NPU rows read `| id  Name | Health | ...`
    (chip rows, `| chip device | Bus-Id | ...`, have a bus id where the health is)."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[1]:
            continue
        first = cells[0].split()
        if len(first) >= 2 and first[0].isdigit() and cells[1][0].isalpha():
            name = first[1]
            return name if name.startswith("Ascend") else f"Ascend{name}"
    return None


def soc_version_for(model: ModelSpec, override: str | None, detect: bool = True) -> tuple[str, str]:
    """The soc_version and where it came from: --soc-version, the spec, or npu-smi."""
    if override:
        return override, "command line"
    if model.atc.soc_version:
        return model.atc.soc_version, "spec"
    found = detect_soc_version() if detect else None
    if found:
        return found, "npu-smi info"
    raise SpecError(f"model '{model.name}' has no soc_version for atc",
                    model.spans.get("atc", model.span),
                    "add `soc_version Ascend310P3` (the `Name` npu-smi prints, prefixed with "
                    "'Ascend') to the atc block, or pass --soc-version")


def support_files(model: ModelSpec) -> dict[str, str]:
    """Files the atc options point at, written next to atc.sh: name -> text."""
    files = {}
    if model.atc.keep_dtype:
        files["keep_dtype.cfg"] = "\n".join(model.atc.keep_dtype) + "\n"
    if model.atc.fusion_off:
        files["fusion_switch.cfg"] = "".join(f"{name}:off\n" for name in model.atc.fusion_off)
    return files


def _check_keep_dtype(model: ModelSpec, final: onnx.ModelProto | None) -> None:
    if final is None:
        return
    names = {n.name for n in final.graph.node}
    types = {n.op_type for n in final.graph.node}
    for line in model.atc.keep_dtype:
        if line.startswith("OpType::"):
            continue   # ATC op types (InstanceNorm, ...) differ from ONNX ones: not checkable here
        if line not in names:
            raise SpecError(f"keep_dtype names node '{line}', which the final graph does not have",
                            model.atc.spans.get("keep_dtype"),
                            did_you_mean(line, names) or
                            f"or keep a whole op type: \"OpType::{sorted(types)[0] if types else 'Conv2D'}\"")


def soc_versions_for(model: ModelSpec, override: str | None, detect: bool = True
                     ) -> tuple[tuple[str, ...], str]:
    """Every SoC atc compiles for, and where they came from: --soc-version (one SoC), the
    spec's `soc_version A, B, ...`, or soc_version_for's single answer."""
    if not override and len(model.atc.soc_versions) > 1:
        return model.atc.soc_versions, "spec"
    soc, origin = soc_version_for(model, override, detect)
    return (soc,), origin


def option_sets(model: ModelSpec, final: onnx.ModelProto | None, onnx_file: str, aipp_file: str | None,
                soc_version: str | None, detect: bool = True) -> tuple[list[tuple[int, AtcOptionSet]], list[str]]:
    """The option set of each atc command: per SoC (in the spec's order), per batch size."""
    socs, _origin = soc_versions_for(model, soc_version, detect)
    # A TensorFlow source: atc compiles the frozen .pb (--framework=3, and --input_format only
    # when the spec sets one: ATC's TF default is NHWC). Without an ONNX conversion (final is
    # None) there is no graph to check names against.
    tensorflow = isinstance(model.source, TensorFlowSource)
    if final is None:
        out_nodes, notes, type_nodes, graph_inputs = list(model.atc.out_nodes), [], (), None
    else:
        out_nodes, notes = resolve_out_nodes(model, final)
        type_nodes = _output_type_nodes(model, final, out_nodes)
        _check_keep_dtype(model, final)
        graph_inputs = [i.name for i in final.graph.input]
    base = model.atc.output or model.name
    atc = model.atc
    files = support_files(model)

    def one(batch: int | None, soc: str) -> AtcOptionSet:
        # several SoCs: each .om is named for its SoC, so the commands do not overwrite
        suffix = f"_{soc}" if len(socs) > 1 else ""
        shapes = _input_shapes(model, batch)
        return AtcOptionSet(
            model=onnx_file, output=(f"{base}_bs{batch}" if batch else f"{base}_dynbs") + suffix,
            soc_version=soc, framework=3 if tensorflow else 5,
            input_format=atc.input_format if not tensorflow or "input_format" in atc.spans else "",
            input_shape=shapes,
            dynamic_batch_size=atc.dynamic_batch_size if not batch else (),
            dynamic_image_size=atc.dynamic_image_size, dynamic_dims=atc.dynamic_dims,
            out_nodes=tuple(out_nodes), output_type=atc.output_type, output_type_nodes=type_nodes,
            input_fp16_nodes=atc.input_fp16_nodes, insert_op_conf=aipp_file,
            aipp_inputs=tuple(a.input for a in model.aipp),
            enable_small_channel=atc.enable_small_channel, precision_mode=atc.precision_mode,
            op_select_implmode=atc.op_select_implmode,
            keep_dtype="keep_dtype.cfg" if "keep_dtype.cfg" in files else None,
            fusion_switch_file="fusion_switch.cfg" if "fusion_switch.cfg" in files else None,
            auto_tune_mode=atc.auto_tune_mode, log=atc.log, extra=atc.extra)

    if atc.dynamic_batch_size:
        _check_symbolic_batch(model)
        sets = [(0, one(None, soc)) for soc in socs]
    else:
        sets = [(b, _with_batch_options(one(b, soc), atc, b))
                for soc in socs for b in model.batch_sizes()]
    _check_option_sets(model, sets, graph_inputs)
    return sets, notes


def _with_batch_options(opts: AtcOptionSet, atc: AtcOptions, batch: int) -> AtcOptionSet:
    """`opts` with the spec's `batch N { key value }` options for this batch size (each key
    replaces the block's value; lower.PER_BATCH_KEYS are all AtcOptionSet fields)."""
    block = atc.for_batch(batch)
    return dataclasses.replace(opts, **dict(block.options)) if block else opts


def _input_shapes(model: ModelSpec, batch: int | None) -> list[tuple[str, tuple[int, ...]]]:
    """--input_shape entries for one batch size (None: -1, the dynamic batch); H and W are -1
    with dynamic_image_size."""
    atc = model.atc
    shapes = []
    for inp in model.inputs:
        dims = list(inp.concrete_shape(batch if batch else -1))
        if atc.dynamic_image_size and len(dims) == 4:
            hw = (1, 2) if atc.input_format == "NHWC" else (2, 3)
            for k in hw:
                dims[k] = -1
        shapes.append((inp.name, tuple(dims)))
    return shapes


def _check_symbolic_batch(model: ModelSpec) -> None:
    """dynamic_batch_size needs every input's batch dimension symbolic."""
    for inp in model.inputs:
        if inp.batch_dim is None:
            raise SpecError(f"dynamic_batch_size needs a symbolic batch dimension, but input "
                            f"'{inp.name}' is fixed", model.atc.spans.get("dynamic_batch_size"),
                            "make the first dimension symbolic, e.g. float32[N, 3, 256, 256]")


def _check_option_sets(model: ModelSpec, sets: list[tuple[int, AtcOptionSet]],
                       graph_inputs: list[str] | None) -> None:
    """ATC's option rules on each set, reported at the spec line of the offending option."""
    atc = model.atc
    for batch, opts in sets:
        try:
            opts.check(graph_inputs)
        except AtcOptionError as err:
            block = atc.for_batch(batch)
            spans = {**atc.spans, **(block.spans if block else {})}
            raise SpecError(err.message, spans.get(err.option, model.spans.get("atc", model.span)),
                            err.hint) from None


def atc_commands(model: ModelSpec, final: onnx.ModelProto, onnx_file: str,
                 aipp_file: str | None, soc_version: str | None) -> list[AtcCommand]:
    sets, _ = option_sets(model, final, onnx_file, aipp_file, soc_version)
    several = len({opts.soc_version for _, opts in sets}) > 1
    return [AtcCommand(batch, tuple(opts.argv()), opts.output, opts.soc_version,
                       f"_{opts.soc_version}" if several else "") for batch, opts in sets]


def write_script(commands: list[AtcCommand], path: Path, model: ModelSpec, spec_path: str) -> None:
    from gancc import __version__
    from gancc.fsutil import write_text_atomic

    lines = [
        "#!/usr/bin/env bash",
        f"# atc commands for model '{comment_text(model.name)}', generated by gancc {__version__} "
        f"from {comment_text(spec_path)}.",
        "# Run on a machine with CANN installed, after sourcing its environment, e.g.",
        "#   source /usr/local/Ascend/ascend-toolkit/set_env.sh && bash atc.sh",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        "",
    ]
    if model.atc.env:     # the spec's `env NAME "value"` lines (names checked at the spec)
        lines += [f"export {name}={shlex.quote(value)}" for name, value in model.atc.env] + [""]
    for cmd in commands:
        what = f"batch {cmd.batch}" if cmd.batch else "dynamic batch"
        if cmd.soc_suffix:    # several SoCs; a single SoC's script stays as it always was
            what += f", {comment_text(cmd.soc_version or '')}"
        lines += [f"# {what} -> {comment_text(cmd.om_base)}.om", cmd.shell(), ""]
    write_text_atomic(path, "\n".join(lines), mode=0o755)
    for name, text in support_files(model).items():
        write_text_atomic(path.parent / name, text)


def find_atc(explicit: str | None) -> str | None:
    if explicit:
        found = shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
        if found is None:
            raise GanccError(f"atc not found at '{explicit}'", "pass the path of the atc binary")
        # atc runs in the build's staging folder: a relative path means the user's folder
        return os.path.abspath(found)
    return shutil.which("atc")


def run_atc(atc: str, commands: list[AtcCommand], workdir: Path, on_start=None,
            env: tuple[tuple[str, str], ...] = ()) -> list[dict]:
    """Run each command in `workdir`, with `env` (the spec's `env` lines, as atc.sh exports
    them) added to the environment; returns per-batch records. Raises ToolError on failure."""
    records = []
    environ = {**os.environ, **dict(env)} if env else None
    for cmd in commands:
        if on_start:
            on_start(cmd)
        argv = [atc, *cmd.argv[1:]]
        try:
            proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, env=environ)
        except OSError as err:
            raise ToolError(cmd.shell(), -1, "", f"cannot run atc: {err.strerror or err}",
                            "check the path given with --atc") from None
        log = (proc.stdout or "") + (proc.stderr or "")
        (workdir / f"atc_{cmd.tag}.log").write_text(log, encoding="utf-8")
        oms = sorted(p.name for p in workdir.glob(f"{cmd.om_base}*.om"))
        if proc.returncode != 0 or not oms:
            codes, explained = explain_failure(log)
            what = (f"batch {cmd.batch}" if cmd.batch else "the dynamic-batch model") + \
                (f" on {cmd.soc_version}" if cmd.soc_suffix else "")
            raise ToolError(cmd.shell(), proc.returncode, log[-3000:],
                            f"atc failed for {what}" +
                            (f" with {', '.join(codes)}" if codes else "") +
                            ("" if oms else " (no .om written)"),
                            "\n  ".join(explained) or f"see atc_{cmd.tag}.log and the plog under "
                            "$HOME/ascend/log")
        records.append({"batch": cmd.batch, "soc_version": cmd.soc_version, "om": oms,
                        "success_line": ATC_SUCCESS in log})
    return records
