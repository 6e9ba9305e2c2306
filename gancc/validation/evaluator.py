"""One worker's loaded state and the figures of one sample.

A `SampleEvaluator` is made once per worker (a Ray actor, or the plain loop of the
benchmark's floor): it parses the spec, opens onnxruntime sessions on the final graph (and
its fp16-storage copy), and loads the reference (the PyTorch generator with its weights, the
TensorFlow graph, or the ONNX source), then evaluates any number of samples with them.

Per sample and output (all against the reference on the same inputs):
- `final`: the final graph: pixel_cosine (across the channels of the output's layout),
  cosine, max_abs, mean_abs, psnr, ssim (gancc/metrics.py);
- `border`: the border band vs the interior (metrics.region_metrics), for image outputs;
- `fp16`: the final graph as force_fp16 stores it (gancc.stages.predict.fp16_storage), when
  the model compiles in fp16 (predict.fp16_wanted); `non_finite` counts inf/nan;
- `aipp`: for an AIPP input, the uint8 image through the AIPP emulator (integer CSC, floor)
  into the final graph, against the reference on the exact float pre-processing.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gancc.errors import GanccError
from gancc.validation.samples import Sample, SampleInputs, load_sample

# names the figures a row holds: part of each stored result's key, so a change here
# recomputes instead of mixing rows of two metric sets
METRIC_SET = "gancc-validate/1: final(pixel_cosine,cosine,max_abs,mean_abs,psnr,ssim) " \
             "border(8px) fp16(storage) aipp(floor)"
FIGURES = ("pixel_cosine", "cosine", "max_abs", "mean_abs", "psnr", "ssim")


def _session(path_or_bytes, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source = str(path_or_bytes) if isinstance(path_or_bytes, Path) else path_or_bytes
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


class SampleEvaluator:
    def __init__(self, spec_path: str, model_name: str, onnx_path: str,
                 threads: int | None = 1, random_seed: int | None = None,
                 fp16: bool | None = None):
        from gancc import data_io
        from gancc.spec import parse_file
        from gancc.stages.predict import fp16_wanted

        self.model = parse_file(Path(spec_path)).model(model_name)
        self.onnx_path = Path(onnx_path)
        self.threads = threads
        self.axis = data_io.output_channel_axis(self.model)
        self.blocks = data_io.aipp_blocks(self.model)
        self.final = _session(self.onnx_path, threads)
        self.outputs = list(self.model.output_names) or [o.name for o in self.final.get_outputs()]
        self.fp16 = self._fp16_session() if fp16_wanted(self.model, fp16) else None
        self.kind, self.module, self.framework, self.source_session = \
            self._load_reference(random_seed)

    def _fp16_session(self):
        import tempfile

        import onnx

        from gancc.onnx_io import is_large, write_onnx
        from gancc.stages.predict import fp16_storage

        stored = fp16_storage(onnx.load(str(self.onnx_path)))
        if not is_large(stored):
            return _session(stored.SerializeToString(), self.threads)
        with tempfile.TemporaryDirectory(prefix="gancc-validate-") as folder:
            path = Path(folder) / "fp16.onnx"
            write_onnx(stored, path)
            del stored
            return _session(path, self.threads)

    def _load_reference(self, random_seed: int | None):
        """(kind, module, framework, onnx session): the source runs as the reference."""
        from gancc.spec.model import OnnxSource, PyTorchSource, TensorFlowSource

        source = self.model.source
        if self.model.validation.reference == "none":
            raise GanccError(f"model '{self.model.name}' declares `reference none`: there is "
                             "nothing to validate against", "remove that line from the spec")
        if isinstance(source, PyTorchSource):
            import torch

            from gancc.stages.source import load_pytorch

            if self.threads:
                torch.set_num_threads(self.threads)
            return "pytorch", load_pytorch(self.model, random_seed).module, None, None
        if isinstance(source, TensorFlowSource):
            from gancc.stages.tensorflow import INSTALL_HINT, load_tensorflow

            loaded = load_tensorflow(self.model)
            if loaded.reference is None:
                raise GanccError(f"model '{self.model.name}': the TensorFlow reference cannot "
                                 f"run here ({loaded.note})", INSTALL_HINT)
            return "tensorflow", None, loaded.reference, None
        assert isinstance(source, OnnxSource)
        if not source.path.is_file():
            raise GanccError(f"ONNX source not found: {source.path}")
        return "onnx", None, None, _session(source.path, self.threads)

    def reference(self, feeds: dict) -> dict:
        from gancc.stages.runtime import run_reference

        if self.source_session is not None:
            return dict(zip(self.outputs, self.source_session.run(self.outputs, feeds)))
        # the generator or TensorFlow: the build's one reference selector decides
        _, out = run_reference(self.model, self.kind, self.module, self.framework, None, None,
                               feeds)
        return out

    def run_final(self, feeds: dict, session=None) -> dict:
        session = session or self.final
        return dict(zip(self.outputs, session.run(self.outputs, feeds)))

    def evaluate(self, sample: Sample) -> dict:
        """One row of validation.json: the sample's figures per output."""
        start = time.perf_counter()
        inputs = load_sample(self.model, sample, self.blocks)
        reference = self.reference(inputs.feeds)
        final = self.run_final(inputs.feeds)
        figures = {name: self._figures(reference[name], final[name]) for name in self.outputs}
        channels = {name: int(np.shape(reference[name])[self.axis])
                    if np.ndim(reference[name]) >= 2 else 1 for name in self.outputs}
        if self.fp16 is not None:
            fp16 = self.run_final(inputs.feeds, self.fp16)
            for name in self.outputs:
                figures[name]["fp16"] = _fp16_figures(reference[name], fp16[name], self.axis)
        del reference, final
        if inputs.aipp_images:
            for name, figs in self._aipp(inputs).items():
                figures[name]["aipp"] = figs
        return {"id": sample.id, "source": sample.source, "outputs": figures,
                "channels": channels, "seconds": round(time.perf_counter() - start, 4)}

    def _figures(self, ref: np.ndarray, act: np.ndarray) -> dict:
        from gancc.metrics import metrics, region_metrics, ssim

        out = {"final": {**metrics(ref, act, self.axis), "ssim": ssim(ref, act, self.axis)}}
        region = region_metrics(ref, act) if self.axis == 1 else None
        if region is not None:
            out["border"] = {"border_mean_abs": region["border"]["mean_abs"],
                             "interior_mean_abs": region["interior"]["mean_abs"],
                             "border_pixel_cosine": region["border"]["pixel_cosine"]}
        return out

    def _aipp(self, inputs: SampleInputs) -> dict:
        """uint8 images -> emulated AIPP -> final graph, against the reference on the same
        images through exact float pre-processing."""
        from gancc.aipp import emulate
        from gancc.metrics import metrics

        emulated, floated = dict(inputs.feeds), dict(inputs.feeds)
        nhwc = self.model.atc.input_format == "NHWC"
        for name, images in inputs.aipp_images.items():
            block = self.blocks[name]
            for feeds, x in ((emulated, emulate.emulate(block.fields, images, block.channels,
                                                        "floor")),
                             (floated, emulate.float_preprocess(block.fields, images,
                                                                block.channels))):
                feeds[name] = (x.transpose(0, 2, 3, 1) if nhwc else x).astype(np.float32)
        reference = self.reference(floated)
        actual = self.run_final(emulated)
        return {name: metrics(reference[name], actual[name], self.axis) for name in self.outputs}

    def pictures(self, sample: Sample, limit: int = 512) -> dict:
        """The first image of each output for the page: reference and final, downscaled to
        at most `limit` pixels a side (a 1024x2048 sample is sent as 256x512)."""
        inputs = load_sample(self.model, sample, self.blocks)
        reference = self.reference(inputs.feeds)
        final = self.run_final(inputs.feeds)
        out = {}
        for name in self.outputs:
            ref, act = np.asarray(reference[name]), np.asarray(final[name])
            if ref.ndim != 4:
                continue
            if self.axis != 1:
                ref, act = ref.transpose(0, 3, 1, 2), act.transpose(0, 3, 1, 2)
            step = max(1, -(-max(ref.shape[2:]) // limit))
            out[name] = (ref[0, :, ::step, ::step].copy(), act[0, :, ::step, ::step].copy())
        return out


def _fp16_figures(ref: np.ndarray, out: np.ndarray, axis: int) -> dict:
    from gancc.metrics import metrics

    out = np.asarray(out, dtype=np.float32)
    bad = int((~np.isfinite(out)).sum())
    # inf/nan as fp16 saturation would show them, so the figures stay numbers
    out = np.nan_to_num(out, nan=0.0, posinf=65504.0, neginf=-65504.0)
    return {**metrics(ref, out, axis), "non_finite": bad}
