"""Per-sample results, content-addressed: the key is a digest of the final graph (its .onnx
and `.onnx.data`), the sample (id and fingerprint), the metric set and the options that
change a figure (fp16 on/off). A rerun, or a run killed half-way and restarted, finds every
row it already has and recomputes only the rest. Each row is its own small JSON file,
written atomically (temp + rename) the moment it arrives, so a kill loses at most the rows
in flight."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from gancc.fsutil import sha256_file, write_text_atomic
from gancc.validation.samples import Sample


def graph_digest(onnx_path: Path) -> str:
    h = hashlib.sha256(sha256_file(onnx_path).encode())
    data = onnx_path.with_name(f"{onnx_path.name}.data")
    if data.is_file():
        h.update(sha256_file(data).encode())
    return h.hexdigest()


class ResultStore:
    def __init__(self, folder: Path, graph: str, metric_set: str):
        self.folder = folder
        self.prefix = f"{graph}\n{metric_set}\n"

    def key(self, sample: Sample) -> str:
        text = f"{self.prefix}{sample.kind}\n{sample.id}\n{sample.fingerprint}\n"
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, sample: Sample) -> dict | None:
        path = self._path(self.key(sample))
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):     # absent, or unreadable: computed again
            return None

    def put(self, sample: Sample, row: dict) -> None:
        write_text_atomic(self._path(self.key(sample)), json.dumps(row) + "\n")

    def get_pictures(self, sample: Sample) -> dict | None:
        """{output: (reference, final)} downscaled images of a sample, if stored."""
        import numpy as np

        path = self._path(self.key(sample)).with_suffix(".npz")
        try:
            with np.load(path) as data:
                names = sorted({k.rsplit("__", 1)[0] for k in data.files})
                return {n: (data[f"{n}__reference"], data[f"{n}__final"]) for n in names}
        except (OSError, ValueError, KeyError):
            return None

    def put_pictures(self, sample: Sample, pictures: dict) -> None:
        import os

        import numpy as np

        path = self._path(self.key(sample)).with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for name, (ref, act) in pictures.items():
            arrays[f"{name}__reference"], arrays[f"{name}__final"] = ref, act
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
