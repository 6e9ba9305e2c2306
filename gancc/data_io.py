"""Data in and out of a compiled model, as the five recipes need it.

- `prep`: inputs -> the .bin files ais_bench / msame read: raw little-endian, C-order, no
  header, one file per batch, one folder per graph input (`<out>/<input name>/<stem>.bin`),
  file names keeping the source stem. A `manifest.json` records which samples each file holds.
- `post`: output bins (ais_bench `<stem>_<k>.bin`, msame `<stem>_output_<k>.bin`, the legacy
  benchmark's `<stem>_<k+1>.bin`; float32, or float16 with `--output_type=FP16`) -> images,
  one per sample, named after the source stem, each recipe's pixel conversion exactly (and
  the recipes' per-batch images); with an ONNX graph, the same images from it run on the
  prepared inputs (the recipes' --onnx_save).
- `compare`: runs the ONNX graph on the prepared inputs and compares every output with the
  device's: the recipes' cosine criterion (per-pixel channel cosine in the output's layout)
  and the spec's `require` lines, on the whole set's figures.

Each recipe's preprocessing (shared/reference/models-recipes.md, "Preprocessing constants"):

| recipe    | input                 | preprocessing                                                  |
|-----------|-----------------------|----------------------------------------------------------------|
| cyclegan  | RGB images            | make_power(4), Resize(H) bilinear, [0, 1] -> (x - 0.5) / 0.5    |
| stargan   | RGB images (+ attrs)  | CenterCrop(178), Resize(128) bilinear, (x - 0.5) / 0.5; 5 target attribute vectors per image |
| pix2pixhd | label + instance maps | one-hot(35) + instance edge map, no normalisation              |
| gan       | (none)                | z ~ N(0, 1), seeded                                            |
| bigbigan  | (none)                | z ~ U[0, 1), labels randint(0, 10) int32, seeded               |

Only numpy and pillow are used (no torchvision): PIL's bilinear resize is what torchvision's
Resize does on PIL images.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gancc import dtypes
from gancc.errors import GanccError
from gancc.recipes import RECIPES
from gancc.spec.model import ModelSpec, PyTorchSource, TensorFlowSource

_ARCH_RECIPES = {"resnet_generator": "cyclegan", "stargan_generator": "stargan",
                 "pix2pixhd_local_enhancer": "pix2pixhd", "pix2pixhd_global_generator": "pix2pixhd",
                 "mnist_mlp_generator": "gan"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
STARGAN_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
STARGAN_HAIR = 3            # the first three selected attributes are hair colours
# StarGAN_pre_processing.py stops after the batch in which its global count reaches 319:
# 320 (image, attr) pairs at bs16 (64 batches x 5 targets), the 64 batches its
# postprocessing reads
STARGAN_TEST_PAIRS = 320
MANIFEST = "manifest.json"
_NP = {name: dtypes.numpy_dtype(name) for name in dtypes.INPUT_DTYPES}


def recipe_for(model: ModelSpec, explicit: str | None = None) -> str:
    if explicit:
        return explicit
    if isinstance(model.source, TensorFlowSource):
        return "bigbigan"
    if isinstance(model.source, PyTorchSource) and model.source.arch.name in _ARCH_RECIPES:
        return _ARCH_RECIPES[model.source.arch.name]
    raise GanccError(f"cannot tell which recipe's data model '{model.name}' takes",
                     f"pass --recipe ({', '.join(RECIPES)})")


def _write_bin(path: Path, array: np.ndarray) -> None:
    """Raw little-endian C-order bytes, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.ascontiguousarray(array)
    data = data.astype(data.dtype.newbyteorder("<"), copy=False)
    tmp = path.with_name(f".{path.name}.tmp")
    data.tofile(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    from gancc.fsutil import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def list_files(paths: list[Path], suffixes: tuple[str, ...], what: str) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted((f for f in p.iterdir() if f.suffix.lower() in suffixes and f.is_file()),
                            key=lambda f: _natural_key(f.name))
        elif p.is_file():
            files.append(p)
        else:
            raise GanccError(f"{what} not found: {p}")
    if not files:
        raise GanccError(f"no {what} found in {', '.join(map(str, paths))}",
                         f"expected files ending in {', '.join(suffixes)}")
    return files


def _stem(path: Path) -> str:
    # ais_bench cuts the output stem at the first '.', so keep stems free of dots
    return path.name.split(".")[0]


# ---------------------------------------------------------------------------- images
def _open_rgb(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise GanccError(f"{path}: cannot read as an image: {err}") from None


def _to_chw_unit(img) -> np.ndarray:
    """ToTensor: HWC uint8 -> CHW float32 in [0, 1]."""
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def _resize_shorter(img, size: int, resample):
    w, h = img.size
    if min(w, h) == size:
        return img
    if w <= h:
        return img.resize((size, int(size * h / w)), resample)
    return img.resize((int(size * w / h), size), resample)


def _center_crop(img, th: int, tw: int):
    w, h = img.size
    if (w, h) == (tw, th):
        return img
    if w < tw or h < th:
        raise GanccError(f"image of {w}x{h} is smaller than the {tw}x{th} crop")
    top = round((h - th) / 2.0)           # torchvision CenterCrop: int(round(...))
    left = round((w - tw) / 2.0)
    return img.crop((left, top, left + tw, top + th))


def preprocess_cyclegan(path: Path, height: int, width: int) -> np.ndarray:
    from PIL import Image

    img = _open_rgb(path)
    w, h = img.size
    pw, ph = max(4, int(round(w / 4) * 4)), max(4, int(round(h / 4) * 4))
    if (pw, ph) != (w, h):                      # make_power(base=4), bicubic
        img = img.resize((pw, ph), Image.BICUBIC)
    img = _resize_shorter(img, height, Image.BILINEAR)
    img = _center_crop(img, height, width)      # a no-op for square inputs such as maps
    return (_to_chw_unit(img) - 0.5) / 0.5


def preprocess_stargan(path: Path, size: int, crop: int = 178) -> np.ndarray:
    from PIL import Image

    img = _center_crop(_open_rgb(path), crop, crop)
    img = _resize_shorter(img, size, Image.BILINEAR)
    return (_to_chw_unit(img) - 0.5) / 0.5


def stargan_targets(c_org: np.ndarray) -> list[np.ndarray]:
    """The 5 target vectors upstream's create_labels makes: each hair colour alone (other hair
    colours off), then Male flipped, then Young flipped."""
    targets = []
    for i in range(c_org.shape[-1]):
        c = c_org.copy()
        if i < STARGAN_HAIR:
            c[..., :STARGAN_HAIR] = 0
            c[..., i] = 1
        else:
            c[..., i] = (c[..., i] == 0)
        targets.append(c.astype(np.float32))
    return targets


def read_celeba_attrs(path: Path, selected: tuple[str, ...] = STARGAN_ATTRS) -> dict[str, np.ndarray]:
    """list_attr_celeba.txt: a count line, a line of attribute names, then `file v1 v2 ...`
    with 1 / -1 values. Returns file stem -> float32 {0, 1} vector of the selected attributes."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise GanccError(f"cannot read the attribute file {path}: {err}") from None
    if len(lines) < 2:
        raise GanccError(f"{path}: expected a count line and an attribute-name line")
    names = lines[1].split()
    missing = [a for a in selected if a not in names]
    if missing:
        raise GanccError(f"{path}: attribute(s) {', '.join(missing)} not in its header")
    idx = [names.index(a) for a in selected]
    out = {}
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise GanccError(f"{path}:{lineno}: expected a file name and {len(names)} values")
        values = [parts[1 + i] for i in idx]
        out[_stem(Path(parts[0]))] = np.array([v == "1" for v in values], dtype=np.float32)
    return out


def stargan_test_split(attrs: Path | None, images: list[Path]) -> list[Path]:
    """upstream data_loader.py's test set, in its order: the attribute lines after the two
    header lines, shuffled after `random.seed(1234)`; line i is a test image while
    (i + 1) < 2000, so the first 1999. `images` (the --input files) must hold them all."""
    import random

    if attrs is None:
        raise GanccError("--split test needs --attrs list_attr_celeba.txt",
                         "the split is the attribute file's lines, shuffled with seed 1234")
    with attrs.open(encoding="utf-8") as f:
        lines = [line.rstrip() for line in f][2:]
    random.Random(1234).shuffle(lines)            # = random.seed(1234); random.shuffle(lines)
    by_name = {p.name: p for p in images}
    split = []
    for i, line in enumerate(lines):
        if (i + 1) >= 2000:
            break
        name = line.split()[0]
        if name not in by_name:
            raise GanccError(f"test image {name} (line {i + 1} of the shuffled {attrs}) is not "
                             "among the --input images", "pass the CelebA image folder")
        split.append(by_name[name])
    return split


def onehot_with_edges(label_path: Path, inst_path: Path | None, classes: int,
                      height: int, width: int) -> np.ndarray:
    """pix2pixHD's input: one-hot label ids over `classes` channels plus the instance edge map
    (1 where an instance id differs from its left, right, upper or lower neighbour)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(label_path) as img:
            labels = np.asarray(img if img.mode in ("L", "P", "I", "I;16") else img.convert("L"))
    except (UnidentifiedImageError, OSError) as err:
        raise GanccError(f"{label_path}: cannot read as a label map: {err}") from None
    labels = labels.astype(np.int64)
    if labels.shape != (height, width):
        raise GanccError(f"{label_path}: label map is {labels.shape[1]}x{labels.shape[0]}, the "
                         f"model input is {width}x{height}",
                         "pix2pixHD runs at the native size (resize_or_crop none)")
    if labels.min() < 0 or labels.max() >= classes:
        raise GanccError(f"{label_path}: label id {int(labels.max())} is outside 0..{classes - 1}")
    out = np.zeros((classes + 1, height, width), dtype=np.float32)
    np.put_along_axis(out[:classes], labels[None], 1.0, axis=0)
    if inst_path is not None:
        try:
            with Image.open(inst_path) as img:
                inst = np.asarray(img).astype(np.int64)
        except (UnidentifiedImageError, OSError) as err:
            raise GanccError(f"{inst_path}: cannot read as an instance map: {err}") from None
        if inst.shape != labels.shape:
            raise GanccError(f"{inst_path}: instance map size differs from its label map")
        edge = np.zeros(inst.shape, dtype=bool)
        horiz = inst[:, 1:] != inst[:, :-1]
        vert = inst[1:, :] != inst[:-1, :]
        edge[:, 1:] |= horiz
        edge[:, :-1] |= horiz
        edge[1:, :] |= vert
        edge[:-1, :] |= vert
        out[classes] = edge
    return out


def _instance_for(label: Path, inst_dir: Path | None) -> Path | None:
    folder = inst_dir or label.parent
    name = label.name.replace("labelIds", "instanceIds") if "labelIds" in label.name else label.name
    candidate = folder / name
    if candidate.is_file() and candidate != label:
        return candidate
    return None


# ---------------------------------------------------------------------------- AIPP inputs
# An input with an `aipp` block is not the graph's float tensor on the device: the om takes
# uint8 images in the AIPP input format at src_image_size, and AIPP crops, converts and
# normalises them. Generation 1 CycleGAN: PIL thumbnail((512, 512), ANTIALIAS) saved as JPEG,
# DVPP-decoded to YUV420SP, AIPP crop 256 at (16, 16), CSC, (x - 127.5) / 127.5.
def aipp_blocks(model: ModelSpec) -> dict:
    """input name -> its resolved AIPP block (gancc.aipp.resolve), or {} without AIPP."""
    if not model.aipp:
        return {}
    from gancc.aipp.resolve import resolve_model

    return {b.input: b for b in resolve_model(model, model.atc.soc_version)}


def aipp_sample_shape(fields: dict, model_hw: tuple[int, int]) -> tuple[int, ...]:
    """The uint8 bytes of one image as the om reads them (gancc.aipp.emulate's layouts)."""
    from gancc.aipp.emulate import source_size

    h, w = source_size(fields, model_hw)
    fmt = fields["input_format"]
    if fmt == "YUV420SP_U8":
        return (h * 3 // 2, w)
    if fmt == "YUV400_U8":
        return (h, w)
    if fmt == "RGB888_U8":
        return (h, w, 3)
    raise GanccError(f"gancc prep cannot write {fmt} images for AIPP",
                     "it writes YUV420SP_U8, YUV400_U8 and RGB888_U8 inputs")


def aipp_bytes(img, fields: dict) -> np.ndarray:
    """A PIL image in the AIPP input format. YUV is JPEG's full-range BT.601 (what DVPP
    decodes a JPEG to, and what the recipe's CSC matrix inverts); 4:2:0 chroma is the mean
    of each 2x2 block. rbuv_swap_switch: AIPP swaps R/B (U/V) back, so write BGR (NV21)."""
    from gancc.aipp.message import effective

    swap = bool(effective(fields, "rbuv_swap_switch"))
    fmt = fields["input_format"]
    if fmt == "RGB888_U8":
        rgb = np.asarray(img.convert("RGB"))
        return np.ascontiguousarray(rgb[..., ::-1] if swap else rgb)
    ycc = np.asarray(img if img.mode == "YCbCr" else img.convert("YCbCr"))
    if fmt == "YUV400_U8":
        return np.ascontiguousarray(ycc[..., 0])
    h, w = ycc.shape[:2]
    blocks = ycc[..., 1:].astype(np.uint16).reshape(h // 2, 2, w // 2, 2, 2).sum(axis=(1, 3))
    chroma = ((blocks + 2) // 4).astype(np.uint8)                  # rounded 2x2 mean
    if swap:
        chroma = chroma[..., ::-1]
    return np.concatenate([ycc[..., 0], chroma.reshape(h // 2, w)], axis=0)


def aipp_image(path: Path, block, jpeg_dir: Path | None = None) -> np.ndarray:
    """One image as the om's AIPP input: thumbnail to src_image_size (the recipe's
    gen_dataset_info.py: `thumbnail(size, ANTIALIAS)`, aspect kept, never enlarged).
    With `jpeg_dir`, the thumbnail is saved there as `<stem>.jpeg` (what the recipe's
    benchmark -useDvpp=true decodes) and the bytes come from that JPEG's own YCbCr."""
    from PIL import Image

    from gancc.aipp.emulate import source_size

    h, w = source_size(block.fields, block.model_hw)
    img = _open_rgb(path)
    size = img.size
    img.thumbnail((w, h), Image.LANCZOS)          # ANTIALIAS is LANCZOS
    if img.size != (w, h):
        raise GanccError(f"{path}: a {size[0]}x{size[1]} image is {img.size[0]}x{img.size[1]} "
                         f"after thumbnail(({w}, {h})); the om's AIPP takes exactly {w}x{h}",
                         "resize the images to that aspect ratio first, or change the aipp "
                         "block's src_image_size")
    if jpeg_dir is not None:
        jpeg = jpeg_dir / f"{_stem(path)}.jpeg"
        jpeg_dir.mkdir(parents=True, exist_ok=True)
        img.save(jpeg)
        img = Image.open(jpeg)
        img.draft("YCbCr", img.size)              # the decoder's YCbCr, as DVPP hands it on
    return aipp_bytes(img, block.fields)


def aipp_warnings(block) -> list[str]:
    """The recipe's AIPP crop vs its reference preprocessing (the whole image resized)."""
    from gancc.aipp.emulate import source_size
    from gancc.aipp.message import effective

    f = block.fields
    h, w = source_size(f, block.model_hw)
    if not effective(f, "crop"):
        return []
    ch, cw = int(effective(f, "crop_size_h")) or h, int(effective(f, "crop_size_w")) or w
    if (ch, cw) == (h, w):
        return []
    y, x = int(effective(f, "load_start_pos_h")), int(effective(f, "load_start_pos_w"))
    return [f"input '{block.input}': AIPP crops a {cw}x{ch} window at ({x}, {y}) of the {w}x{h} "
            f"image, so the om sees only that part; the recipe's ONNX reference (eval_acc.py) "
            f"sees the whole image resized to {block.model_hw[1]}x{block.model_hw[0]}. gancc "
            f"compare feeds the graph the same window: it checks the compilation, not the "
            f"recipe's accuracy figure"]


def write_info(path: Path, jpegs: list[Path], size: tuple[int, int]) -> None:
    """gen_dataset_info.py's file for benchmark -input_text_path: `<idx> <path> <w> <h>`."""
    from gancc.fsutil import write_text_atomic

    write_text_atomic(path, "".join(f"{i} {p} {size[0]} {size[1]}\n" for i, p in enumerate(jpegs)))


# ---------------------------------------------------------------------------- prep
@dataclass
class PrepOptions:
    inputs: list[Path]
    out: Path
    batch: int | None = None
    count: int = 1
    seed: int = 0
    recipe: str | None = None
    attrs: Path | None = None           # StarGAN: list_attr_celeba.txt
    instances: Path | None = None       # pix2pixHD: folder of instance maps
    dvpp: bool = False                  # AIPP: also the recipe's JPEG thumbnails and .info file
    legacy_seed: bool = False           # latents: np.random.seed(seed) draws, not default_rng
    split: str | None = None            # stargan: "test", data_loader.py's test set and order


def _batch_for(model: ModelSpec, batch: int | None) -> int:
    fixed = [i.shape[0] for i in model.inputs if isinstance(i.shape[0], int)]
    if fixed:
        if batch not in (None, fixed[0]):
            raise GanccError(f"model '{model.name}' has a fixed batch of {fixed[0]}")
        return fixed[0]
    batch = batch or 1
    sizes = model.batch_sizes()
    if batch not in sizes:
        raise GanccError(f"model '{model.name}' is compiled for batch sizes "
                         f"{', '.join(map(str, sizes))}, not {batch}",
                         "the om for batch N reads files of exactly N samples")
    return batch


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _file_stem(stems: list[str], real: int) -> str:
    return stems[0] if real == 1 else f"{stems[0]}-{stems[real - 1]}"


def _draw(rng, recipe: str, dtype: str, shape) -> np.ndarray:
    if np.issubdtype(_NP[dtype], np.integer):
        return rng.integers(0, 10, shape)                 # BigBiGAN labels
    return rng.standard_normal(shape) if recipe == "gan" else rng.random(shape)


def _legacy_draw(rng, recipe: str, dtype: str, shape) -> np.ndarray:
    """numpy's legacy global generator, as the recipes draw (unseeded there): after
    `np.random.seed(S)`, GAN_preprocess.py's z = np.random.normal(0, 1, (B, 100)) per file,
    pic2bin.py's x1 = np.random.uniform(0, 1, (256, 100)) then randint(0, 10, 256)."""
    if np.issubdtype(_NP[dtype], np.integer):
        return rng.randint(0, 10, shape)
    return rng.normal(0, 1, shape) if recipe == "gan" else rng.uniform(0, 1, shape)


@dataclass
class _BinWriter:
    """Writes one batch file per graph input and records it for the manifest."""
    out: Path
    batch: int
    names: list[str]
    shapes: dict[str, tuple]
    dtypes: dict[str, str]
    files: list[dict] = field(default_factory=list)

    def emit(self, file_stem: str, arrays: dict[str, np.ndarray], stems: list[str], real: int,
             **extra) -> None:
        for name in self.names:
            arr = np.asarray(arrays[name], dtype=_NP[self.dtypes[name]])
            if arr.shape != self.shapes[name]:
                raise GanccError(f"internal: {name} has shape {arr.shape}, expected {self.shapes[name]}")
            _write_bin(self.out / name / f"{file_stem}.bin", arr)
        self.files.append({"name": file_stem, "samples": stems[:real], "padded": self.batch - real,
                           **extra})


def _checked_aipp_blocks(model: ModelSpec, recipe: str, opts: PrepOptions) -> dict:
    """The model's AIPP blocks, once the request is checked against the recipe."""
    if recipe not in ("gan", "bigbigan") and not opts.inputs:
        raise GanccError(f"the {recipe} recipe preprocesses files: name them with --input",
                         "an image or label map, or a folder of them (repeatable)")
    blocks = aipp_blocks(model)
    if blocks and recipe != "cyclegan":
        raise GanccError(f"gancc prep writes AIPP inputs for the cyclegan recipe, not {recipe}",
                         "remove the aipp block, or write the uint8 bins yourself")
    if opts.dvpp and not blocks:
        raise GanccError(f"--dvpp: model '{model.name}' has no aipp block",
                         "the DVPP path feeds AIPP; without AIPP the om takes the float bins")
    return blocks


def _prep_latents(model: ModelSpec, opts: PrepOptions, recipe: str, writer: _BinWriter) -> None:
    draw = _legacy_draw if opts.legacy_seed else _draw
    rng = np.random.RandomState(opts.seed) if opts.legacy_seed else np.random.default_rng(opts.seed)
    batch = writer.batch
    for k in range(opts.count):
        stem = f"z_{k:05d}"
        arrays = {inp.name: draw(rng, recipe, inp.dtype, writer.shapes[inp.name]) for inp in model.inputs}
        writer.emit(stem, arrays, [f"{stem}_{i}" for i in range(batch)], batch)


def _prep_cyclegan(model: ModelSpec, opts: PrepOptions, images: list[Path], blocks: dict,
                   writer: _BinWriter) -> None:
    if len(model.input_names) != 1:
        raise GanccError("the cyclegan recipe takes a model with one image input")
    batch = writer.batch
    inp = model.inputs[0]
    _, _, height, width = inp.concrete_shape(batch)
    block = blocks.get(inp.name)
    jpeg_dir = opts.out / f"{inp.name}_jpeg" if opts.dvpp else None
    for group in _chunks(images, batch):
        data = [aipp_image(p, block, jpeg_dir) if block else
                preprocess_cyclegan(p, height, width) for p in group]
        stems = [_stem(p) for p in group]
        real = len(group)
        data += [data[-1]] * (batch - real)                            # pad a short batch
        writer.emit(_file_stem(stems, real), {inp.name: np.stack(data)}, stems, real)


def _prep_stargan(model: ModelSpec, opts: PrepOptions, images: list[Path], writer: _BinWriter) -> None:
    if len(model.input_names) != 2:
        raise GanccError("the stargan recipe takes a model with inputs (image, attributes)")
    batch = writer.batch
    inp, attr_inp = model.inputs[0], model.inputs[1]
    height = inp.concrete_shape(batch)[2]
    c_dim = writer.shapes[attr_inp.name][1]
    table = read_celeba_attrs(opts.attrs, STARGAN_ATTRS[:c_dim]) if opts.attrs else None
    if opts.split == "test":
        images = stargan_test_split(opts.attrs, images)
    for b, group in enumerate(_chunks(images, batch)):
        data = [preprocess_stargan(p, height) for p in group]
        stems = [_stem(p) for p in group]
        real = len(group)
        c_org = []
        for s in stems:
            if table is not None and s not in table:
                raise GanccError(f"{opts.attrs} has no attributes for image '{s}'")
            c_org.append(table[s] if table is not None else np.zeros(c_dim, np.float32))
        data += [data[-1]] * (batch - real)
        c_org += [c_org[-1]] * (batch - real)
        x = np.stack(data)
        for k, c_trg in enumerate(stargan_targets(np.stack(c_org))):
            # the recipe's names: a global count, 5 per batch (bin/img/<cnt>.bin)
            name = str(b * 5 + k) if opts.split == "test" else f"{_file_stem(stems, real)}_t{k}"
            writer.emit(name, {inp.name: x, attr_inp.name: c_trg}, stems, real, target=k, batch=b)
        if opts.split == "test" and b * 5 + 4 >= STARGAN_TEST_PAIRS - 1:
            break


def _prep_pix2pixhd(model: ModelSpec, opts: PrepOptions, writer: _BinWriter) -> None:
    labels = list_files(opts.inputs, (".png",), "label maps")
    labels = [p for p in labels if "instanceIds" not in p.name]
    batch = writer.batch
    inp = model.inputs[0]
    _, channels, height, width = writer.shapes[inp.name]
    for group in _chunks(labels, batch):
        data = []
        for label in group:
            inst = _instance_for(label, opts.instances)
            if inst is None:
                raise GanccError(f"no instance map for {label}",
                                 "put <name>_instanceIds.png beside the labelIds file, or "
                                 "name the folder with --instances")
            data.append(onehot_with_edges(label, inst, channels - 1, height, width))
        stems = [_stem(p) for p in group]
        real = len(group)
        data += [data[-1]] * (batch - real)
        writer.emit(_file_stem(stems, real), {inp.name: np.stack(data)}, stems, real)
        del data


def _write_dvpp_info(model: ModelSpec, opts: PrepOptions, blocks: dict, images: list[Path]) -> None:
    """The .info file listing the JPEG thumbnails aipp_image wrote, at the AIPP source size."""
    block = blocks[model.inputs[0].name]
    from gancc.aipp.emulate import source_size

    h, w = source_size(block.fields, block.model_hw)
    write_info(opts.out / f"{block.input}.info",
               [opts.out / f"{block.input}_jpeg" / f"{_stem(p)}.jpeg" for p in images], (w, h))


def _manifest(model: ModelSpec, opts: PrepOptions, recipe: str, writer: _BinWriter,
              blocks: dict) -> dict:
    return {"model": model.name, "recipe": recipe, "batch": writer.batch, "inputs": writer.names,
            "shapes": {k: list(v) for k, v in writer.shapes.items()}, "dtypes": writer.dtypes,
            "seed": opts.seed if recipe in ("gan", "bigbigan") else None,
            "legacy_seed": opts.legacy_seed, "files": writer.files,
            "aipp": {n: {"fields": dict(b.fields), "channels": b.channels}
                     for n, b in blocks.items()},
            "warnings": [w for b in blocks.values() for w in aipp_warnings(b)]}


def prep(model: ModelSpec, opts: PrepOptions) -> dict:
    """Write the input bins and manifest.json; returns the manifest."""
    recipe = recipe_for(model, opts.recipe)
    batch = _batch_for(model, opts.batch)
    shapes = {i.name: i.concrete_shape(batch) for i in model.inputs}
    dtypes = {i.name: i.dtype for i in model.inputs}
    blocks = _checked_aipp_blocks(model, recipe, opts)
    for name, block in blocks.items():           # the om's input: uint8 AIPP images
        shapes[name] = (batch, *aipp_sample_shape(block.fields, block.model_hw))
        dtypes[name] = "uint8"
    writer = _BinWriter(opts.out, batch, model.input_names, shapes, dtypes)
    images: list[Path] = []
    if recipe in ("gan", "bigbigan"):
        _prep_latents(model, opts, recipe, writer)
    elif recipe in ("cyclegan", "stargan"):
        images = list_files(opts.inputs, IMAGE_SUFFIXES, "images")
        if recipe == "cyclegan":
            _prep_cyclegan(model, opts, images, blocks, writer)
        else:
            _prep_stargan(model, opts, images, writer)
    elif recipe == "pix2pixhd":
        _prep_pix2pixhd(model, opts, writer)
    else:
        raise GanccError(f"unknown recipe '{recipe}'", f"one of: {', '.join(RECIPES)}")
    if opts.dvpp:
        _write_dvpp_info(model, opts, blocks, images)
    manifest = _manifest(model, opts, recipe, writer, blocks)
    _write_json(opts.out / MANIFEST, manifest)
    return manifest


# ---------------------------------------------------------------------------- post
# `--outfmt BIN` (raw) or `--outfmt TXT` (whitespace-separated numbers, as the StarGAN
# recipe runs ais_bench); BIN is what gancc's docs use.
_AIS = re.compile(r"^(?P<stem>.+)_(?P<k>\d+)\.(bin|txt)$")
_MSAME = re.compile(r"^(?P<stem>.+)_output_(?P<k>\d+)\.(bin|txt)$")


TOOLS = ("ais_bench", "msame", "benchmark")


def _detect_tool(bins: list[Path]) -> str:
    if any(_MSAME.match(p.name) for p in bins):
        return "msame"
    ks = {int(m.group("k")) for p in bins if (m := _AIS.match(p.name))}
    # the legacy benchmark tool numbers outputs from 1 (<stem>_1.bin): no _0 file at all
    return "benchmark" if ks and 0 not in ks else "ais_bench"


def find_outputs(folder: Path, tool: str | None, index: int = 0,
                 required: bool = True) -> dict[str, Path]:
    """stem -> output file of output `index` (0-based), for ais_bench (`<stem>_<k>.bin`),
    msame (`<stem>_output_<k>.bin`) or the legacy benchmark tool (`<stem>_<k+1>.bin`)
    naming; the tool is detected from the names when not given."""
    if not folder.is_dir():
        raise GanccError(f"output folder not found: {folder}")
    bins = [p for p in folder.iterdir() if p.suffix in (".bin", ".txt") and p.is_file()]
    tool = tool or _detect_tool(bins)
    pattern = _MSAME if tool == "msame" else _AIS
    number = index + 1 if tool == "benchmark" else index
    found = {}
    for p in bins:
        m = pattern.match(p.name)
        if m and int(m.group("k")) == number:
            found[m.group("stem")] = p
    if not found and required:
        raise GanccError(f"no {tool} output files in {folder}",
                         "ais_bench writes <stem>_0.bin, msame <stem>_output_0.bin, benchmark "
                         "<stem>_1.bin; with no --output_dirname ais_bench puts them in a "
                         "time-stamped sub-folder")
    return dict(sorted(found.items(), key=lambda kv: _natural_key(kv[0])))


def output_sample_shape(recipe: str, model: ModelSpec) -> tuple[int, ...]:
    """The per-sample output shape of each recipe's generator."""
    if recipe == "gan":
        return (1, 28, 28)
    if recipe == "bigbigan":
        return (32, 32, 1)                                   # NHWC, sigmoid
    _, _, h, w = model.inputs[0].concrete_shape(1)
    return (3, h, w)


def read_output(path: Path, dtype: str, sample_shape: tuple[int, ...],
                batch: int | None = None) -> np.ndarray:
    """An output bin as float32 (-1, *sample_shape); `batch`, when known, must match."""
    if path.suffix == ".txt":
        try:
            data = np.array(path.read_text(encoding="ascii").split(), dtype=np.float64)
        except (ValueError, UnicodeDecodeError) as err:
            raise GanccError(f"{path}: not a text output of numbers: {err}") from None
    else:
        data = np.fromfile(path, dtype=np.dtype(dtype).newbyteorder("<"))
    per = int(np.prod(sample_shape))
    if data.size == 0 or data.size % per or (batch is not None and data.size != batch * per):
        hint = ("is it float16 (--output_type=FP16)? pass --dtype float16" if dtype == "float32"
                else "is it float32? pass --dtype float32")
        expected = f"{batch} x " if batch is not None else "a whole number of "
        raise GanccError(f"{path}: {data.size} {dtype} values is not {expected}"
                         f"{'x'.join(map(str, sample_shape))} outputs", hint)
    return data.reshape(-1, *sample_shape).astype(np.float32)


def _save_image_bytes(unit: np.ndarray) -> np.ndarray:
    """torchvision save_image: `grid.mul(255).add_(0.5).clamp_(0, 255).to(uint8)`, i.e.
    floor(x * 255 + 0.5) in float32 (round half up, not numpy's round half to even)."""
    return np.clip(unit * np.float32(255) + np.float32(0.5), 0, 255).astype(np.uint8)


def _normalize_batch(batch: np.ndarray) -> np.ndarray:
    """make_grid(normalize=True) of torchvision 0.6 (the recipes' torch 1.5): clamp to the
    batch's [min, max], then `add_(-min).div_(max - min + 1e-5)`, in float32."""
    lo, hi = float(batch.min()), float(batch.max())
    return (np.clip(batch, np.float32(lo), np.float32(hi)) + np.float32(-lo)) / np.float32(hi - lo + 1e-5)


def make_grid(unit: np.ndarray, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """torchvision make_grid on an (N, C, H, W) batch: one-channel images become three, a
    batch of one is the image itself, else rows of `nrow` images with `padding` zero pixels
    around each."""
    if unit.shape[1] == 1:
        unit = np.repeat(unit, 3, axis=1)
    if len(unit) == 1:
        return unit[0]
    n, c, h, w = unit.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    hp, wp = h + padding, w + padding
    grid = np.zeros((c, hp * rows + padding, wp * cols + padding), dtype=unit.dtype)
    for k in range(n):
        y, x = divmod(k, cols)
        grid[:, y * hp + padding:y * hp + hp, x * wp + padding:x * wp + wp] = unit[k]
    return grid


def to_images(recipe: str, batch: np.ndarray) -> list[np.ndarray]:
    """Output batch (float32) -> uint8 HWC (or HW) images, byte for byte as each recipe's
    postprocessing makes them (shared/reference/models-recipes.md):
    - cyclegan: (x + 1) / 2, clamp [0, 1], ToPILImage (`mul(255).byte()`: truncates);
    - pix2pixhd: (x + 1) / 2 * 255, clip [0, 255], astype(uint8) (truncates);
    - stargan: denorm (x + 1) / 2 clamped, save_image (floor(x * 255 + 0.5));
    - gan: save_image(normalize=True): the batch's min-max, then floor(x * 255 + 0.5);
    - bigbigan: getAcc.py's uint8(out * 250), clipped (the recipe does not clip)."""
    batch = np.asarray(batch, dtype=np.float32)
    if recipe == "gan":
        return [b[0] for b in _save_image_bytes(_normalize_batch(batch))]
    if recipe == "bigbigan":
        return [np.clip(b[..., 0] * np.float32(250), 0, 255).astype(np.uint8) for b in batch]
    if recipe == "pix2pixhd":
        pixels = np.clip((batch + 1) / 2 * np.float32(255), 0, 255).astype(np.uint8)
    else:
        unit = np.clip((batch + 1) / 2, 0, 1)
        pixels = (_save_image_bytes(unit) if recipe == "stargan"
                  else (unit * np.float32(255)).astype(np.uint8))
    return list(pixels.transpose(0, 2, 3, 1))


def gan_grid(batch: np.ndarray) -> np.ndarray:
    """GAN_postprocess.py's one image per batch: save_image(normalize=True) of the batch,
    i.e. make_grid (8 per row, 2 px padding) of the min-max normalised batch, as RGB."""
    return _save_image_bytes(make_grid(_normalize_batch(np.asarray(batch, np.float32)))).transpose(1, 2, 0)


def _load_manifest(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    path = folder / MANIFEST if folder.is_dir() else folder
    if not path.is_file():
        raise GanccError(f"no {MANIFEST} in {folder}", "point --inputs at the folder `gancc prep` wrote")
    return json.loads(path.read_text(encoding="utf-8"))


def _save(img: np.ndarray, target: Path, fmt: str) -> Path:
    from PIL import Image

    tmp = target.with_name(f".{target.name}.tmp")
    Image.fromarray(img).save(tmp, format="PNG" if fmt == "png" else "JPEG")
    os.replace(tmp, target)
    return target


def post(model: ModelSpec, bins: Path, out: Path, tool: str | None = None,
         dtype: str = "float32", recipe: str | None = None, inputs: Path | None = None,
         fmt: str = "png", onnx_path: Path | None = None) -> list[Path]:
    """One image per sample, named after its source; for GAN also the recipe's one grid
    image per batch file (`<stem>-grid.png`); for StarGAN each image's 5 translations side
    by side (`<stem>-images.png`) and the recipe's one grid per batch, B rows x 5
    (`batches/<batch>-images.png`). With `onnx_path` (the recipes' --onnx_save; needs
    `inputs`), the same images from the ONNX graph run on prep's bins, in OUT/onnx/."""
    manifest = _load_manifest(inputs)
    recipe = recipe_for(model, recipe or (manifest or {}).get("recipe"))
    shape = output_sample_shape(recipe, model)
    outputs = find_outputs(bins, tool)
    writers = [_ImageWriter(recipe, out, fmt)]
    session = None
    if onnx_path is not None:
        session = _onnx_session(onnx_path, manifest)
        writers.append(_ImageWriter(recipe, out / "onnx", fmt))
    # in the manifest's order, which keeps a StarGAN batch's 5 targets together
    entries = [f for f in manifest["files"] if f["name"] in outputs] if manifest else []
    known = {f["name"] for f in entries}
    order = [(f["name"], f) for f in entries] + [(s, None) for s in outputs if s not in known]
    for stem, entry in order:
        writers[0].add(stem, entry, read_output(outputs[stem], dtype, shape,
                                                manifest["batch"] if manifest else None))
        if session is not None:
            if entry is None:
                raise GanccError(f"{outputs[stem]}: no prepared input for '{stem}' in {inputs}",
                                 "--onnx runs the graph on the files `gancc prep` wrote")
            feeds = _reference_feeds(manifest, inputs, stem)
            first = session.get_outputs()[0].name
            writers[1].add(stem, entry, np.asarray(session.run([first], feeds)[0], np.float32))
    return [p for w in writers for p in w.finish()]


def _onnx_session(onnx_path: Path, manifest: dict | None):
    import onnxruntime as ort

    if manifest is None:
        raise GanccError("--onnx needs --inputs: the folder `gancc prep` wrote",
                         "the graph runs on the prepared bins the device read")
    if not onnx_path.is_file():
        raise GanccError(f"ONNX file not found: {onnx_path}", "build the model first (gancc build)")
    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])


class _ImageWriter:
    """Writes one side's images (device or ONNX) into `folder`. StarGAN's strips and batch
    grids are made from the converted pixels in memory, a batch at a time (its 5 targets
    come one after another), so a JPEG strip holds the recipe's pixels, not a re-decoded
    JPEG's."""

    def __init__(self, recipe: str, folder: Path, fmt: str) -> None:
        self.recipe, self.folder, self.fmt = recipe, folder, fmt
        folder.mkdir(parents=True, exist_ok=True)
        self.written: list[Path] = []
        self.key = None
        self.parts: dict[int, tuple[list[str], list[np.ndarray]]] = {}
        self.batches = 0

    def add(self, stem: str, entry: dict | None, batch: np.ndarray) -> None:
        samples = entry["samples"] if entry else (
            [stem] if len(batch) == 1 else [f"{stem}_{i}" for i in range(len(batch))])
        suffix = f"_t{entry['target']}" if entry and "target" in entry else ""
        images = to_images(self.recipe, batch)
        for name, img in zip(samples, images):
            self.written.append(_save(img, self.folder / f"{name}{suffix}.{self.fmt}", self.fmt))
        if self.recipe == "gan" and len(batch) > 1:
            self.written.append(_save(gan_grid(batch), self.folder / f"{stem}-grid.{self.fmt}",
                                      self.fmt))
        if self.recipe == "stargan" and suffix:
            key = entry.get("batch", tuple(samples))
            if key != self.key:
                self._flush()
            self.key = key
            self.parts[entry["target"]] = (samples, images[:len(samples)])

    def finish(self) -> list[Path]:
        self._flush()
        return self.written

    def _flush(self) -> None:
        """The batch's strips (one per image: its translations left to right) and its grid:
        save_image(denorm(cat(fakes, dim=3)), nrow=1, padding=0), i.e. the strips stacked."""
        parts, key = self.parts, self.key
        self.parts, self.key = {}, None
        if len(parts) < 2 or sorted(parts) != list(range(len(parts))):
            return
        samples = parts[0][0]
        rows = [np.concatenate([parts[k][1][i] for k in sorted(parts)], axis=1)
                for i in range(len(samples))]
        for name, row in zip(samples, rows):
            self.written.append(_save(row, self.folder / f"{name}-images.{self.fmt}", self.fmt))
        number = key if isinstance(key, int) else self.batches
        self.batches += 1
        grids = self.folder / "batches"
        grids.mkdir(exist_ok=True)
        self.written.append(_save(np.concatenate(rows, axis=0),
                                  grids / f"{number}-images.{self.fmt}", self.fmt))


# ---------------------------------------------------------------------------- compare
_REQUIRE = re.compile(r"^\s*(?P<metric>\w+)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[-+0-9.eE]+|inf)"
                      r"\s*(?:for\s+(?P<output>\S+))?\s*$")


@dataclass(frozen=True)
class Check:
    """One threshold `compare` applies: a spec `require` line, a `--require`, or `--min`."""

    metric: str
    compare: str
    threshold: float
    output: str | None
    where: str                       # the spec line (file:line:col), or the flag

    def holds(self, value: float) -> bool:
        return {">=": value >= self.threshold, ">": value > self.threshold,
                "<=": value <= self.threshold, "<": value < self.threshold}[self.compare]


def parse_require(text: str) -> Check:
    """`--require "max_abs <= 2e-3 [for maps]"`, in the spec's `require` syntax."""
    from gancc.spec.lower import METRICS

    m = _REQUIRE.match(text)
    if not m or m.group("metric") not in METRICS:
        raise GanccError(f"--require '{text}': expected METRIC OP VALUE [for OUTPUT]",
                         f"METRIC one of {', '.join(METRICS)}; OP one of >= > <= <; "
                         "e.g. --require 'max_abs <= 2e-3'")
    return Check(m.group("metric"), m.group("op"), float(m.group("value")), m.group("output"),
                 f"--require '{text}'")


def output_channel_axis(model: ModelSpec) -> int:
    """Where an output's channels are: the TensorFlow source (BigBiGAN) is NHWC, the
    PyTorch / ONNX exports NCHW. The spec declares no output layout, so the source decides."""
    return -1 if isinstance(model.source, TensorFlowSource) else 1


def _reference_feeds(manifest: dict, inputs: Path, name: str) -> dict[str, np.ndarray]:
    """The ONNX graph's inputs for one prepared file. An AIPP input's bins are the uint8
    image the om takes; the graph gets what AIPP makes of it (swap, crop, CSC, normalise),
    computed in exact float arithmetic (gancc.aipp.emulate.float_preprocess)."""
    from gancc.aipp.emulate import float_preprocess

    feeds = {}
    for inp in manifest["inputs"]:
        path = inputs / inp / f"{name}.bin"
        if not path.is_file():
            raise GanccError(f"prepared input missing: {path}", "rerun gancc prep")
        dtype = np.dtype(manifest["dtypes"][inp]).newbyteorder("<")
        arr = np.fromfile(path, dtype=dtype).reshape(manifest["shapes"][inp])
        aipp = (manifest.get("aipp") or {}).get(inp)
        feeds[inp] = (float_preprocess(aipp["fields"], arr, aipp["channels"]) if aipp
                      else arr.astype(_NP[manifest["dtypes"][inp]]))
    return feeds


def _headline(channels: int) -> str:
    # over one channel the per-pixel channel cosine is sign agreement (trivially 1 for a
    # scaled output), so the recipes' criterion falls back to the flattened cosine
    return "pixel_cosine" if channels > 1 else "cosine"


def compare(model: ModelSpec, onnx_path: Path, bins: Path, inputs: Path, tool: str | None = None,
            dtype: str = "float32", requires: list[Check] | None = None,
            min_cosine: float | None = 0.99) -> dict:
    """Run the ONNX graph on the prepared inputs and compare every output with the device's.
    `requires` (default: the spec's `require` lines) and `min_cosine` (the recipes'
    criterion on each output's headline cosine) are checked on the whole set's figures."""
    import onnxruntime as ort

    from gancc.metrics import SetMetrics

    manifest = _load_manifest(inputs)
    if not onnx_path.is_file():
        raise GanccError(f"ONNX file not found: {onnx_path}",
                         "build the model first (gancc build), or pass --onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    axis = output_channel_axis(model)
    if not bins.is_dir():
        raise GanccError(f"output folder not found: {bins}", "pass the folder ais_bench / msame wrote")
    found = [find_outputs(bins, tool, k, required=False) for k in range(len(names))]
    sets = {n: SetMetrics(axis) for n in names}
    outs = {n: {"rows": [], "kept": [0.0, 0]} for n in names}
    missing = []
    for entry in manifest["files"]:
        stem = entry["name"]
        if any(stem not in f for f in found):
            missing.append(stem)
            continue
        refs = session.run(names, _reference_feeds(manifest, inputs, stem))
        real = len(entry["samples"])
        for k, name in enumerate(names):
            ref = np.asarray(refs[k], dtype=np.float32)
            dev = read_output(found[k][stem], dtype, ref.shape[1:], ref.shape[0]).reshape(ref.shape)
            outs[name]["rows"].append(_compare_row(stem, ref[:real], dev[:real], sets[name],
                                                   outs[name]["kept"]))
    if not outs[names[0]]["rows"]:
        raise GanccError(f"none of the {len(manifest['files'])} prepared file(s) has an output in "
                         f"{bins}", "check --bins (and --tool): ais_bench <stem>_0.bin, msame "
                         "<stem>_output_0.bin, benchmark <stem>_1.bin")
    return _summarise(model, manifest["recipe"], names, sets, outs, missing,
                      model_checks(model) if requires is None else requires, min_cosine)


def _compare_row(stem: str, ref: np.ndarray, dev: np.ndarray, acc, kept: list) -> dict:
    row = {"file": stem, **acc.add(ref, dev)}
    if float(dev.max()) == float(dev.min()) and float(ref.max()) != float(ref.min()):
        row["constant"] = float(dev.flat[0])      # a stuck device output: never a pass
    keep = (ref > 1e-4) & (dev > 1e-4)            # BigBiGAN getAcc.py: pixels above 1e-4 in both
    row["mean_abs_kept"] = float(np.abs(ref - dev)[keep].mean()) if keep.any() else 0.0
    kept[0] += float(np.abs(ref - dev)[keep].sum())
    kept[1] += int(keep.sum())
    return row


def model_checks(model: ModelSpec) -> list[Check]:
    return [Check(r.metric, r.compare, r.threshold, r.output, str(r.span))
            for r in model.validation.requirements]


def _summarise(model, recipe, names, sets, outs, missing, requires, min_cosine) -> dict:
    outputs, checks, failures = {}, [], []
    for name in names:
        figures = sets[name].result()
        kept_sum, kept_n = outs[name]["kept"]
        figures["mean_abs_kept"] = kept_sum / kept_n if kept_n else 0.0
        shape_channels = sets[name].count // max(sets[name].n_pixels, 1)   # along the layout's axis
        headline = _headline(shape_channels)
        rows = outs[name]["rows"]
        outputs[name] = {"set": figures, "channels": shape_channels, "headline": headline,
                         "mean": float(np.mean([r[headline] for r in rows])),
                         "worst": float(min(r[headline] for r in rows)), "rows": rows}
        for row in rows:
            if "constant" in row:
                failures.append(f"output '{name}': the device output of {row['file']} is constant "
                                f"({row['constant']:.6g} everywhere)")
    every = list(requires)
    if min_cosine is not None:
        every += [Check(outputs[n]["headline"], ">=", min_cosine, n, "--min") for n in names]
    for check in every:
        if check.output is not None and check.output not in outputs:
            raise GanccError(f"{check.where}: model '{model.name}' has no output '{check.output}'",
                             f"its outputs: {', '.join(names)}")
        for name in [check.output] if check.output else names:
            value = outputs[name]["set"][check.metric]
            ok = check.holds(value)
            checks.append({"output": name, "metric": check.metric, "value": value,
                           "require": f"{check.compare} {check.threshold:g}", "where": check.where,
                           "passed": ok})
            if not ok:
                failures.append(f"output '{name}': {check.metric} = {value:.6g}, required "
                                f"{check.compare} {check.threshold:g} ({check.where})")
    first = outputs[names[0]]
    return {"model": model.name, "recipe": recipe, "files": len(first["rows"]), "missing": missing,
            "outputs": outputs, "checks": checks, "failures": failures,
            # the first output's headline figures, as before
            "metric": first["headline"], "mean": first["mean"], "worst": first["worst"],
            "rows": first["rows"]}


