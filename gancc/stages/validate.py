"""Stage 7: validate on the CPU. onnxruntime runs the final graph (and the unmodified export)
on seeded inputs; the reference (the PyTorch generator, or the exported ONNX) runs on the
same inputs; each output is compared with the recipes' metrics.

Metrics, per output:
- pixel_cosine: cosine similarity across channels (dim 1) at each position, averaged; what
  the Ascend recipes compute with `torch.cosine_similarity(a, b)` (default dim=1);
- cosine: cosine of the flattened tensors;
- max_abs, mean_abs: absolute error;
- psnr: 10*log10(range^2 / mse), range = the reference's max - min.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from gancc.errors import ValidationError
from gancc.spec.model import ModelSpec

_NP_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64,
              "uint8": np.uint8, "int8": np.int8, "bool": np.bool_}


def make_inputs(model: ModelSpec, samples: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded inputs, one batch of `samples` (or the fixed batch when the input is static)."""
    rng = np.random.default_rng(seed)
    data = dict(model.validation.data)
    out = {}
    for inp in model.inputs:
        batch = samples if inp.batch_dim else None
        shape = inp.concrete_shape(batch) if batch else inp.concrete_shape(0)
        dtype = _NP_DTYPES[inp.dtype]
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


def metrics(reference: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    ref = reference.astype(np.float64)
    act = actual.astype(np.float64)
    diff = np.abs(ref - act)
    eps = 1e-12
    if ref.ndim >= 2:
        num = (ref * act).sum(axis=1)
        den = np.sqrt((ref * ref).sum(axis=1)) * np.sqrt((act * act).sum(axis=1))
        pixel = float(np.mean(num / np.maximum(den, eps)))
    else:
        pixel = float(np.dot(ref, act) / max(np.linalg.norm(ref) * np.linalg.norm(act), eps))
    flat = float(np.dot(ref.ravel(), act.ravel()) /
                 max(np.linalg.norm(ref.ravel()) * np.linalg.norm(act.ravel()), eps))
    mse = float(np.mean((ref - act) ** 2))
    data_range = float(ref.max() - ref.min()) or 1.0
    psnr = float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))
    return {"pixel_cosine": pixel, "cosine": flat, "max_abs": float(diff.max()),
            "mean_abs": float(diff.mean()), "psnr": psnr}


BORDER_BAND = 8       # pixels: where lossy padding rewrites (reflect -> zero) put their error
PICTURE_SAMPLES = 2   # outputs of this many samples are kept for the HTML report's pictures


def region_metrics(reference: np.ndarray, actual: np.ndarray, band: int = BORDER_BAND) -> dict | None:
    """Error in the outer `band` pixels of an NCHW output vs the interior, or None when the
    output is not an image larger than twice the band."""
    if reference.ndim != 4 or min(reference.shape[2:]) <= 2 * band:
        return None
    inner = np.zeros(reference.shape[2:], dtype=bool)
    inner[band:-band, band:-band] = True
    out = {"band": band}
    for region, mask in (("border", ~inner), ("interior", inner)):
        m = metrics(reference[:, :, mask][..., None], actual[:, :, mask][..., None])
        out[region] = {k: m[k] for k in ("pixel_cosine", "mean_abs", "max_abs")}
    return out


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

    def to_json(self) -> dict:
        return {"reference": self.reference, "samples": self.samples, "seed": self.seed,
                "final_vs_reference": self.final, "exported_vs_reference": self.exported,
                "requirements": self.checks, "passed": not self.failures,
                **({"border_band": self.regions} if self.regions else {})}


def _ort_run(model, feeds: dict[str, np.ndarray], outputs: list[str], saved: Path | None = None):
    """Run `model` (a ModelProto, or a function that makes one) in onnxruntime (CPU) on `feeds`.

    A large model (past onnx_io.LARGE_MODEL_BYTES) is handed over as a file, not as bytes:
    `SerializeToString()` plus onnxruntime's own parse would hold its weights twice more at
    once. That file is `saved` when the model is already on disk there, else a temporary
    one; a model made by a function here is dropped once written. Its session also
    allocates each activation when needed instead of planning one arena for them all (about
    0.4 GB less at 1024x2048, for a few seconds more)."""
    import onnxruntime as ort

    from gancc.onnx_io import is_large, write_onnx

    made_here = callable(model)
    if made_here:
        model = model()
    options = ort.SessionOptions()
    if not is_large(model):
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        return dict(zip(outputs, session.run(outputs, feeds)))
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    if saved is not None:
        session = ort.InferenceSession(str(saved), options, providers=["CPUExecutionProvider"])
        return dict(zip(outputs, session.run(outputs, feeds)))
    with tempfile.TemporaryDirectory(prefix="gancc-ort-") as folder:
        path = Path(folder) / "model.onnx"
        write_onnx(model, path)
        if made_here:
            del model                 # the file holds it now: onnxruntime reads that
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return dict(zip(outputs, session.run(outputs, feeds)))


def _torch_run(module, model: ModelSpec, feeds: dict[str, np.ndarray]):
    import torch

    with torch.no_grad():
        result = module(*[torch.from_numpy(feeds[name]) for name in model.input_names])
    if not isinstance(result, (tuple, list)):
        result = (result,)
    return {name: t.detach().numpy() for name, t in zip(model.output_names, result)}


def reference_outputs(model: ModelSpec, module, samples: int | None = None
                      ) -> tuple[str, dict, dict]:
    """The PyTorch reference on the validation inputs, run ahead of validate(), in the form
    of its `cached` argument: for a build that empties the generator before validating."""
    spec = model.validation
    feeds = make_inputs(model, samples or spec.samples, spec.seed)
    return "pytorch", _torch_run(module, model, feeds), {}


def validate(model: ModelSpec, final: onnx.ModelProto, exported: onnx.ModelProto | None,
             module, samples: int | None = None,
             cached: tuple[str, dict, dict] | None = None,
             final_file: Path | None = None) -> ValidationReport:
    """`cached` (from the build cache) is (reference kind, reference outputs, the unmodified
    export's outputs, {} if none): neither is run again, and `module` is not needed.
    `final_file`: where `final` is saved (as it is), for onnxruntime to read a large model
    from."""
    spec = model.validation
    samples = samples or spec.samples
    feeds = make_inputs(model, samples, spec.seed)
    outputs = model.output_names or [o.name for o in final.graph.output]
    report = ValidationReport(spec.reference, samples, spec.seed)
    if spec.reference == "none":
        return report
    if cached is not None:
        report.reference, reference = cached[0], cached[1]
    elif spec.reference in ("pytorch", "tensorflow") and hasattr(module, "run_reference"):
        report.reference = module.reference_kind          # the source framework, e.g. TensorFlow
        reference = module.run_reference(feeds)
    elif spec.reference == "pytorch" and module is not None:
        reference = _torch_run(module, model, feeds)
    else:
        report.reference = "onnx"
        reference = _ort_run(exported if exported is not None else final, feeds, outputs)
    report.reference_outputs = reference
    actual = report.final_outputs = _ort_run(final, feeds, outputs, final_file)
    for name in outputs:
        report.final[name] = metrics(reference[name], actual[name])
    exp = (cached[2] or None) if cached is not None else None
    if exported is not None and report.reference in ("pytorch", "tensorflow"):
        exp = _ort_run(exported, feeds, outputs)
    if exp is not None:
        report.exported_outputs = exp
        for name in outputs:
            report.exported[name] = metrics(reference[name], exp[name])
    _keep_pictures(report, reference, actual, exp, outputs)
    for req in spec.requirements:
        for name in ([req.output] if req.output else outputs):
            value = report.final[name][req.metric]
            ok = req.holds(value)
            report.checks.append({"output": name, "metric": req.metric, "value": value,
                                  "require": f"{req.compare} {req.threshold}", "passed": ok,
                                  "line": req.span.line})
            if not ok:
                report.failures.append(f"output '{name}': {req.metric} = {value:.6g}, required "
                                       f"{req.compare} {req.threshold} ({req.span})")
    return report


def _keep_pictures(report: ValidationReport, reference: dict, actual: dict, exported: dict | None,
                   outputs: list[str]) -> None:
    """Border-band figures, and the first samples' outputs for the report's pictures."""
    for kind, values in (("final", actual), ("exported", exported)):
        if values is None:
            continue
        report.pictures[kind] = {n: np.asarray(values[n])[:PICTURE_SAMPLES] for n in outputs}
        for name in outputs:
            region = region_metrics(np.asarray(reference[name]), np.asarray(values[name]))
            if region is not None:
                report.regions.setdefault(f"{kind}_vs_reference", {})[name] = region
    report.pictures["reference"] = {n: np.asarray(reference[n])[:PICTURE_SAMPLES] for n in outputs}


def raise_if_failed(model: ModelSpec, report: ValidationReport) -> None:
    if report.failures:
        raise ValidationError(f"model '{model.name}' failed validation:\n  " +
                              "\n  ".join(report.failures),
                              "see report.json for all figures; a lossy rewrite (e.g. "
                              "reflect-pad-to-constant) may cost more than the threshold allows")
