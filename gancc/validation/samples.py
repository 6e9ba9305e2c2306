"""What one sample of `gancc validate` is, and how a worker turns it into the graph's inputs.

The driver lists samples as small descriptors (an id, the source file, a fingerprint); the
worker that evaluates a sample reads and preprocesses its file itself, so no process ever
holds the data set, and the object store carries paths, not tensors. On a cluster the data
folder must be visible at the same path on every node (a shared file system).

`--data DIR` by recipe (gancc/data_io.py's readers, so the inputs are the recipe's own):
- a `gancc prep` folder (it has manifest.json): one sample per prepared file;
- cyclegan: the images in DIR (make_power(4), Resize, (x - 0.5) / 0.5);
- stargan: the images in DIR, each with its 5 target attribute vectors (one batch of 5);
  the images' own attributes from `list_attr_celeba.txt` in DIR (or --attrs), else zeros;
- pix2pixhd: the `*labelIds*.png` label maps (or every .png but instance maps) with their
  instance maps beside them: one-hot(35) + instance edges;
- gan, bigbigan: latents only: --count, or a prep folder.
`--count N`: sample k is one batch of the spec's `data` distributions, seeded with the
spec's seed + k (a fixed-batch input, BigBiGAN's 256, draws its whole batch).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gancc import data_io
from gancc.dtypes import numpy_dtype
from gancc.errors import GanccError
from gancc.spec.model import ModelSpec

ATTR_FILE = "list_attr_celeba.txt"


@dataclass(frozen=True)
class Sample:
    """One sample as the driver knows it: no data, only where it comes from."""

    id: str
    kind: str                    # "seeded" | "image" | "stargan" | "label" | "bins"
    source: str | None = None    # the file (or prep folder) it is read from
    extra: str | None = None     # label: the instance map; bins: the prep file name
    index: int = 0               # seeded: k (seed = spec seed + k)
    fingerprint: str = ""        # what the stored result depends on besides the graph


@dataclass
class SampleInputs:
    feeds: dict[str, np.ndarray]
    # AIPP inputs: the uint8 image the om would take, per AIPP input (empty without AIPP)
    aipp_images: dict[str, np.ndarray] = field(default_factory=dict)


def _file_identity(*paths: Path) -> str:
    """Path, size and modification time: a changed file is a new sample, without reading
    every file of the data set on the driver just to hash it."""
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def list_samples(model: ModelSpec, data: Path | None, count: int | None,
                 recipe: str | None = None, attrs: Path | None = None) -> list[Sample]:
    """The set's samples, in order (descriptors only)."""
    if count is not None:
        seed = model.validation.seed
        return [Sample(f"seed{seed + k}", "seeded", index=k, fingerprint=f"seed={seed + k}")
                for k in range(count)]
    assert data is not None
    if not data.is_dir():
        raise GanccError(f"data folder not found: {data}", "pass the recipe's input folder, "
                         "or a `gancc prep` output folder, with --data")
    if (data / data_io.MANIFEST).is_file():
        return _prep_samples(model, data)
    recipe = data_io.recipe_for(model, recipe)
    if recipe == "cyclegan":
        files = data_io.list_files([data], data_io.IMAGE_SUFFIXES, "images")
        return [Sample(_stem(p), "image", str(p), fingerprint=_file_identity(p)) for p in files]
    if recipe == "stargan":
        files = data_io.list_files([data], data_io.IMAGE_SUFFIXES, "images")
        table = attrs or (data / ATTR_FILE if (data / ATTR_FILE).is_file() else None)
        extra = str(table) if table else None
        return [Sample(_stem(p), "stargan", str(p), extra, fingerprint=_file_identity(p))
                for p in files]
    if recipe == "pix2pixhd":
        labels = [p for p in data_io.list_files([data], (".png",), "label maps")
                  if "instanceIds" not in p.name]
        out = []
        for p in labels:
            inst = data.joinpath(p.name.replace("labelIds", "instanceIds"))
            inst = inst if "labelIds" in p.name and inst.is_file() else None
            ident = _file_identity(p, *([inst] if inst else []))
            out.append(Sample(_stem(p), "label", str(p), str(inst) if inst else None,
                              fingerprint=ident))
        return out
    raise GanccError(f"the {recipe} recipe has no data files: its inputs are latents",
                     "use --count N (seeded draws from the spec's `data` lines), or --data "
                     "with a `gancc prep` folder")


def _prep_samples(model: ModelSpec, folder: Path) -> list[Sample]:
    import json

    manifest = json.loads((folder / data_io.MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("model") not in (None, model.name):
        raise GanccError(f"{folder}: prepared for model '{manifest['model']}', not '{model.name}'",
                         "pass --model, or the prep folder of this model")
    out = []
    for entry in manifest["files"]:
        paths = [folder / inp / f"{entry['name']}.bin" for inp in manifest["inputs"]]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise GanccError(f"prepared input missing: {missing[0]}", "rerun gancc prep")
        out.append(Sample(entry["name"], "bins", str(folder), entry["name"],
                          fingerprint=_file_identity(*paths)))
    return out


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def load_sample(model: ModelSpec, sample: Sample, blocks: dict) -> SampleInputs:
    """The graph's inputs for one sample (run in the worker). `blocks`: the model's AIPP
    blocks (data_io.aipp_blocks): their uint8 images come with the sample."""
    path = Path(sample.source) if sample.source else None
    if path is not None and not path.exists():
        raise GanccError(f"sample {sample.id}: {path} not found on this node",
                         "on a cluster the data folder must be at the same path on every node")
    if sample.kind == "seeded":
        return _seeded(model, sample.index, blocks)
    if sample.kind == "bins":
        return _from_bins(path, sample.extra)
    inp = model.inputs[0]
    _, channels, height, width = inp.concrete_shape(1)
    dtype = numpy_dtype(inp.dtype)
    if sample.kind == "image":
        x = data_io.preprocess_cyclegan(path, height, width)[None]
        images = {}
        block = blocks.get(inp.name)
        if block is not None:
            images[inp.name] = data_io.aipp_image(path, block)[None]
        return SampleInputs({inp.name: x.astype(dtype)}, images)
    if sample.kind == "stargan":
        return _stargan(model, path, sample.extra)
    inst = Path(sample.extra) if sample.extra else None
    x = data_io.onehot_with_edges(path, inst, channels - 1, height, width)[None]
    return SampleInputs({inp.name: x.astype(dtype)})


def _seeded(model: ModelSpec, k: int, blocks: dict) -> SampleInputs:
    from gancc.aipp import emulate
    from gancc.stages.validate import make_inputs

    seed = model.validation.seed + k
    feeds = make_inputs(model, 1, seed)
    images = {}
    for name, block in blocks.items():
        images[name] = emulate.make_images(block.fields, len(feeds[name]), block.model_hw,
                                           seed + 101)
        feeds[name] = _aipp_float(model, name, block, images[name])
    return SampleInputs(feeds, images)


def _aipp_float(model: ModelSpec, name: str, block, images: np.ndarray) -> np.ndarray:
    """What the reference (and the main path of the final graph) takes for AIPP images:
    the exact float pre-processing, in the input's layout and dtype."""
    from gancc.aipp import emulate

    inp = next(i for i in model.inputs if i.name == name)
    x = emulate.float_preprocess(block.fields, images, block.channels)
    if model.atc.input_format == "NHWC":
        x = x.transpose(0, 2, 3, 1)
    return x.astype(numpy_dtype(inp.dtype))


def _from_bins(folder: Path, name: str) -> SampleInputs:
    """A prepared file: the bins of every input; an AIPP input's bins are the uint8 image
    the om takes, and the graph gets AIPP's result in exact float arithmetic."""
    import json

    from gancc.aipp.emulate import float_preprocess

    manifest = json.loads((folder / data_io.MANIFEST).read_text(encoding="utf-8"))
    feeds, images = {}, {}
    for inp in manifest["inputs"]:
        dtype = np.dtype(manifest["dtypes"][inp]).newbyteorder("<")
        arr = np.fromfile(folder / inp / f"{name}.bin", dtype=dtype).reshape(manifest["shapes"][inp])
        aipp = (manifest.get("aipp") or {}).get(inp)
        if aipp:
            images[inp] = arr
            feeds[inp] = float_preprocess(aipp["fields"], arr, aipp["channels"]).astype(np.float32)
        else:
            feeds[inp] = arr.astype(numpy_dtype(manifest["dtypes"][inp]))
    return SampleInputs(feeds, images)


@functools.lru_cache(maxsize=2)
def _attr_table(attrs: str, c_dim: int) -> dict:
    # read once per worker: CelebA's file has 202,599 lines
    return data_io.read_celeba_attrs(Path(attrs), data_io.STARGAN_ATTRS[:c_dim])


def _stargan(model: ModelSpec, path: Path, attrs: str | None) -> SampleInputs:
    img, attr = model.inputs[0], model.inputs[1]
    _, _, height, _ = img.concrete_shape(1)
    c_dim = attr.concrete_shape(1)[1]
    c_org = np.zeros(c_dim, np.float32)
    if attrs:
        table = _attr_table(attrs, c_dim)
        stem = _stem(path)
        if stem not in table:
            raise GanccError(f"{attrs} has no attributes for image '{stem}'")
        c_org = table[stem]
    targets = data_io.stargan_targets(c_org[None])
    x = data_io.preprocess_stargan(path, height)[None]
    return SampleInputs({img.name: np.repeat(x, len(targets), axis=0).astype(np.float32),
                         attr.name: np.concatenate(targets).astype(np.float32)})
