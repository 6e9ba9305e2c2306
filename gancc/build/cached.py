"""What a build stores in and takes from the build cache (gancc/cache.py is the store).

Three kinds of entry per model: `export`, the simplified pre-rewrite graph with what the
report said about its source, export and simplify stages, keyed by the source
(`Source.cache_fields`); and `reference`, the validation reference's outputs (and the
unmodified export's), keyed by the export key and the validation inputs. A hit needs the
export and, when validation will run, the reference; otherwise the build runs in full.
The third kind, `figures`, holds what validation, the fp16 prediction and the AIPP emulation
computed for one final graph (its bytes' digest), reference and inputs: a rebuild whose
final graph did not change runs none of them again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gancc.cache import (REFERENCE_CODE, Cache, CacheCorrupt, arrays_writer, code_fingerprint,
                         load_arrays, load_onnx, make_key, onnx_writer)
from gancc.spec.model import ModelSpec
from gancc.stages.validate import KnownReference, ValidationReport


@dataclass
class CacheLookup:
    """What the cache holds for one model's build: on a hit, `final` is the simplified,
    pre-rewrite graph and `reference` the validation reference."""

    cache: Cache
    export_key: str | None = None
    reference_key: str | None = None
    final: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    reference: KnownReference | None = None
    load_seconds: float = 0.0
    status: dict[str, str] = field(default_factory=lambda: {"export": "off",
                                                            "reference": "off",
                                                            "figures": "off"})
    figures_key: str | None = None     # set by the `figures` stage (gancc/build/check_stages.py)

    @property
    def hit(self) -> bool:
        return self.final is not None

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.cache.enabled, "dir": str(self.cache.root), **self.status,
                "stages": {"source": self.hit, "export": self.hit, "simplify": self.hit,
                           "reference": self.reference is not None},
                "keys": {"export": self.export_key, "reference": self.reference_key,
                         "figures": self.figures_key}}


def _reference_key_fields(export_key: str, model: ModelSpec, samples: int | None) -> dict:
    v = model.validation
    data = sorted([name, call.name, [[a.name, a.value] for a in call.args]]
                  for name, call in v.data)
    return {"entry": "reference", "export": export_key, "reference": v.reference,
            "samples": samples or v.samples, "seed": v.seed, "data": data,
            "code": code_fingerprint(REFERENCE_CODE)}


def lookup(cache: Cache, source, model: ModelSpec, random_seed: int | None, validate: bool,
           samples: int | None) -> CacheLookup:
    """Find (and load) the cached export and reference of `model` from `source`."""
    found = CacheLookup(cache)
    if not cache.enabled:
        return found
    fields = source.cache_fields(random_seed)
    if fields is None:
        found.status = {"export": "not cached for this source", "reference": "not cached"}
        return found
    found.export_key = make_key(fields)
    need_reference = validate and model.validation.reference != "none"
    found.status = {"export": "miss", "reference": "miss" if need_reference else "not needed"}
    if need_reference and model.aipp:
        # AIPP validation runs the reference on other inputs (emulated uint8 images): it needs
        # the generator itself, so this build runs in full (the export is still stored)
        found.status["reference"] = "not cached: AIPP validation runs the generator"
        return found
    if need_reference:
        found.reference_key = make_key(_reference_key_fields(found.export_key, model, samples))
    start = time.perf_counter()
    if _load(found, model, need_reference):
        found.status["export"] = "hit"
        found.load_seconds = time.perf_counter() - start
    return found


def _load(found: CacheLookup, model: ModelSpec, need_reference: bool) -> bool:
    cache = found.cache
    entry = cache.get("export", found.export_key)
    if entry is None:
        return False
    ref_entry = cache.get("reference", found.reference_key) if need_reference else None
    if need_reference and ref_entry is None:
        found.status["export"] = "hit, unused (the reference is not cached: a full build runs)"
        return False
    try:
        final = load_onnx(entry, "model.onnx")
        check_export_entry(final, model)
    except CacheCorrupt as err:
        cache.discard("export", found.export_key, str(err))
        return False
    if ref_entry is not None:
        meta = ref_entry.meta
        try:
            names = list(meta["outputs"])
            outputs = load_arrays(ref_entry, "reference.npz", names)
            exported = load_arrays(ref_entry, "exported.npz", names) if meta["exported"] else {}
        except (CacheCorrupt, KeyError, TypeError) as err:
            cache.discard("reference", found.reference_key, str(err))
            return False
        found.reference = KnownReference(str(meta["reference"]), outputs, exported)
        found.status["reference"] = "hit"
    found.final, found.meta = final, dict(entry.meta)
    weights = found.meta.get("weights")
    if isinstance(weights, dict):
        found.meta["weights"] = weights_this_build_used(weights, model)
    return True


def check_export_entry(final, model: ModelSpec) -> None:
    """A hit must be a graph this model can use: nodes, the declared inputs (with their
    fixed dims) and outputs, each output made by a node or an input. An entry that passes
    its sha check but not this (written by a buggy gancc, or by hand) raises CacheCorrupt."""
    graph = final.graph
    if not graph.node:
        raise CacheCorrupt("model.onnx has no nodes")
    weights = {t.name for t in graph.initializer}
    inputs = {i.name: i for i in graph.input if i.name not in weights}
    for declared in model.inputs:
        found = inputs.get(declared.name)
        if found is None:
            raise CacheCorrupt(f"model.onnx has no input '{declared.name}'")
        dims = found.type.tensor_type.shape.dim
        if len(dims) != len(declared.shape) or any(
                isinstance(want, int) and d.HasField("dim_value") and d.dim_value != want
                for want, d in zip(declared.shape, dims)):
            raise CacheCorrupt(f"model.onnx's input '{declared.name}' is not "
                               f"{list(declared.shape)}")
    made = {o for n in graph.node for o in n.output} | set(inputs) | weights
    outputs = [o.name for o in graph.output]
    for name in model.output_names:
        if name not in outputs:
            raise CacheCorrupt(f"model.onnx has no output '{name}'")
    for name in outputs:
        if name not in made:
            raise CacheCorrupt(f"model.onnx's output '{name}' is made by no node")


def weights_this_build_used(stored: dict[str, Any], model: ModelSpec) -> dict[str, Any]:
    """An entry's weights record as this build's: the key holds the checkpoint's sha256
    (or only the seed of random weights), so the path (and the note naming it) that the
    storing build saw may be another spec's."""
    weights = getattr(model.source, "weights", None)
    path = str(weights.path) if weights is not None else None
    if stored.get("kind") == "checkpoint":
        return {**stored, "path": path}
    if stored.get("kind") == "random":
        reason = f"{path} not found" if path else "no weights declared"
        return {**stored, "path": path,
                "note": f"{reason}; seeded random weights (seed {stored.get('seed')})"}
    return stored


def store_export(found: CacheLookup, final, report: dict[str, Any]) -> None:
    """Cache the simplified, pre-rewrite graph and the report's source/export/simplify
    parts (`report`: the build report as report.json has it so far)."""
    if found.export_key is None or found.hit:
        return
    keep = ("source", "random_weights", "export", "simplify")
    meta = {"report": {k: report[k] for k in keep if k in report},
            "weights": report.get("weights")}
    if found.cache.put("export", found.export_key, {"model.onnx": onnx_writer(final)}, meta):
        found.status["export"] = "stored"


def store_reference(found: CacheLookup, check: ValidationReport) -> None:
    """Cache a validation's reference outputs and the unmodified export's outputs."""
    if found.reference_key is None or found.reference is not None or not check.reference_outputs:
        return
    if check.reference not in ("pytorch", "onnx"):
        return
    names = list(check.reference_outputs)
    exported = check.exported_outputs
    writers = {"reference.npz": arrays_writer(check.reference_outputs)}
    if exported:
        writers["exported.npz"] = arrays_writer({n: exported[n] for n in names})
    meta = {"reference": check.reference, "outputs": names, "exported": bool(exported)}
    if found.cache.put("reference", found.reference_key, writers, meta):
        found.status["reference"] = "stored"


# figures ---------------------------------------------------------------------------------
# the code that computes the figures: editing it in a checkout invalidates figures entries
FIGURES_CODE = ("stages/validate.py", "stages/predict.py", "stages/runtime.py", "metrics.py",
                "aipp")


def figures_key(found: CacheLookup, model: ModelSpec, samples: int | None, final_digest: str,
                computed: dict[str, Any]) -> str | None:
    """The key of the figures of one final graph (`final_digest`: the sha256 of its files)
    against one reference on one set of inputs; `computed` says what the figures are (which
    reference, fp16 prediction or not, which AIPP config). None: this source is not cached."""
    if found.export_key is None:
        return None
    reference = found.reference_key or make_key(
        _reference_key_fields(found.export_key, model, samples))
    return make_key({"entry": "figures", "final": final_digest, "reference": reference,
                     "computed": computed, "code": code_fingerprint(FIGURES_CODE)})


_PICTURE_SEP = "/"     # "kind/output" names an array of pictures.npz (kind has no /)


def load_figures(found: CacheLookup) -> ValidationReport | None:
    """The figures stored under `found.figures_key`: a ValidationReport with its fp16 and
    aipp sections and pictures, without the raw outputs (its requirements not yet checked)."""
    entry = found.cache.get("figures", found.figures_key) if found.figures_key else None
    if entry is None:
        return None
    try:
        v = entry.meta["validation"]
        names = [str(n) for n in entry.meta["pictures"]]
        arrays = load_arrays(entry, "pictures.npz", names) if names else {}
        report = ValidationReport(str(v["reference"]), int(v["samples"]), int(v["seed"]),
                                  final=dict(v["final"]), exported=dict(v["exported"]),
                                  regions=dict(v["regions"]), fp16=v["fp16"], aipp=v["aipp"],
                                  warnings=list(v.get("warnings", [])))
    except (CacheCorrupt, KeyError, TypeError, ValueError) as err:
        found.cache.discard("figures", found.figures_key, str(err))
        return None
    for name, array in arrays.items():
        kind, _, output = name.partition(_PICTURE_SEP)
        report.pictures.setdefault(kind, {})[output] = array
    found.status["figures"] = "hit"
    return report


def store_figures(found: CacheLookup, check: ValidationReport) -> None:
    """Cache a validation's figures (with its fp16 and aipp sections) and its pictures."""
    if found.figures_key is None:
        return
    pictures = {f"{kind}{_PICTURE_SEP}{output}": array
                for kind, per_output in check.pictures.items()
                for output, array in per_output.items()}
    meta = {"validation": {"reference": check.reference, "samples": check.samples,
                           "seed": check.seed, "final": check.final, "exported": check.exported,
                           "regions": check.regions, "fp16": check.fp16, "aipp": check.aipp,
                           "warnings": check.warnings},
            "pictures": list(pictures)}
    writers = {"pictures.npz": arrays_writer(pictures)} if pictures else {}
    if found.cache.put("figures", found.figures_key, writers, meta):
        found.status["figures"] = "stored"
