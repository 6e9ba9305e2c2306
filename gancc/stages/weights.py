"""Load a checkpoint into a generator, safely and strictly, or seed random weights.

Rules (as upstream's loaders, minus their silent fallbacks):
- `torch.load(..., weights_only=True)`: a pickle that would build arbitrary objects or run
  code is refused, never executed;
- a `module.` prefix (DataParallel) is stripped;
- InstanceNorm `running_mean` / `running_var` / `num_batches_tracked` keys are dropped when
  the owning layer keeps no running statistics (PyTorch-0.4-era CycleGAN files have them);
- a dict that wraps the state_dict (`{"params_ema": {...}}`, `{"state_dict": {...}}`) is
  unwrapped: by the spec's `key`, else when it holds exactly one dict of tensors or one
  well-known wrapper key (the report says which); an ambiguous one lists the candidates;
- `.safetensors` files are read by the safetensors library (no pickle at all);
- what is at the path is said plainly when it is no checkpoint (a folder, a FIFO, a dangling
  link, an empty or corrupt file, a pickled module); tensors that hold no plain data (meta,
  sparse, quantized) are refused; float tensors of another precision are converted, with a
  note, other dtypes refused; NaN/Inf values are a warning;
- then the load is strict: any other missing or unexpected key, or a shape mismatch, is an
  error that lists the keys.
"""

from __future__ import annotations

import pickle
import re
import stat
import warnings
from pathlib import Path

import torch
from torch import nn

from gancc.errors import CheckpointError, did_you_mean
from gancc.fsutil import sha256_file
from gancc.stages.weights_info import WeightsInfo

_IN_STAT_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def init_random(module: nn.Module, seed: int) -> None:
    """Seeded N(0, 0.02) init of conv/linear weights, as upstream's init_weights('normal');
    BatchNorm running statistics get seeded values too (mean N(0, 0.1), var U[0.5, 1.5))."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.02)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) or \
                    (isinstance(m, nn.InstanceNorm2d) and m.affine):
                m.weight.copy_(1.0 + torch.randn(m.weight.shape, generator=gen) * 0.02)
                m.bias.zero_()
                if m.track_running_stats and m.running_mean is not None:
                    # eval-mode models (GAN's BatchNorm1d) read these: make them matter
                    m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


# Keys under which training code keeps the generator's state_dict, most specific first.
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "generator", "netG", "G", "g_ema",
                "model", "net_g", "gen", "G_ema", "network", "module")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RESAVE = "re-save it as `torch.save(model.state_dict(), path)`"


def _what_is_there(path: Path) -> str | None:
    """What the path is when it is no regular file (None when it is one)."""
    if path.is_symlink() and not path.exists():
        return f"a dangling symbolic link (to {path.readlink()})"
    mode = path.stat().st_mode
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return None


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in _ANSI.sub("", str(err)).splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


def _looks_like_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    return path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == b"{")


def _read_file(path: Path):
    """The checkpoint's top-level object, read safely."""
    if _looks_like_safetensors(path):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            raise CheckpointError(path, f"not a valid safetensors file: {_first_line(err)}",
                                  "is it complete? re-download or re-save it") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # torch's storage deprecation notes
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = _ANSI.sub("", str(err))
        if "Unsupported global" not in text and "GLOBAL" not in text:
            raise CheckpointError(path, "the file is corrupt or not a PyTorch checkpoint "
                                  f"({_first_line(err)[:120]})",
                                  "re-download it, or check that the path names the weights "
                                  "file") from None
        found = re.search(r"GLOBAL ([\w.]+)", text)
        raise CheckpointError(path, "refused to load: the file pickles Python objects"
                              + (f" ({found.group(1)})" if found else "")
                              + ", not a plain state_dict of tensors (a whole module?); "
                              "torch.load(weights_only=True) refused it",
                              f"{_RESAVE}; gancc never unpickles arbitrary objects, since that "
                              "can run code") from None
    except Exception as err:  # noqa: BLE001 - a corrupt file raises anything (EOF, Key, Type...)
        raise CheckpointError(path, "the file is corrupt or not a PyTorch checkpoint "
                              f"({type(err).__name__}: {_first_line(err)[:120]})",
                              "is it a complete .pth/.pt/.ckpt file? re-download it") from None


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and \
        all(isinstance(v, torch.Tensor) for k, v in obj.items() if k != "_metadata")


def _unwrap(path: Path, obj, key: str | None) -> tuple[dict, str | None]:
    """The state_dict inside the checkpoint, and the key it was under (None: at the top)."""
    if not isinstance(obj, dict):
        raise CheckpointError(path, f"expected a state_dict (a dict of tensors), got "
                              f"{type(obj).__name__}", "save with `torch.save(model.state_dict(), path)`")
    if key is not None:
        if key not in obj:
            keys = [str(k) for k in obj]
            raise CheckpointError(path, f"the checkpoint has no key '{key}'",
                                  did_you_mean(key, keys) or f"its keys: {', '.join(keys[:20])}")
        return obj[key], key
    if _is_state_dict(obj) or not any(isinstance(v, dict) for v in obj.values()):
        return obj, None
    inner = [k for k, v in obj.items() if _is_state_dict(v)]
    known = [k for k in WRAPPER_KEYS if k in inner]
    if len(inner) == 1 or len(known) == 1:
        chosen = inner[0] if len(inner) == 1 else known[0]
        return obj[chosen], chosen
    candidates = inner or [k for k, v in obj.items() if isinstance(v, dict)]
    raise CheckpointError(path, "the checkpoint wraps several dicts: "
                          f"{', '.join(map(str, candidates))}",
                          'say which holds the generator: weights "..." key "' +
                          str(known[0] if known else candidates[0]) + '"')


def _read_state_dict(path: Path, key: str | None) -> tuple[dict[str, torch.Tensor], str | None]:
    what = _what_is_there(path)
    if what is not None:
        raise CheckpointError(path, f"the checkpoint path is {what}, not a file",
                              "point `weights` at the checkpoint file itself")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "the checkpoint file is empty (0 bytes)",
                              "the download or the save did not finish: fetch it again")
    obj, used = _unwrap(path, _read_file(path), key)
    where = f" under key '{used}'" if used else ""
    if not isinstance(obj, dict):
        raise CheckpointError(path, f"expected a state_dict{where}, got {type(obj).__name__}",
                              "save with `torch.save(model.state_dict(), path)`")
    bad = [k for k, v in obj.items() if k != "_metadata" and not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(path, f"key '{bad[0]}'{where} holds a {type(obj[bad[0]]).__name__}, "
                              "not a tensor", "the file must hold a plain state_dict "
                              "(or name the entry that does: `key \"...\"`)")
    return {str(k): v for k, v in obj.items() if k != "_metadata"}, used


def _plain_tensor_problem(tensor: torch.Tensor) -> str | None:
    if tensor.is_meta:
        return "a meta tensor (no data: it was saved from the meta device)"
    if tensor.layout != torch.strided:
        return f"a {str(tensor.layout).replace('torch.', '')} tensor"
    if tensor.is_quantized:
        return f"a quantized tensor ({str(tensor.dtype).replace('torch.', '')})"
    return None


def _fit_dtypes(path: Path, state: dict, expected: dict) -> list[str]:
    """Refuse tensors that hold no plain data or an unusable dtype; convert other float
    precisions to the module's (returns notes for the report)."""
    converted: dict[tuple[str, str], int] = {}
    for name, want in expected.items():
        got = state[name]
        problem = _plain_tensor_problem(got)
        if problem:
            raise CheckpointError(path, f"key '{name}' holds {problem}",
                                  "save dense float weights: `torch.save(model.state_dict(), "
                                  "path)` from a model on the CPU, not quantized")
        if got.dtype == want.dtype:
            continue
        if got.is_floating_point() and want.is_floating_point():
            pair = (str(got.dtype).replace("torch.", ""), str(want.dtype).replace("torch.", ""))
            converted[pair] = converted.get(pair, 0) + 1
        elif not (_plain_integer(got.dtype) and _plain_integer(want.dtype)):
            raise CheckpointError(path, f"key '{name}' is {str(got.dtype).replace('torch.', '')}"
                                  f", the model's is {str(want.dtype).replace('torch.', '')}",
                                  "save the generator's own weights (float), not an integer, "
                                  "boolean or complex export of them")
        state[name] = got.to(want.dtype)     # a counter (num_batches_tracked) of another width
    return [f"{n} {a} tensor(s) converted to {b}" for (a, b), n in converted.items()]


def _plain_integer(dtype: torch.dtype) -> bool:
    return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool


def _non_finite(state: dict) -> list[str]:
    return [k for k, v in state.items()
            if v.is_floating_point() and not bool(torch.isfinite(v).all())]


def load_checkpoint(module: nn.Module, path: str | Path, key: str | None = None) -> WeightsInfo:
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(path, "checkpoint file not found")
    state, used = _read_state_dict(path, key)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    dropped = _drop_instance_norm_stats(module, state)
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(path, "the checkpoint does not fit the architecture"
                              + (f" (state_dict under key '{used}')" if used else ""),
                              "check the `arch` arguments in the spec (ngf, n_blocks, norm, ...) "
                              "against the settings the checkpoint was trained with"
                              + ("" if used or key else "; or name the entry holding the "
                                 "generator's state_dict: `key \"...\"`"),
                              missing=missing, unexpected=unexpected)
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
             for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise CheckpointError(path, f"{len(wrong)} tensor(s) have the wrong shape:\n    " +
                              "\n    ".join(wrong[:10]),
                              "the `arch` arguments (ngf, input_nc, ...) differ from the checkpoint's")
    notes = _fit_dtypes(path, state, expected)
    bad = _non_finite(state)
    module.load_state_dict(state, strict=True)
    if used:
        notes.insert(0, f"state_dict under key '{used}'")
    warned = (f"{len(bad)} tensor(s) hold NaN or Inf: {', '.join(bad[:5])}"
              + (" ..." if len(bad) > 5 else ""),) if bad else ()
    return WeightsInfo("checkpoint", str(path), sha256_file(path), None, tuple(dropped),
                       "; ".join(notes), key=used, warnings=warned)


def _drop_instance_norm_stats(module: nn.Module, state: dict) -> list[str]:
    """Running-stat keys of InstanceNorm layers that keep none (removed from `state`)."""
    dropped = []
    for key in list(state):
        owner_name, _, leaf = key.rpartition(".")
        if leaf not in _IN_STAT_SUFFIXES:
            continue
        try:
            owner = module.get_submodule(owner_name)
        except AttributeError:
            continue
        if isinstance(owner, nn.modules.instancenorm._InstanceNorm) and not owner.track_running_stats:
            del state[key]
            dropped.append(key)
    return dropped
