"""A BigBiGAN-like conditional MNIST generator in TensorFlow 2, frozen to a .pb.

Upstream (LEGO999/BIgBiGAN) saves no weights, so gancc cannot ship the recipe's
bigbigan.pb. This module builds a graph with the documented structure
(shared/reference/models-upstream.md §5), seeded random weights, and the recipe's freezing
(a tf.function with fixed input specs `x1` (B, 100) float32 and `x2` (B,) int32, frozen with
convert_variables_to_constants_v2; the output node is `Identity`, (B, 32, 32, 1)):

- z is split into 4 chunks of 25; a label embedding (10 -> 32) is appended to chunks 1..3;
- Dense 25 -> 4*4*ch, reshaped NHWC to (B, 4, 4, ch);
- three up-blocks (ch -> ch -> ch/2 -> ch/4, 4 -> 8 -> 16 -> 32): conditional BN (gamma and
  beta are Dense layers of the block's z chunk, fixed test statistics), ReLU, nearest x2,
  conv3x3; conditional BN, ReLU, conv3x3; plus a conv1x1 of the upsampled input;
- self-attention at 16x16 after the second block (1x1 convs to ch/16, softmax over
  positions, gamma-scaled residual);
- BatchNorm (eps 1e-3, moving statistics), ReLU, a stride-1 3x3 transposed conv to 1
  channel, sigmoid.

Spectral normalisation is baked into the kernels (each divided by its largest singular
value), as an export of the trained model would do. It is written from those facts; no
upstream code is used.

    python -m gancc.tf_bigbigan OUT.pb [--batch 256] [--ch 256] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")   # before TensorFlow is imported
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

Z_DIM, CHUNKS, EMB, CLASSES = 100, 4, 32, 10


def _sn(w: np.ndarray) -> np.ndarray:
    """Divide a kernel by its spectral norm (over the (-1, last_dim) view)."""
    sigma = np.linalg.norm(w.reshape(-1, w.shape[-1]), 2)
    return (w / max(sigma, 1e-12)).astype(np.float32)


def _weights(rng: np.random.Generator, ch: int) -> dict:
    """Seeded weights of every layer, as numpy arrays (spectral norm already applied)."""
    chunk = Z_DIM // CHUNKS
    cond = chunk + EMB

    def normal(*shape, std=0.02):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    def cbn_params(c):
        return {"gk": normal(cond, c), "gb": 1 + normal(c), "bk": normal(cond, c),
                "bb": normal(c), "mean": normal(c, std=0.1),
                "var": (0.5 + rng.random(c)).astype(np.float32)}

    widths = [ch, ch, ch // 2, ch // 4]
    params = {"emb": normal(CLASSES, EMB, std=1.0), "dense_w": _sn(normal(chunk, 16 * ch)),
              "dense_b": normal(16 * ch), "blocks": []}
    for c_in, c_out in zip(widths, widths[1:]):
        params["blocks"].append({
            "cbn0": cbn_params(c_in), "cbn1": cbn_params(c_out),
            "conv1": _sn(normal(3, 3, c_in, c_out)), "conv2": _sn(normal(3, 3, c_out, c_out)),
            "skip": _sn(normal(1, 1, c_in, c_out))})
    a_ch, a_k = widths[2], max(widths[2] // 8, 1)
    params["att"] = {k: _sn(normal(1, 1, a_ch, a_k)) for k in ("f", "g", "h")}
    params["att"].update({f"{k}_b": normal(a_k) for k in ("f", "g", "h")})
    params["att"].update(v=_sn(normal(1, 1, a_k, a_ch)), v_b=normal(a_ch),
                         gamma=np.float32(0.5))
    params["bn"] = {"gamma": 1 + normal(widths[3]), "beta": normal(widths[3]),
                    "mean": normal(widths[3], std=0.1),
                    "var": (0.5 + rng.random(widths[3])).astype(np.float32)}
    params["out"] = _sn(normal(3, 3, 1, widths[3]))    # conv-transpose kernel (h, w, out, in)
    return params


def _cbn(tf, x, z, p):
    """Conditional BatchNorm: gamma and beta from the block's z chunk, fixed statistics."""
    gamma = tf.matmul(z, p["gk"]) + p["gb"]
    beta = tf.matmul(z, p["bk"]) + p["bb"]
    x = (x - p["mean"]) / tf.sqrt(p["var"] + 1e-5)
    return x * gamma[:, None, None, :] + beta[:, None, None, :]


def _up(tf, x):
    return tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)   # nearest x2, NHWC


def _block(tf, x, z, p):
    h = tf.nn.relu(_cbn(tf, x, z, p["cbn0"]))
    h = tf.nn.conv2d(_up(tf, h), p["conv1"], 1, "SAME")
    h = tf.nn.relu(_cbn(tf, h, z, p["cbn1"]))
    h = tf.nn.conv2d(h, p["conv2"], 1, "SAME")
    return h + tf.nn.conv2d(_up(tf, x), p["skip"], 1, "SAME")


def _attention(tf, x, p):
    b, hh, ww, c = x.shape
    n = hh * ww
    f = tf.reshape(tf.nn.conv2d(x, p["f"], 1, "SAME") + p["f_b"], [b, n, -1])
    g = tf.reshape(tf.nn.conv2d(x, p["g"], 1, "SAME") + p["g_b"], [b, n, -1])
    h = tf.reshape(tf.nn.conv2d(x, p["h"], 1, "SAME") + p["h_b"], [b, n, -1])
    s = tf.nn.softmax(tf.matmul(g, f, transpose_b=True), axis=-1)
    o = tf.reshape(tf.matmul(s, h), [b, hh, ww, -1])
    o = tf.nn.conv2d(o, p["v"], 1, "SAME") + p["v_b"]
    return p["gamma"] * o + x


def _forward(tf, p, x1, x2, batch: int, ch: int):
    zs = tf.split(x1, CHUNKS, axis=1)
    e = tf.gather(p["emb"], x2)
    h = tf.reshape(tf.matmul(zs[0], p["dense_w"]) + p["dense_b"], [batch, 4, 4, ch])
    for i, bp in enumerate(p["blocks"]):
        h = _block(tf, h, tf.concat([zs[i + 1], e], axis=1), bp)
        if i == 1:
            h = _attention(tf, h, p["att"])
    bn = p["bn"]
    h = tf.nn.relu((h - bn["mean"]) / tf.sqrt(bn["var"] + 1e-3) * bn["gamma"] + bn["beta"])
    h = tf.nn.conv2d_transpose(h, p["out"], [batch, 32, 32, 1], 1, "SAME")
    return tf.sigmoid(h)


def build_generator(batch: int = 256, ch: int = 256, seed: int = 0):
    """The frozen GraphDef of a BigBiGAN-like generator with seeded weights."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    # variables (frozen into constants below), as a trained model's export holds them
    params = tf.nest.map_structure(tf.Variable, _weights(np.random.default_rng(seed), ch))

    class Generator(tf.Module):
        def __init__(self):
            super().__init__()
            self.params = params

        @tf.function(input_signature=[tf.TensorSpec([batch, Z_DIM], tf.float32, name="x1"),
                                      tf.TensorSpec([batch], tf.int32, name="x2")])
        def __call__(self, x1, x2):
            return _forward(tf, self.params, x1, x2, batch, ch)

    gen = Generator()
    frozen = convert_variables_to_constants_v2(gen.__call__.get_concrete_function())
    return frozen.graph.as_graph_def()


def write_pb(path: str | Path, batch: int = 256, ch: int = 256, seed: int = 0) -> Path:
    path = Path(path)
    data = build_generator(batch, ch, seed).SerializeToString()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gancc.tf_bigbigan",
                                     description="Write a frozen BigBiGAN-like generator (seeded "
                                                 "random weights) as a TensorFlow .pb.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--ch", type=int, default=256, help="base channels (upstream: 256)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.ch % 16 or args.batch < 1:
        print("error: --ch must be a multiple of 16 and --batch at least 1", file=sys.stderr)
        return 2
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("error: TensorFlow is not installed\nhint: pip install -e '.[tf]'", file=sys.stderr)
        return 1
    print(f"wrote {write_pb(args.out, args.batch, args.ch, args.seed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
