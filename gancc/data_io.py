"""Data in and out of a compiled model, as the five recipes need it.

- `prep`: inputs -> the .bin files ais_bench / msame read: raw little-endian, C-order, no
  header, one file per batch, one folder per graph input (`<out>/<input name>/<stem>.bin`),
  file names keeping the source stem. A `manifest.json` records which samples each file holds.
- `post`: output bins (ais_bench `<stem>_<k>.bin`, msame `<stem>_output_<k>.bin`; float32, or
  float16 with `--output_type=FP16`) -> images, one per sample, named after the source stem.
- `compare`: runs the ONNX graph on the prepared inputs and computes the recipes' metric
  (per-pixel channel cosine; for BigBiGAN the mean absolute difference over pixels > 1e-4)
  against the device outputs.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gancc.errors import GanccError
from gancc.recipes import RECIPES
from gancc.spec.model import ModelSpec, PyTorchSource, TensorFlowSource

_ARCH_RECIPES = {"resnet_generator": "cyclegan", "stargan_generator": "stargan",
                 "pix2pixhd_local_enhancer": "pix2pixhd", "pix2pixhd_global_generator": "pix2pixhd",
                 "mnist_mlp_generator": "gan"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
STARGAN_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
STARGAN_HAIR = 3            # the first three selected attributes are hair colours
MANIFEST = "manifest.json"
_NP = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64,
       "uint8": np.uint8, "int8": np.int8, "bool": np.bool_}


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
    top = int(round((h - th) / 2.0))
    left = int(round((w - tw) / 2.0))
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


def prep(model: ModelSpec, opts: PrepOptions) -> dict:
    """Write the input bins and manifest.json; returns the manifest."""
    recipe = recipe_for(model, opts.recipe)
    batch = _batch_for(model, opts.batch)
    names = model.input_names
    shapes = {i.name: i.concrete_shape(batch) for i in model.inputs}
    dtypes = {i.name: i.dtype for i in model.inputs}
    files: list[dict] = []
    if recipe not in ("gan", "bigbigan") and not opts.inputs:
        raise GanccError(f"the {recipe} recipe preprocesses files: name them with --input",
                         "an image or label map, or a folder of them (repeatable)")

    def emit(file_stem: str, arrays: dict[str, np.ndarray], stems: list[str], real: int, **extra):
        for name in names:
            arr = np.asarray(arrays[name], dtype=_NP[dtypes[name]])
            if arr.shape != shapes[name]:
                raise GanccError(f"internal: {name} has shape {arr.shape}, expected {shapes[name]}")
            _write_bin(opts.out / name / f"{file_stem}.bin", arr)
        files.append({"name": file_stem, "samples": stems[:real], "padded": batch - real, **extra})

    if recipe in ("gan", "bigbigan"):
        rng = np.random.default_rng(opts.seed)
        for k in range(opts.count):
            stem = f"z_{k:05d}"
            arrays = {}
            for inp in model.inputs:
                shape = shapes[inp.name]
                if np.issubdtype(_NP[inp.dtype], np.integer):
                    arrays[inp.name] = rng.integers(0, 10, shape)            # BigBiGAN labels
                elif recipe == "gan":
                    arrays[inp.name] = rng.standard_normal(shape)            # z ~ N(0, 1)
                else:
                    arrays[inp.name] = rng.random(shape)                     # z ~ U[0, 1)
            emit(stem, arrays, [f"{stem}_{i}" for i in range(batch)], batch)
    elif recipe in ("cyclegan", "stargan"):
        images = list_files(opts.inputs, IMAGE_SUFFIXES, "images")
        inp = model.inputs[0]
        _, _, height, width = shapes[inp.name]
        if recipe == "cyclegan":
            if len(names) != 1:
                raise GanccError("the cyclegan recipe takes a model with one image input")
            for group in _chunks(images, batch):
                data = [preprocess_cyclegan(p, height, width) for p in group]
                stems = [_stem(p) for p in group]
                real = len(group)
                data += [data[-1]] * (batch - real)                            # pad a short batch
                emit(_file_stem(stems, real), {inp.name: np.stack(data)}, stems, real)
        else:
            if len(names) != 2:
                raise GanccError("the stargan recipe takes a model with inputs (image, attributes)")
            attr_inp = model.inputs[1]
            c_dim = shapes[attr_inp.name][1]
            table = read_celeba_attrs(opts.attrs, STARGAN_ATTRS[:c_dim]) if opts.attrs else None
            for group in _chunks(images, batch):
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
                    emit(f"{_file_stem(stems, real)}_t{k}", {inp.name: x, attr_inp.name: c_trg},
                         stems, real, target=k)
    elif recipe == "pix2pixhd":
        labels = list_files(opts.inputs, (".png",), "label maps")
        labels = [p for p in labels if "instanceIds" not in p.name]
        inp = model.inputs[0]
        _, channels, height, width = shapes[inp.name]
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
            emit(_file_stem(stems, real), {inp.name: np.stack(data)}, stems, real)
            del data
    else:
        raise GanccError(f"unknown recipe '{recipe}'", f"one of: {', '.join(RECIPES)}")
    manifest = {"model": model.name, "recipe": recipe, "batch": batch, "inputs": names,
                "shapes": {k: list(v) for k, v in shapes.items()}, "dtypes": dtypes,
                "seed": opts.seed if recipe in ("gan", "bigbigan") else None, "files": files}
    _write_json(opts.out / MANIFEST, manifest)
    return manifest


# ---------------------------------------------------------------------------- post
# `--outfmt BIN` (raw) or `--outfmt TXT` (whitespace-separated numbers, as the StarGAN
# recipe runs ais_bench); BIN is what gancc's docs use.
_AIS = re.compile(r"^(?P<stem>.+)_(?P<k>\d+)\.(bin|txt)$")
_MSAME = re.compile(r"^(?P<stem>.+)_output_(?P<k>\d+)\.(bin|txt)$")


def find_outputs(folder: Path, tool: str | None, index: int = 0) -> dict[str, Path]:
    """stem -> output bin of output `index`, for ais_bench or msame naming (auto-detected)."""
    if not folder.is_dir():
        raise GanccError(f"output folder not found: {folder}")
    bins = [p for p in folder.iterdir() if p.suffix in (".bin", ".txt") and p.is_file()]
    if tool is None:
        tool = "msame" if any(_MSAME.match(p.name) for p in bins) else "ais_bench"
    pattern = _MSAME if tool == "msame" else _AIS
    found = {}
    for p in bins:
        m = pattern.match(p.name)
        if m and int(m.group("k")) == index:
            found[m.group("stem")] = p
    if not found:
        raise GanccError(f"no {tool} output files in {folder}",
                         "ais_bench writes <stem>_0.bin, msame <stem>_output_0.bin; with no "
                         "--output_dirname ais_bench puts them in a time-stamped sub-folder")
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


def to_images(recipe: str, batch: np.ndarray) -> list[np.ndarray]:
    """Output batch -> uint8 HWC (or HW) images, as each recipe's postprocessing does."""
    if recipe == "gan":                                     # save_image(normalize=True): batch min-max
        lo, hi = float(batch.min()), float(batch.max())
        unit = (batch - lo) / max(hi - lo, 1e-5)
        return [np.round(u[0] * 255).astype(np.uint8) for u in unit]
    if recipe == "bigbigan":                                # getAcc.py: uint8(out * 250)
        return [np.clip(b[..., 0] * 250, 0, 255).astype(np.uint8) for b in batch]
    unit = np.clip((batch + 1) / 2, 0, 1)                   # tanh models: (x + 1) / 2, clamped
    return [np.round(u.transpose(1, 2, 0) * 255).astype(np.uint8) for u in unit]


def _load_manifest(folder: Path | None) -> dict | None:
    if folder is None:
        return None
    path = folder / MANIFEST if folder.is_dir() else folder
    if not path.is_file():
        raise GanccError(f"no {MANIFEST} in {folder}", "point --inputs at the folder `gancc prep` wrote")
    return json.loads(path.read_text(encoding="utf-8"))


def post(model: ModelSpec, bins: Path, out: Path, tool: str | None = None,
         dtype: str = "float32", recipe: str | None = None, inputs: Path | None = None,
         fmt: str = "png") -> list[Path]:
    from PIL import Image

    recipe = recipe_for(model, recipe or (_load_manifest(inputs) or {}).get("recipe"))
    manifest = _load_manifest(inputs)
    entries = {f["name"]: f for f in manifest["files"]} if manifest else {}
    shape = output_sample_shape(recipe, model)
    written = []
    out.mkdir(parents=True, exist_ok=True)
    for stem, path in find_outputs(bins, tool).items():
        entry = entries.get(stem)
        batch = read_output(path, dtype, shape, manifest["batch"] if manifest else None)
        samples = entry["samples"] if entry else (
            [stem] if len(batch) == 1 else [f"{stem}_{i}" for i in range(len(batch))])
        suffix = f"_t{entry['target']}" if entry and "target" in entry else ""
        for name, img in zip(samples, to_images(recipe, batch)):
            target = out / f"{name}{suffix}.{fmt}"
            tmp = target.with_name(f".{target.name}.tmp")
            Image.fromarray(img).save(tmp, format="PNG" if fmt == "png" else "JPEG")
            os.replace(tmp, target)
            written.append(target)
    if recipe == "stargan":
        written += _stargan_strips(out, fmt)
    return written


def _stargan_strips(out: Path, fmt: str) -> list[Path]:
    """upstream's test output: the 5 translations of an image side by side."""
    from PIL import Image

    groups: dict[str, dict[int, Path]] = {}
    for p in out.glob(f"*_t[0-9].{fmt}"):
        groups.setdefault(p.stem[:-3], {})[int(p.stem[-1])] = p
    written = []
    for stem, parts in groups.items():
        if sorted(parts) != list(range(len(parts))) or len(parts) < 2:
            continue
        row = np.concatenate([np.asarray(Image.open(parts[k])) for k in sorted(parts)], axis=1)
        target = out / f"{stem}-images.{fmt}"
        Image.fromarray(row).save(target)
        written.append(target)
    return written


# ---------------------------------------------------------------------------- compare
def compare(model: ModelSpec, onnx_path: Path, bins: Path, inputs: Path, tool: str | None = None,
            dtype: str = "float32") -> dict:
    """Run the ONNX graph on the prepared inputs; compare with the device outputs."""
    import onnxruntime as ort

    from gancc.stages.validate import metrics

    manifest = _load_manifest(inputs)
    recipe = manifest["recipe"]
    if not onnx_path.is_file():
        raise GanccError(f"ONNX file not found: {onnx_path}",
                         "build the model first (gancc build), or pass --onnx")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out_name = session.get_outputs()[0].name
    outputs = find_outputs(bins, tool) if bins.is_dir() else {}
    shape = output_sample_shape(recipe, model)
    rows, missing = [], []
    for entry in manifest["files"]:
        name = entry["name"]
        if name not in outputs:
            missing.append(name)
            continue
        feeds = {}
        for inp in manifest["inputs"]:
            arr = np.fromfile(inputs / inp / f"{name}.bin",
                              dtype=np.dtype(manifest["dtypes"][inp]).newbyteorder("<"))
            feeds[inp] = arr.reshape(manifest["shapes"][inp]).astype(_NP[manifest["dtypes"][inp]])
        ref = session.run([out_name], feeds)[0].astype(np.float32)
        dev = read_output(outputs[name], dtype, shape, manifest["batch"]).reshape(ref.shape)
        real = len(entry["samples"])
        ref, dev = ref[:real], dev[:real]
        row = {"file": name, **metrics(ref, dev)}
        if recipe == "bigbigan":                 # getAcc.py: pixels above 1e-4 in both
            keep = (ref > 1e-4) & (dev > 1e-4)
            row["mean_abs_kept"] = float(np.abs(ref - dev)[keep].mean()) if keep.any() else 0.0
        rows.append(row)
    if not rows:
        raise GanccError(f"none of the {len(manifest['files'])} prepared file(s) has an output in {bins}",
                         "check --bins (and --tool): ais_bench <stem>_0.bin, msame <stem>_output_0.bin")
    metric = "mean_abs_kept" if recipe == "bigbigan" else "pixel_cosine"
    summary = {"recipe": recipe, "metric": metric, "files": len(rows), "missing": missing,
               "mean": float(np.mean([r[metric] for r in rows])),
               "worst": float((max if recipe == "bigbigan" else min)(r[metric] for r in rows)),
               "rows": rows}
    return summary
