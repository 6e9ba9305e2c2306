"""Comparison figures between a reference output and an actual one (validation, fp16
prediction, AIPP emulation, device runs, `gancc compare`).

Per output:
- pixel_cosine: cosine similarity across channels at each position, averaged; what the
  Ascend recipes compute with `torch.cosine_similarity(a, b)` (default dim=1). The channel
  axis is 1 for NCHW outputs; pass `channel_axis=-1` for NHWC ones (BigBiGAN's TensorFlow
  output), else the "channels" would be image rows;
- cosine: cosine of the flattened tensors;
- max_abs, mean_abs: absolute error;
- psnr: 10*log10(range^2 / mse), range = the reference's max - min.
- ssim (`ssim`, separately: it costs more): the structural similarity of Wang et al. 2004
  with the standard window, an 11x11 Gaussian of sigma 1.5 ("valid" region, no padding),
  K1 = 0.01, K2 = 0.03 and L = the reference's max - min (as PSNR), per channel and image,
  averaged.
"""

from __future__ import annotations

import numpy as np


def metrics(reference: np.ndarray, actual: np.ndarray, channel_axis: int = 1) -> dict[str, float]:
    ref = reference.astype(np.float64)
    act = actual.astype(np.float64)
    diff = np.abs(ref - act)
    eps = 1e-12
    if ref.ndim >= 2:
        num = (ref * act).sum(axis=channel_axis)
        den = (np.sqrt((ref * ref).sum(axis=channel_axis)) *
               np.sqrt((act * act).sum(axis=channel_axis)))
        pixel = float(np.mean(num / np.maximum(den, eps)))
    else:
        pixel = float(np.dot(ref, act) / max(np.linalg.norm(ref) * np.linalg.norm(act), eps))
    flat = float(np.dot(ref.ravel(), act.ravel()) /
                 max(np.linalg.norm(ref.ravel()) * np.linalg.norm(act.ravel()), eps))
    mse = float(np.mean((ref - act) ** 2))
    data_range = float(ref.max() - ref.min()) or 1.0
    psnr = float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))
    return {"pixel_cosine": pixel, "cosine": flat, "max_abs": float(diff.max()),
            "mean_abs": float(diff.mean()), "psnr": psnr}


BORDER_BAND = 8       # pixels: where lossy padding rewrites (reflect -> zero) put their error


def region_metrics(reference: np.ndarray, actual: np.ndarray, band: int = BORDER_BAND) -> dict | None:
    """Error in the outer `band` pixels of an NCHW output vs the interior, or None when the
    output is not an image larger than twice the band."""
    if reference.ndim != 4 or min(reference.shape[2:]) <= 2 * band:
        return None
    inner = np.zeros(reference.shape[2:], dtype=bool)
    inner[band:-band, band:-band] = True
    out = {"band": band}
    for region, mask in (("border", ~inner), ("interior", inner)):
        m = metrics(reference[:, :, mask][..., None], actual[:, :, mask][..., None])
        out[region] = {k: m[k] for k in ("pixel_cosine", "mean_abs", "max_abs")}
    return out


class SetMetrics:
    """The figures of `metrics` over a whole set of batches, accumulated one batch at a time
    (`gancc compare` over a data set holds one file in memory, not the set): `result()`
    equals `metrics(np.concatenate(refs), np.concatenate(acts), channel_axis)`."""

    def __init__(self, channel_axis: int = 1):
        self.channel_axis = channel_axis
        self.n_pixels = 0           # positions the per-pixel cosine averages over
        self.pixel_sum = 0.0
        self.dot = self.ref_sq = self.act_sq = 0.0
        self.abs_sum = self.sq_sum = 0.0
        self.count = 0
        self.max_abs = 0.0
        self.lo, self.hi = np.inf, -np.inf

    def add(self, reference: np.ndarray, actual: np.ndarray) -> dict[str, float]:
        """Add one batch; returns its own figures."""
        ref = reference.astype(np.float64)
        act = actual.astype(np.float64)
        own = metrics(ref, act, self.channel_axis)
        pixels = ref.size // ref.shape[self.channel_axis] if ref.ndim >= 2 else 1
        self.n_pixels += pixels
        self.pixel_sum += own["pixel_cosine"] * pixels
        self.dot += float(np.dot(ref.ravel(), act.ravel()))
        self.ref_sq += float(np.dot(ref.ravel(), ref.ravel()))
        self.act_sq += float(np.dot(act.ravel(), act.ravel()))
        self.abs_sum += own["mean_abs"] * ref.size
        self.sq_sum += float(np.sum((ref - act) ** 2))
        self.count += ref.size
        self.max_abs = max(self.max_abs, own["max_abs"])
        self.lo, self.hi = min(self.lo, float(ref.min())), max(self.hi, float(ref.max()))
        return own

    def result(self) -> dict[str, float]:
        eps = 1e-12
        mse = self.sq_sum / max(self.count, 1)
        data_range = (self.hi - self.lo) or 1.0
        return {"pixel_cosine": self.pixel_sum / max(self.n_pixels, 1),
                "cosine": float(self.dot / max(np.sqrt(self.ref_sq) * np.sqrt(self.act_sq), eps)),
                "max_abs": self.max_abs, "mean_abs": self.abs_sum / max(self.count, 1),
                "psnr": float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))}


SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _gaussian_filter_valid(x: np.ndarray) -> np.ndarray:
    """The 11x11 Gaussian (sigma 1.5) over the last two axes, "valid" region only: separable,
    as 11 shifted slices per axis (numpy only, no scipy)."""
    r = np.arange(SSIM_WINDOW) - SSIM_WINDOW // 2
    w = np.exp(-(r ** 2) / (2 * SSIM_SIGMA ** 2))
    w /= w.sum()
    h, wd = x.shape[-2] - SSIM_WINDOW + 1, x.shape[-1] - SSIM_WINDOW + 1
    rows = sum(w[i] * x[..., i:i + h, :] for i in range(SSIM_WINDOW))
    return sum(w[i] * rows[..., :, i:i + wd] for i in range(SSIM_WINDOW))


def ssim(reference: np.ndarray, actual: np.ndarray, channel_axis: int = 1) -> float | None:
    """Mean SSIM over every image and channel of a batch (N, C, H, W), or (N, H, W, C) with
    `channel_axis=-1`; None when the output is not images of at least 11x11 pixels."""
    if reference.ndim != 4:
        return None
    ref = np.moveaxis(reference.astype(np.float64), channel_axis, 1)
    act = np.moveaxis(actual.astype(np.float64), channel_axis, 1)
    if min(ref.shape[2:]) < SSIM_WINDOW:
        return None
    data_range = float(ref.max() - ref.min()) or 1.0
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    total, count = 0.0, 0
    for k in range(ref.shape[0]):       # one image at a time: a 1024x2048 batch stays small
        x, y = ref[k], act[k]
        mx, my = _gaussian_filter_valid(x), _gaussian_filter_valid(y)
        sxx = _gaussian_filter_valid(x * x) - mx * mx
        syy = _gaussian_filter_valid(y * y) - my * my
        sxy = _gaussian_filter_valid(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        total += float(s.mean(axis=(1, 2)).sum())
        count += s.shape[0]
    return total / count
