"""ATC compatibility check of an ONNX graph: `gancc lint model.onnx --soc Ascend310P3`.

ATC's ONNX parser looks every node up under the key `ai.onnx::<model opset>::<OpType>`
and fails with E16002 when no plugin registered that key. gancc/data/atc_onnx_ops.tsv holds,
per op, the opsets CANN's open-source ONNX plugins register; the checks below add the plugin
rules a GAN generator runs into (ConvTranspose needs kernel_shape, Resize ignores
nearest_mode, ...). Each finding names the node and what fixes it. `gancc build` runs this
on the final graph before atc and stops on errors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources

import onnx

ATC_OPSETS = range(11, 19)          # the ai.onnx opsets the ATC guide accepts
_ALWAYS_PARSED = {"Constant"}       # special-cased by the parser (kOnnxOpMap), not plugins
_DECOMPOSE = {"GroupNormalization": "decompose into InstanceNormalization-style ops before export "
                                    "(reshape to N,G,-1 + InstanceNormalization + affine)",
              "Gelu": "export the erf form (0.5*x*(1+Erf(x/sqrt(2)))), or use opset < 20",
              "LayerNormalization": "export at opset 17 or 18, or decompose it"}


@dataclass(frozen=True)
class Finding:
    severity: str          # "error" (atc will fail) or "warning" (atc runs; results may differ)
    code: str
    message: str
    node: str | None = None
    op_type: str | None = None
    fix: str | None = None

    def render(self) -> str:
        where = f"node '{self.node}' ({self.op_type}): " if self.node else ""
        text = f"{self.severity}: [{self.code}] {where}{self.message}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


@lru_cache(maxsize=1)
def registrations() -> dict[str, tuple[int, ...]]:
    """op type -> the ai.onnx opsets ATC's plugins register it for."""
    text = resources.files("gancc.data").joinpath("atc_onnx_ops.tsv").read_text(encoding="utf-8")
    table = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("onnx_op\t"):
            continue
        op, opsets, *_ = line.split("\t")
        table[op] = tuple(int(x) for x in opsets.split(",") if x)
    return table


def _attr(node: onnx.NodeProto, name: str):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return None


def _model_opset(model: onnx.ModelProto) -> int | None:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return None


def structure(model: onnx.ModelProto) -> list[Finding]:
    """What makes a file no valid ONNX graph at all, whatever the tool: no graph (an empty
    file), an IR version or opset this onnx does not know, a tensor made twice, an input that
    nothing makes, an output nothing makes, a cycle. Each names the node."""
    graph = model.graph
    if model.ir_version == 0 and not graph.node and not graph.output:
        return [Finding("error", "structure", "holds no ONNX model (an empty or non-ONNX file)",
                        fix="export the graph again")]
    found: list[Finding] = []
    if model.ir_version > onnx.IR_VERSION:
        found.append(Finding("error", "structure", f"IR version {model.ir_version} is newer "
                             f"than this onnx ({onnx.__version__}) reads ({onnx.IR_VERSION})",
                             fix="export with an older IR version, or upgrade onnx"))
    opset = _model_opset(model)
    if opset is not None and opset > onnx.defs.onnx_opset_version():
        found.append(Finding("error", "structure", f"opset {opset} is newer than this onnx "
                             f"knows ({onnx.defs.onnx_opset_version()})", fix="export at opset 11"))
    if not graph.output:
        found.append(Finding("error", "structure", "the graph has no outputs"))
    made = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        for out in (o for o in node.output if o):
            if out in made:
                found.append(_node_finding(node, f"makes '{out}', which is already defined "
                                           "(a tensor name must be unique)"))
            made.add(out)
    for node in graph.node:
        for name in (i for i in node.input if i and i not in made):
            found.append(_node_finding(node, f"reads '{name}', which no node, input or "
                                       "initializer makes"))
    outputs = [o.name for o in graph.output]
    for name in sorted({o for o in outputs if outputs.count(o) > 1}):
        found.append(Finding("error", "structure", f"graph output '{name}' is listed twice"))
    for name in (o for o in dict.fromkeys(outputs) if o not in made):
        found.append(Finding("error", "structure", f"graph output '{name}' is made by nothing"))
    cycle = _node_in_cycle(graph)
    if cycle is not None:
        found.append(_node_finding(cycle, "is part of a cycle (its input depends on its own "
                                   "output)"))
    return found


def _node_finding(node: onnx.NodeProto, message: str) -> Finding:
    name = node.name or f"<{node.op_type} -> {node.output[0] if node.output else '?'}>"
    return Finding("error", "structure", message, name, node.op_type, "fix the exporter, or "
                   "the tool that edited the graph")


def _node_in_cycle(graph) -> onnx.NodeProto | None:
    """A node on a cycle (Kahn's algorithm over the tensors), or None for an acyclic graph."""
    producer = {o: k for k, n in enumerate(graph.node) for o in n.output if o}
    waiting = [len({producer[i] for i in n.input if i in producer}) for n in graph.node]
    readers: dict[int, set[int]] = {}
    for k, n in enumerate(graph.node):
        for src in {producer[i] for i in n.input if i in producer}:
            readers.setdefault(src, set()).add(k)
    ready = [k for k, count in enumerate(waiting) if count == 0]
    while ready:
        for r in readers.get(ready.pop(), ()):
            waiting[r] -= 1
            if waiting[r] == 0:
                ready.append(r)
    stuck = [k for k, count in enumerate(waiting) if count > 0]
    return graph.node[stuck[0]] if stuck else None


def check_input_graph(model: onnx.ModelProto, path) -> None:
    """Refuse an invalid input graph before any tool works on it, naming the file and node:
    otherwise a rewrite would be blamed, or an empty file diffed as a graph of 0 nodes."""
    from gancc.errors import GraphError

    errors = [f for f in structure(model) if f.severity == "error"]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise GraphError(f"the input graph is not valid ONNX: {first.message}{more}",
                         first.node, str(path), (first.fix or "fix the file") +
                         f"; `gancc lint {path}` lists every problem")


def lint(model: onnx.ModelProto, soc_version: str | None = None) -> list[Finding]:
    """ATC's findings per node, then the graph's structural ones (`structure`)."""
    broken = structure(model)
    if model.ir_version == 0 and not model.graph.node:
        return broken                    # no graph: nothing for ATC's rules to look at
    return _atc_findings(model) + broken


def _atc_findings(model: onnx.ModelProto) -> list[Finding]:
    findings: list[Finding] = []
    opset = _model_opset(model)
    table = registrations()
    if opset is None:
        return [Finding("error", "opset", "the model imports no ai.onnx opset", fix="re-export it")]
    if opset > max(ATC_OPSETS):
        findings.append(Finding("error", "opset", f"the model is at opset {opset}; ATC parses "
                                f"ai.onnx opsets {ATC_OPSETS.start} to {ATC_OPSETS.stop - 1}, so every "
                                "op fails (E16002)", fix="export with opset_version=11 "
                                "(`opset 11` in the spec)"))
    elif opset < ATC_OPSETS.start:
        findings.append(Finding("warning", "opset", f"the model is at opset {opset}; the ATC guide "
                                "documents opsets 11 to 18", fix="export with opset 11"))
    constants = {i.name for i in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}

    for node in model.graph.node:
        op, name = node.op_type, node.name or f"<{node.op_type} -> {node.output[0]}>"

        def add(severity, code, message, fix=None):
            findings.append(Finding(severity, code, message, name, op, fix))

        if node.domain not in ("", "ai.onnx"):
            add("error", "domain", f"custom domain '{node.domain}': ATC's ONNX parser reads "
                "ai.onnx ops only", "replace the op with standard ONNX ops before export")
            continue
        if op in _ALWAYS_PARSED:
            continue
        if op not in table:
            add("error", "E16002", f"ATC registers no ONNX parser for {op} at any opset",
                _DECOMPOSE.get(op, "replace it with a rewrite (`gancc passes` lists them) or "
                               "export the module differently"))
            continue
        if opset <= max(ATC_OPSETS) and opset not in table[op]:
            ok = [v for v in table[op] if v in ATC_OPSETS]
            add("error", "E16002", f"{op} is registered for opsets {_ranges(table[op])}, not the "
                f"model's opset {opset}", f"export at opset {ok[0] if ok else table[op][-1]}"
                + (f" ({op} is not registered at 10, 17 or 18)" if op == "Upsample" else ""))
        _op_rules(node, add, opset, constants)
    return findings


def _op_rules(node, add, opset: int, constants: set[str]) -> None:
    op = node.op_type
    if op == "ConvTranspose" and not _attr(node, "kernel_shape"):
        add("error", "plugin", "ConvTranspose has no kernel_shape; ATC's plugin requires it "
            "(\"attr kernel_shape must have value\")",
            "add the rewrite conv-transpose-kernel-shape (it writes the weight's spatial "
            "dims, W.shape[2:]), or `gancc opt IN.onnx --passes conv-transpose-kernel-shape`")
    if op == "Conv":
        if not any(_attr(node, a) for a in ("kernel_shape", "pads", "strides", "dilations")):
            add("error", "plugin", "Conv has none of kernel_shape/pads/strides/dilations; ATC's "
                "plugin needs at least one", "write kernel_shape (the weight's spatial dims)")
        pads = _attr(node, "pads")
        if pads and len(pads) % 2:
            add("error", "plugin", f"Conv pads has odd length {len(pads)}", "pads lists begin and "
                "end values for every spatial axis")
    if op == "Resize":
        mode = (_attr(node, "mode") or b"nearest").decode()
        ctm = (_attr(node, "coordinate_transformation_mode") or b"half_pixel").decode()
        if opset >= 11 and len(node.input) < 3:
            add("error", "plugin", "Resize at opset >= 11 needs roi and scales inputs (3 or more)",
                "re-export at the model's opset")
        if mode == "nearest":
            nearest_mode = (_attr(node, "nearest_mode") or b"round_prefer_floor").decode()
            if nearest_mode != "floor":
                add("warning", "resize-nearest-mode", f"ATC ignores nearest_mode "
                    f"({nearest_mode}) and maps Resize to ResizeNearestNeighborV2 (ctm {ctm}): "
                    "pixels at rounding ties may come from a different source pixel than "
                    "onnxruntime picks", "export nearest upsampling as PyTorch does "
                    "(coordinate_transformation_mode asymmetric, nearest_mode floor), or compare "
                    "on the device")
        elif mode == "cubic":
            add("warning", "resize-cubic", "Resize cubic is parsed, but the op documentation "
                "lists only nearest and linear as supported", "use linear (bilinear) upsampling")
        for ignored in ("antialias", "axes", "keep_aspect_ratio_policy"):
            if _attr(node, ignored) is not None:
                add("warning", "resize-ignored", f"ATC ignores Resize's '{ignored}' attribute",
                    "drop it, or check the result on the device")
        scales = [i for i in node.input[1:] if i]
        if any(i not in constants for i in scales):
            add("warning", "resize-dynamic", "Resize scales/sizes are computed at run time",
                "fold them to constants (gancc's simplify stage runs onnxsim)")
    if op == "Upsample":
        mode = (_attr(node, "mode") or b"nearest").decode()
        if mode not in ("nearest", "linear"):
            add("error", "plugin", f"Upsample mode {mode}: ATC supports nearest and linear",
                "use Resize (opset 11) or nearest/linear")
    if op == "Pad":
        mode = (_attr(node, "mode") or b"constant").decode()
        if mode not in ("constant", "reflect", "edge"):
            add("error", "plugin", f"Pad mode {mode}: ATC's PadV3 takes constant, reflect, edge",
                "rewrite the padding as constant/reflect/edge")
        if len(node.input) > 1 and node.input[1] and node.input[1] not in constants:
            add("warning", "pad-dynamic", "Pad's pads are computed at run time",
                "fold them to constants (gancc's simplify stage runs onnxsim)")


def _ranges(values: tuple[int, ...]) -> str:
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(f"{start}" if start == v else f"{start}-{v}")
            start = None
    return ", ".join(parts)


def to_json(findings: list[Finding], soc_version: str | None = None) -> dict:
    return {"soc_version": soc_version,
            "errors": sum(f.severity == "error" for f in findings),
            "warnings": sum(f.severity == "warning" for f in findings),
            "findings": [asdict(f) for f in findings]}
