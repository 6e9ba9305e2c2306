"""What a build stores in and takes from the build cache (gancc/cache.py is the store).

Two kinds of entry per model: `export`, the simplified pre-rewrite graph with what the
report said about its source, export and simplify stages, keyed by the source
(`Source.cache_fields`); and `reference`, the validation reference's outputs (and the
unmodified export's), keyed by the export key and the validation inputs. A hit needs the
export and, when validation will run, the reference; otherwise the build runs in full.
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
                                                            "reference": "off"})

    @property
    def hit(self) -> bool:
        return self.final is not None

    def to_json(self) -> dict[str, Any]:
        return {"enabled": self.cache.enabled, "dir": str(self.cache.root), **self.status,
                "stages": {"source": self.hit, "export": self.hit, "simplify": self.hit,
                           "reference": self.reference is not None},
                "keys": {"export": self.export_key, "reference": self.reference_key}}


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
    if isinstance(weights, dict) and weights.get("kind") == "checkpoint":
        # the same contents may sit at another path now: report where this build read them
        found.meta["weights"] = {**weights, "path": str(model.source.weights.path)}
    return True


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
