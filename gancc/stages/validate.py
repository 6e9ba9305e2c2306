"""Stage 7: validate on the CPU. onnxruntime runs the final graph (and the unmodified export)
on seeded inputs; the reference (the PyTorch generator, or the exported ONNX) runs on the
same inputs; each output is compared with the recipes' metrics (gancc/metrics.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from gancc.data_io import output_channel_axis
from gancc.dtypes import numpy_dtype
from gancc.errors import ValidationError
from gancc.metrics import BORDER_BAND, metrics, region_metrics  # noqa: F401 (re-exported)
from gancc.spec.model import ModelSpec
from gancc.stages.runtime import run_onnx, run_reference, run_torch



def make_inputs(model: ModelSpec, samples: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs, one batch of `samples` (or the fixed batch when the input is static)."""
    rng = np.random.default_rng(seed)
    data = dict(model.validation.data)
    out = {}
    for inp in model.inputs:
        batch = samples if inp.batch_dim else None
        shape = inp.concrete_shape(batch) if batch else inp.concrete_shape(0)
        dtype = numpy_dtype(inp.dtype)
        call = data.get(inp.name)
        args = [a.value for a in call.args] if call else []
        kw = call.kwargs() if call else {}
        kind = call.name if call else ("normal" if np.issubdtype(dtype, np.floating) else "randint")

        def param(i: int, name: str, default: float) -> float:
            return kw.get(name, args[i] if len(args) > i and call and call.args[i].name is None else default)

        if kind == "uniform":
            values = rng.uniform(param(0, "low", 0.0), param(1, "high", 1.0), shape)
        elif kind == "normal":
            values = rng.normal(param(0, "mean", 0.0), param(1, "std", 1.0), shape)
        elif kind == "randint":
            values = rng.integers(int(param(0, "low", 0)), int(param(1, "high", 10)), shape)
        else:  # bernoulli
            values = rng.random(shape) < param(0, "p", 0.5)
        out[inp.name] = np.asarray(values).astype(dtype)
    return out


PICTURE_SAMPLES = 2   # outputs of this many samples are kept for the HTML report's pictures


@dataclass
class ValidationReport:
    reference: str
    samples: int
    seed: int
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    exported: dict[str, dict[str, float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    reference_outputs: dict = field(default_factory=dict, repr=False)   # kept for the build cache
    final_outputs: dict = field(default_factory=dict, repr=False)       # fp16 foresight's fp32 side
    exported_outputs: dict = field(default_factory=dict, repr=False)    # likewise
    regions: dict = field(default_factory=dict)    # border band vs interior, per comparison/output
    # {"reference"|"final"|"exported": {output: first PICTURE_SAMPLES samples}}; report.html only
    pictures: dict = field(default_factory=dict, repr=False)
    fp16: dict | None = None        # the fp16 prediction (gancc.stages.predict), when it ran
    aipp: dict | None = None        # uint8 images through the AIPP emulator, when it ran
    warnings: list[str] = field(default_factory=list)   # e.g. the output's size is not the input's

    def to_json(self) -> dict:
        out = {"reference": self.reference, "samples": self.samples, "seed": self.seed,
               "final_vs_reference": self.final, "exported_vs_reference": self.exported,
               "requirements": self.checks, "passed": not self.failures,
               **({"border_band": self.regions} if self.regions else {}),
               **({"warnings": self.warnings} if self.warnings else {})}
        for key in ("fp16", "aipp"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class KnownReference:
    """Reference outputs on the validation inputs computed before validation runs: read
    from the build cache, or run early for a large model whose generator is emptied when
    its weights move into the graph. `exported`: the unmodified export's outputs ({} if
    none were kept)."""

    kind: str
    outputs: dict = field(repr=False)
    exported: dict = field(default_factory=dict, repr=False)


def reference_ahead(model: ModelSpec, module, samples: int | None = None) -> KnownReference:
    """The PyTorch reference on the validation inputs, run ahead of validate()."""
    spec = model.validation
    feeds = make_inputs(model, samples or spec.samples, spec.seed)
    return KnownReference("pytorch", run_torch(module, model, feeds))


def validate(model: ModelSpec, final: onnx.ModelProto, unmodified: onnx.ModelProto | None,
             module, framework=None, samples: int | None = None,
             known: KnownReference | None = None,
             final_file: Path | None = None) -> ValidationReport:
    """Compare the final graph (and the unmodified export) with the reference on seeded
    inputs. With `known`, the reference is not run again and `module` is not needed.
    `framework`: a non-PyTorch reference runner (TensorFlow). `final_file`: where `final` is
    saved (as it is), for onnxruntime to read a large model from."""
    spec = model.validation
    samples = samples or spec.samples
    report = ValidationReport(spec.reference, samples, spec.seed)
    if spec.reference == "none":
        return report
    feeds = make_inputs(model, samples, spec.seed)
    outputs = model.output_names or [o.name for o in final.graph.output]
    if known is not None:
        report.reference, reference = known.kind, known.outputs
    else:
        report.reference, reference = run_reference(model, spec.reference, module, framework,
                                                    unmodified, final, feeds)
    report.reference_outputs = reference
    actual = report.final_outputs = run_onnx(final, feeds, outputs, final_file)
    axis = output_channel_axis(model)     # pixel_cosine across channels: NHWC for TensorFlow
    report.final = {name: metrics(reference[name], actual[name], axis) for name in outputs}
    exported = (known.exported or None) if known is not None else None
    if unmodified is not None and report.reference in ("pytorch", "tensorflow"):
        exported = run_onnx(unmodified, feeds, outputs)
    if exported is not None:
        report.exported_outputs = exported
        report.exported = {name: metrics(reference[name], exported[name], axis)
                           for name in outputs}
    _keep_pictures(report, reference, actual, exported, outputs, axis)
    report.warnings = size_warnings(model, feeds, actual)
    check_requirements(model, report)
    return report


def size_warnings(model: ModelSpec, feeds: dict, outputs: dict) -> list[str]:
    """An image output whose size is neither an image input's nor a whole multiple or
    fraction of it (a super-resolution, an encoder): the generator changed the image size,
    as a 250x250 input that comes out 252x252 after down- and up-sampling by 4."""
    def hw(shape) -> tuple[int, int]:
        return tuple(shape[1:3]) if model.atc.input_format == "NHWC" else tuple(shape[2:4])

    images = {n: hw(a.shape) for n, a in feeds.items() if np.ndim(a) == 4 and min(hw(a.shape)) >= 8}
    found = []
    for name, out in outputs.items():
        if np.ndim(out) != 4 or not images:
            continue
        size = hw(np.shape(out))
        if any(_scaled(size, other) for other in images.values()):
            continue
        iname, (ih, iw) = next(iter(images.items()))
        found.append(f"output '{name}' is {size[0]}x{size[1]} for the {ih}x{iw} input "
                     f"'{iname}': the generator changes the image size (a size its down- and "
                     "up-sampling layers do not divide evenly; use an input size they divide, "
                     "e.g. a multiple of 4 or 8, or crop the output)")
    return found


def _scaled(size: tuple[int, int], image: tuple[int, int]) -> bool:
    """Whether `size` is `image` scaled by one whole factor (or its inverse), 1 included."""
    (h, w), (ih, iw) = size, image
    if h >= ih:
        return h % ih == 0 and w % iw == 0 and h // ih == w // iw
    return ih % h == 0 and iw % w == 0 and ih // h == iw // w


def check_requirements(model: ModelSpec, report: ValidationReport) -> None:
    """The spec's `require` lines, applied to the final graph's figures (computed now, or
    read from the build cache: the requirements are not part of the figures' key)."""
    report.checks, report.failures = [], []
    for req in model.validation.requirements:
        for name in ([req.output] if req.output else list(report.final)):
            value = report.final[name][req.metric]
            ok = req.holds(value)
            report.checks.append({"output": name, "metric": req.metric, "value": value,
                                  "require": f"{req.compare} {req.threshold}", "passed": ok,
                                  "line": req.span.line})
            if not ok:
                report.failures.append(f"output '{name}': {req.metric} = {value:.6g}, required "
                                       f"{req.compare} {req.threshold} ({req.span})")


def _keep_pictures(report: ValidationReport, reference: dict, actual: dict, exported: dict | None,
                   outputs: list[str], axis: int = 1) -> None:
    """Border-band figures (on the outputs as NCHW: `axis` is where their channels are), and
    the first samples' outputs for the report's pictures."""
    for kind, values in (("final", actual), ("exported", exported)):
        if values is None:
            continue
        report.pictures[kind] = {n: np.asarray(values[n])[:PICTURE_SAMPLES] for n in outputs}
        for name in outputs:
            ref, got = np.asarray(reference[name]), np.asarray(values[name])
            if ref.ndim == 4 and axis % 4 != 1:
                ref, got = np.moveaxis(ref, axis, 1), np.moveaxis(got, axis, 1)
            region = region_metrics(ref, got)
            if region is not None:
                report.regions.setdefault(f"{kind}_vs_reference", {})[name] = region
    report.pictures["reference"] = {n: np.asarray(reference[n])[:PICTURE_SAMPLES] for n in outputs}


def raise_if_failed(model: ModelSpec, report: ValidationReport) -> None:
    if report.failures:
        raise ValidationError(f"model '{model.name}' failed validation:\n  " +
                              "\n  ".join(report.failures),
                              "see report.json for all figures; a lossy rewrite (e.g. "
                              "reflect-pad-to-constant) may cost more than the threshold allows")
