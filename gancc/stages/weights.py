"""Load a checkpoint into a generator, safely and strictly, or seed random weights.

Rules (as upstream's loaders, minus their silent fallbacks):
- `torch.load(..., weights_only=True)`: a pickle that would build arbitrary objects or run
  code is refused, never executed;
- a `module.` prefix (DataParallel) is stripped;
- InstanceNorm `running_mean` / `running_var` / `num_batches_tracked` keys are dropped when
  the owning layer keeps no running statistics (PyTorch-0.4-era CycleGAN files have them);
- then the load is strict: any other missing or unexpected key, or a shape mismatch, is an
  error that lists the keys.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from gancc.errors import CheckpointError
from gancc.fsutil import sha256_file
from gancc.stages.weights_info import WeightsInfo  # noqa: F401 (what the loaders return)

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


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(path, "refused to load: the file is not a plain state_dict of tensors "
                              f"(weights_only=True rejected it: {str(err).splitlines()[0]})",
                              "re-save it as `torch.save(model.state_dict(), path)`; gancc never "
                              "unpickles arbitrary objects, since that can run code") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(path, f"cannot read the checkpoint: {str(err).splitlines()[0]}",
                              "is it a complete PyTorch .pth file? re-download it") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError(path, f"expected a state_dict (a dict of tensors), got {type(obj).__name__}",
                              "save with `torch.save(model.state_dict(), path)`")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(path, f"key '{bad[0]}' holds a {type(obj[bad[0]]).__name__}, not a tensor",
                              "the file must be a plain state_dict")
    return {str(k): v for k, v in obj.items()}


def load_checkpoint(module: nn.Module, path: str | Path) -> WeightsInfo:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file not found")
    state = _read_state_dict(path)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    state.pop("_metadata", None)
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
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(path, "the checkpoint does not fit the architecture",
                              "check the `arch` arguments in the spec (ngf, n_blocks, norm, ...) "
                              "against the settings the checkpoint was trained with",
                              missing=missing, unexpected=unexpected)
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
             for k, v in expected.items() if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise CheckpointError(path, f"{len(wrong)} tensor(s) have the wrong shape:\n    " +
                              "\n    ".join(wrong[:10]),
                              "the `arch` arguments (ngf, input_nc, ...) differ from the checkpoint's")
    module.load_state_dict(state, strict=True)
    return WeightsInfo("checkpoint", str(path), sha256_file(path), None, tuple(dropped))
