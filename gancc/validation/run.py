"""One `gancc validate` run: reuse or compute every sample's row, summarise the set, apply
the spec's `require` lines, and write validation.json and validation.html (atomically)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from gancc.errors import GanccError
from gancc.fsutil import write_text_atomic
from gancc.spec.model import ModelSpec
from gancc.validation import engine as ray_engine
from gancc.validation import page, summary
from gancc.validation.evaluator import METRIC_SET
from gancc.validation.samples import Sample
from gancc.validation.store import ResultStore, graph_digest

RESULTS = "results"


def final_graph(build_dir: Path, model: ModelSpec, onnx: Path | None = None) -> Path:
    path = onnx or build_dir / model.name / f"{model.name}.onnx"
    if not path.is_file():
        raise GanccError(f"final graph not found: {path}",
                         f"run `gancc build SPEC --model {model.name}` first (or pass --onnx)")
    return path.resolve()


def reference_kind(model: ModelSpec) -> str:
    from gancc.spec.model import OnnxSource, TensorFlowSource

    if isinstance(model.source, TensorFlowSource):
        return "tensorflow"
    return "onnx" if isinstance(model.source, OnnxSource) else "pytorch"


def metric_set(options: ray_engine.EngineOptions) -> str:
    return f"{METRIC_SET} fp16={options.fp16}"


def validate_set(model: ModelSpec, options: ray_engine.EngineOptions, samples: list[Sample],
                 out: Path, strict: bool = False,
                 on_start: Callable[[int, int], None] = lambda total, reused: None,
                 on_row: Callable[[dict, bool], None] = lambda row, reused: None) -> dict:
    """Run (or resume) the set; returns validation.json's content."""
    if not samples:
        raise GanccError("no samples to validate")
    start = time.perf_counter()
    digest = graph_digest(options.onnx)
    store = ResultStore(out / RESULTS, digest, metric_set(options))
    reused = sum(store.get(s) is not None for s in samples)
    on_start(len(samples), reused)
    engine_info = ray_engine.connect(options.workers, options.address)
    try:
        engine = ray_engine.Engine(options, store, engine_info["workers"])
        rows = engine.run(samples, on_row)
        result = _result(model, options, rows, reused, engine_info, digest, strict)
        worst = _worst(result, rows, samples)
        pictures = engine.pictures(worst)
    finally:
        ray_engine.disconnect()
    result["seconds"] = round(time.perf_counter() - start, 3)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "validation.json", json.dumps(result, indent=1) + "\n")
    write_text_atomic(out / "validation.html", page.render(result, pictures))
    return result


def _result(model: ModelSpec, options, rows: list[dict], reused: int, engine_info: dict,
            digest: str, strict: bool) -> dict:
    stats = summary.summarise(rows)
    outputs = list(rows[0]["outputs"])
    channels = rows[0].get("channels", {})
    headlines = {name: summary.headline(channels.get(name, 2)) for name in outputs}
    checks, failures = summary.apply_checks(stats, outputs, list(model.validation.requirements),
                                            strict=strict)
    return {"model": model.name, "spec": str(options.spec), "reference": reference_kind(model),
            "graph": {"path": str(options.onnx), "sha256": digest}, "metric_set": METRIC_SET,
            "engine": engine_info, "reused": reused, "computed": len(rows) - reused,
            "summary": {"samples": len(rows), "headline": headlines, "figures": stats,
                        "checks": checks, "failures": failures, "passed": not failures},
            "samples": rows}


def _worst(result: dict, rows: list[dict], samples: list[Sample]) -> list[Sample]:
    first = next(iter(result["summary"]["headline"]))
    key = f"{first}.final.{result['summary']['headline'][first]}"
    by_id = {s.id: s for s in samples}
    return [by_id[r["id"]] for r in summary.worst_samples(rows, key, ray_engine.PICTURE_SAMPLES)]
