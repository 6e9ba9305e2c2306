"""What the device will do, predicted on the CPU: its fp16 numerics and its AIPP.

The fp16 prediction (`--fp16-foresight`, "fp16 foresight" in the report and docs): ATC's default precision on inference chips is force_fp16. The final graph
runs on the validation inputs the way force_fp16 stores it: weights and every float
activation rounded to fp16 (explicit Cast pairs, so overflow to inf shows), Resize/Pad and
shape parameters kept fp32; its figures against the reference sit next to the fp32 ones, so
an fp16 collapse (overflowing activations, InstanceNorm variance) shows before the model
reaches a device. onnxconverter-common's float16 conversion (fp32 I/O, Resize/Upsample kept
fp32 by its default block list) is run too and reported beside it; on onnxruntime's CPU
kernels it under-reports overflow, because ops without an fp16 kernel run in fp32 and the
casts between them are dropped.

AIPP validation: seeded uint8 images in the AIPP input format go through the AIPP emulator
(integer CSC, fp16 normalisation) into the final graph; the same images through exact float
pre-processing go into the reference. The difference is what AIPP itself costs.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field

import numpy as np
import onnx

from gancc.data_io import output_channel_axis
from gancc.onnx_io import is_large
from gancc.spec.model import ModelSpec
from gancc.metrics import metrics
from gancc.stages.runtime import onnx_session, output_names, run_onnx, run_reference
from gancc.stages.validate import make_inputs

# precision modes under which ATC runs (most) ops in fp16
FP16_PRECISION_MODES = (None, "force_fp16", "allow_fp32_to_fp16", "allow_mix_precision",
                        "allow_mix_precision_fp16")


def fp16_wanted(model: ModelSpec, override: bool | None = None) -> bool:
    """`validate { fp16 ... }`, else --fp16-foresight/--no-fp16-foresight, else on when atc
    will compile in fp16 (precision_mode unset, i.e. ATC's default force_fp16, or an fp16 mode)."""
    if override is not None:
        return override
    setting = getattr(model.validation, "fp16", None)
    if setting is not None:
        return bool(setting)
    return model.atc.precision_mode in FP16_PRECISION_MODES


def to_fp16(final: onnx.ModelProto) -> onnx.ModelProto:
    """onnxconverter-common's float16 graph: fp16 weights and tensors, fp32 inputs/outputs,
    its default block list (Resize, Upsample, ...) kept in fp32 with their scales and roi."""
    from onnxconverter_common import float16

    copy = onnx.ModelProto()
    copy.CopyFrom(final)
    with warnings.catch_warnings():   # "the float32 number 1e-9 will be truncated": expected
        warnings.simplefilter("ignore", UserWarning)
        return float16.convert_float_to_float16(copy, keep_io_types=True)


# inputs that are parameters, not data: never rounded to fp16 (Resize roi/scales, ...)
_PARAM_INPUTS = {"Resize": (1, 2, 3), "Upsample": (1,), "Pad": (1, 2), "Reshape": (1,),
                 "Slice": (1, 2, 3, 4), "Expand": (1,), "Tile": (1,)}
# ops whose float outputs are values of their float data inputs (selected, moved, or with
# the sign changed): given fp16 values they give fp16 values, so rounding their output again
# changes no bit, and fp16_storage leaves out that Cast pair
_VALUE_PRESERVING = {"Relu", "MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze",
                     "Flatten", "Identity", "Concat", "Split", "Slice", "Gather", "Expand",
                     "Tile", "DepthToSpace", "SpaceToDepth", "Neg", "Abs", "Max", "Min"}


def fp16_storage(final: onnx.ModelProto) -> onnx.ModelProto:
    """The graph as force_fp16 stores it: float weights rounded to fp16, and every float
    tensor a node produces rounded to fp16 (an explicit Cast pair), computed in fp32 between.
    onnxruntime's CPU kernels run many fp16 ops in fp32 and drop the casts between them, so
    the converter's graph alone hides fp16 overflow; these explicit casts keep it."""
    from onnx import TensorProto, helper, numpy_helper

    from gancc.graph.proto import copy_fields
    from gancc.graph.types import inferred_elem_types

    # built up rather than copied: CopyFrom and then replacing each weight would hold the
    # weights three times (the final graph's, the copy's, the rounded ones)
    model = onnx.ModelProto()
    copy_fields(final, model, skip={"graph"})
    graph, source = model.graph, final.graph
    copy_fields(source, graph, skip={"initializer"})
    params = {n.input[i] for n in source.node for i in _PARAM_INPUTS.get(n.op_type, ())
              if i < len(n.input)}
    for init in source.initializer:
        if init.data_type == TensorProto.FLOAT and init.name not in params:
            array = numpy_helper.to_array(init)
            graph.initializer.append(numpy_helper.from_array(
                array.astype(np.float16).astype(np.float32), init.name))
        else:
            graph.initializer.append(init)
    try:     # on the weight-free graph: inference needs the weights' shapes, not values
        types = inferred_elem_types(final)
    except Exception:   # a graph shape inference cannot follow: no activation is rounded
        types = {}
    # tensors whose values are fp16 values already: rounded weights, rounded activations
    in_fp16 = {i.name for i in source.initializer if i.data_type == TensorProto.FLOAT
               and i.name not in params}
    nodes = []
    for node in graph.node:
        nodes.append(node)
        skip = _PARAM_INPUTS.get(node.op_type, ())
        data = [x for i, x in enumerate(node.input) if x and i not in skip]
        if node.op_type in _VALUE_PRESERVING and data and all(
                x in in_fp16 for x in data if types.get(x, TensorProto.FLOAT) == TensorProto.FLOAT):
            in_fp16.update(node.output)         # exact already: no Cast pair
            continue
        for k, out in enumerate(list(node.output)):
            if not out or types.get(out) != TensorProto.FLOAT:
                continue
            in_fp16.add(out)
            raw = f"{out}__fp32"
            node.output[k] = raw
            # named after the tensor, which is unique, not the node: a Split has several
            nodes.append(helper.make_node("Cast", [raw], [f"{out}__fp16"], to=TensorProto.FLOAT16,
                                          name=f"{out}__to_fp16"))
            nodes.append(helper.make_node("Cast", [f"{out}__fp16"], [out], to=TensorProto.FLOAT,
                                          name=f"{out}__from_fp16"))
    del graph.node[:]
    graph.node.extend(nodes)
    return model


CONVERTER_OFF = ("not run: the second opinion is off by default (`validate { fp16_converter "
                 "true }` runs it)")


def fp16_outputs(model: ModelSpec, final: onnx.ModelProto, samples: int,
                 spin: bool = True) -> dict:
    """The fp16 graphs' outputs on the validation inputs: {"stored": fp16 storage's,
    "converted": onnxconverter-common's (or why not)}, or {"error": why none ran}. The
    converter's graph runs only when the spec asks (`validate { fp16_converter true }`)."""
    feeds = make_inputs(model, samples, model.validation.seed)
    outputs = output_names(model, final)
    try:
        stored = run_onnx(lambda: fp16_storage(final), feeds, outputs, spin=spin)
    except Exception as err:   # a graph onnxruntime cannot load after the casts, ...
        return {"error": f"{type(err).__name__}: {str(err)[:300]}"}
    converted: dict | str
    if not model.validation.fp16_converter:
        converted = CONVERTER_OFF
    elif is_large(final):
        converted = ("not run for a large model: the converter works on a copy of the graph "
                     "and converts its weights, holding them twice more")
    else:
        try:
            converted = run_onnx(lambda: to_fp16(final), feeds, outputs, spin=spin)
        except Exception as err:   # no fp16 kernel for an op, converter limits, ...
            converted = f"{type(err).__name__}: {str(err)[:300]}"
    return {"stored": stored, "converted": converted}


class Fp16Job:
    """fp16_outputs() in a background thread, started as soon as the final graph exists:
    building the two fp16 graphs is Python (a second or more on a 45 MB generator) and runs
    while validation's onnxruntime and PyTorch runs hold the CPUs; its sessions' threads
    sleep rather than spin between ops, as they share the CPUs. The final graph is only
    read, by both."""

    def __init__(self, model: ModelSpec, final: onnx.ModelProto, samples: int):
        self._result: dict | BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(model, final, samples),
                                        name="gancc-fp16")
        self._thread.start()

    def _run(self, model: ModelSpec, final: onnx.ModelProto, samples: int) -> None:
        try:
            self._result = fp16_outputs(model, final, samples, spin=False)
        except BaseException as err:   # noqa: BLE001 - handed to the thread that waits
            self._result = err

    def result(self) -> dict:
        self._thread.join()
        if isinstance(self._result, BaseException):
            raise self._result
        return self._result


def predict_fp16(model: ModelSpec, final: onnx.ModelProto, reference: dict, samples: int,
                 fp32: dict | None = None, job: Fp16Job | None = None) -> dict:
    """fp16 figures per output against `reference` (outputs on validate.make_inputs feeds);
    `fp32`, the final graph's own outputs on those feeds if validation has them already;
    `job`, the fp16 outputs computed in the background (else they are computed now)."""
    ran = job.result() if job is not None else fp16_outputs(model, final, samples)
    if "error" in ran:
        return {"ran": False, "error": ran["error"]}
    stored, converted = ran["stored"], ran["converted"]
    outputs = output_names(model, final)
    if not fp32 or any(name not in fp32 for name in outputs):
        fp32 = run_onnx(final, make_inputs(model, samples, model.validation.seed), outputs)
    figures, drift, conv = {}, {}, {}
    axis = output_channel_axis(model)     # as validation takes them (NHWC for TensorFlow)
    for name in outputs:
        out, bad = _finite(stored[name])
        figures[name] = {**metrics(reference[name], out, axis), "non_finite": bad}
        drift[name] = metrics(fp32[name], out, axis)
        if isinstance(converted, dict):
            c, bad = _finite(converted[name])
            conv[name] = {**metrics(reference[name], c, axis), "non_finite": bad}
    return {"ran": True,
            "method": "fp16 storage: weights and every float activation rounded to fp16 "
                      "(Resize/Pad/shape parameters kept fp32), arithmetic in fp32 between",
            "final_vs_reference": figures, "fp16_vs_fp32_final": drift,
            "converter": {"tool": "onnxconverter_common.float16.convert_float_to_float16"
                                  "(keep_io_types=True, default op_block_list)",
                          "final_vs_reference": conv if isinstance(converted, dict) else None,
                          "error": None if isinstance(converted, dict) else converted}}


def _finite(array) -> tuple[np.ndarray, int]:
    """Values with inf/nan replaced as fp16 saturation would (+-65504, nan -> 0), so the
    figures stay numbers; and how many there were."""
    out = np.asarray(array, dtype=np.float32)
    bad = int((~np.isfinite(out)).sum())
    return np.nan_to_num(out, nan=0.0, posinf=65504.0, neginf=-65504.0), bad


@dataclass
class AippInputs:
    """The images fed to the device and the tensors AIPP / float pre-processing make of them."""

    images: dict[str, np.ndarray] = field(default_factory=dict)        # uint8, per AIPP input
    emulated: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)   # rule -> feeds
    float_feeds: dict[str, np.ndarray] = field(default_factory=dict)


def aipp_inputs(model: ModelSpec, blocks, samples: int) -> AippInputs:
    from gancc.aipp import emulate

    seed = model.validation.seed
    base = make_inputs(model, samples, seed)
    out = AippInputs(emulated={rule: dict(base) for rule in emulate.CSC_ROUNDING},
                     float_feeds=dict(base))
    for k, block in enumerate(blocks):
        inp = next(i for i in model.inputs if i.name == block.input)
        n = samples if inp.batch_dim else int(inp.shape[0])
        images = emulate.make_images(block.fields, n, block.model_hw, seed + 101 + k)
        out.images[block.input] = images
        nhwc = model.atc.input_format == "NHWC"
        dtype = np.float16 if inp.dtype == "float16" else np.float32
        for rule in emulate.CSC_ROUNDING:
            x = emulate.emulate(block.fields, images, block.channels, rule)
            out.emulated[rule][block.input] = (x.transpose(0, 2, 3, 1) if nhwc else x).astype(dtype)
        x = emulate.float_preprocess(block.fields, images, block.channels)
        out.float_feeds[block.input] = (x.transpose(0, 2, 3, 1) if nhwc else x).astype(dtype)
    return out


def emulate_aipp(model: ModelSpec, final, blocks, samples: int, kind: str, module=None,
                 framework=None, unmodified=None) -> tuple[dict, AippInputs, dict]:
    """Figures for uint8 -> emulated AIPP -> final graph vs float pre-processing -> reference
    (`kind` as validation found it). Returns (report section, the inputs, the reference
    outputs on the float pre-processing)."""
    inputs = aipp_inputs(model, blocks, samples)
    outputs = output_names(model, final)
    _, reference = run_reference(model, kind, module, framework, unmodified, final,
                                 inputs.float_feeds)
    section: dict = {"images": {name: list(img.shape) for name, img in inputs.images.items()},
                     "csc_rounding": {}}
    with onnx_session(final) as run:            # one session for every input set
        floated = run(inputs.float_feeds, outputs)
        emulated = {rule: run(feeds, outputs) for rule, feeds in inputs.emulated.items()}
    for rule, feeds in inputs.emulated.items():
        actual = emulated[rule]
        section["csc_rounding"][rule] = {
            "input_vs_float": {name: _diff(feeds[name], inputs.float_feeds[name])
                               for name in inputs.images},
            "final_vs_reference": {name: metrics(reference[name], actual[name])
                                   for name in outputs},
            # the same graph on both inputs: what AIPP alone costs
            "aipp_vs_float_preprocessing": {name: metrics(floated[name], actual[name])
                                            for name in outputs}}
    section["final_vs_reference"] = section["csc_rounding"]["floor"]["final_vs_reference"]
    section["aipp_vs_float_preprocessing"] = \
        section["csc_rounding"]["floor"]["aipp_vs_float_preprocessing"]
    return section, inputs, reference


def _diff(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean())}
