"""The spec fuzzer: token mutations of the seed specs (specs/*.gan) and of generated specs:
deletions, duplications, swaps, huge and non-finite numbers, deep nesting, odd strings
(unicode, control characters, shell syntax). A case passes when what `gancc check` does
(parse, lower, the checks against gancc's registries, the AIPP rules) ends normally or in a
GanccError: anything else would be exit 70, "a bug in gancc"."""

from __future__ import annotations

import random
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# strings, numbers, names (with kebab-case), then any other single character
_TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|[-+]?\d[\w.+-]*|[A-Za-z_][\w.-]*|\s+|.', re.S)

HUGE = ["9" * 5000, "9" * 400, "18446744073709551616", "1e309", "-1e309", "1e-400", "0",
        "-1", "2147483648", "4294967296", "0.0000001", "-0.0", "65536"]
ODD = ['"\u00e9\u4e2d\U0001F600"', '"a\\nb"', '"$(touch pwned)"', '"`id`"', '"a; b"', "'x'",
       '"\\x"', '""', '"a\\tb"', '"../../etc/passwd"', '"/abs/path.onnx"', "\u200b", "\x00",
       "\r", "\x0b", "\u2028", '"' + "a" * 3000 + '"']
WORDS = ["model", "source", "pytorch", "onnx", "input", "output", "opset", "rewrite", "aipp",
         "atc", "validate", "require", "data", "rule", "match", "batch", "weights", "arch",
         "else", "random", "N", "float32", "uint8", "float16", "{", "}", "[", "]", "(", ")",
         ",", ":", "=", ">=", "->", "#", "normalize", "csc", "crop", "pad", "preset=jpeg",
         "mean=[0.5]", "fuse-pad-into-conv", "reflect-pad-to-constant{value=1}", "x=",
         "soc_version", "out_nodes", "true"]


def seed_specs() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((REPO / "specs").glob("*.gan"))]


GENERATED = """\
model g{i} {{
    source pytorch {{
        arch resnet_generator(input_nc={c}, output_nc={c}, ngf={ngf}, n_blocks={blocks})
        weights "w.pth" else random(seed={seed})
    }}
    input x: {dtype}[N, {c}, {h}, {w}] batch {batch}
    output y
    opset {opset}
    rewrite {{ {passes} }}
{aipp}    atc {{ soc_version Ascend310P3  output "G{i}"  out_nodes y }}
    validate {{ samples {samples}  data x {dist}  require {metric} >= {threshold} }}
}}
"""


def generated_spec(rng: random.Random) -> str:
    c = rng.choice([1, 3, 3, 4])
    aipp = ""
    if rng.random() < 0.4:
        aipp = (f"    aipp x {{ input_format {rng.choice(['RGB888_U8', 'YUV400_U8', 'YUV420SP_U8'])}"
                f"  normalize mean=[0.5, 0.5, 0.5] std=[0.5, 0.5, 0.5] }}\n")
    return GENERATED.format(
        i=rng.randint(0, 99), c=c, ngf=rng.choice([4, 8]), blocks=rng.choice([1, 2]),
        seed=rng.randint(0, 9), dtype=rng.choice(["float32", "float16", "uint8"]),
        h=rng.choice([32, 64, 66]), w=rng.choice([32, 64]), batch=rng.choice(["1", "1, 4", "2"]),
        opset=rng.choice([11, 13, 17]),
        passes=" ".join(rng.sample(["reflect-pad-to-constant", "fuse-pad-into-conv",
                                    "fuse-pad-into-conv{max_pad=32}", "resize-to-nearest",
                                    "remove-identity"], rng.randint(0, 3))),
        aipp=aipp, samples=rng.randint(1, 4),
        dist=rng.choice(["uniform(-1, 1)", "normal(0, 1)", "randint(0, 5)", "bernoulli(0.5)"]),
        metric=rng.choice(["pixel_cosine", "cosine", "psnr"]), threshold=rng.choice([0.5, 20]))


def mutate(rng: random.Random, text: str) -> str:
    tokens = _TOKEN.findall(text)
    for _ in range(rng.choice([1, 1, 2, 3, 5])):
        solid = [i for i, t in enumerate(tokens) if not t.isspace()] or [0]
        i = rng.choice(solid)
        op = rng.random()
        if op < 0.2:
            del tokens[i]
        elif op < 0.35:
            tokens.insert(i, tokens[i])
        elif op < 0.5:
            j = rng.choice(solid)
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op < 0.65 and re.match(r"[-+]?\d", tokens[i] if tokens else ""):
            tokens[i] = rng.choice(HUGE)
        elif op < 0.72:
            depth = rng.choice([3, 33, 250, 1000])
            tokens.insert(i, "[" * depth + "1" + "]" * depth)
        elif op < 0.85:
            tokens.insert(i, rng.choice(ODD))
        else:
            tokens.insert(i, " " + rng.choice(WORDS) + " ")
        if not tokens:
            tokens = ["model"]
    return "".join(tokens)


def spec_case(rng: random.Random, seeds: list[str]) -> str:
    base = rng.choice(seeds) if rng.random() < 0.5 else generated_spec(rng)
    return mutate(rng, base)


def run_case(text: str, trace: bool = True) -> None:
    """What `gancc check` does with a spec file holding `text` (GanccError is a pass). The
    spec sits in the repository's specs/ folder's place, so its relative paths resolve as
    the seeds' do; `trace=False` leaves out the architecture's meta-device trace."""
    from gancc.aipp.resolve import resolve_model
    from gancc.spec import parse_text

    spec = parse_text(text, REPO / "specs" / "fuzz.gan")
    if trace:
        from gancc.checks import check_spec

        check_spec(spec)
        return
    from gancc.passes import factory
    from gancc.spec.model import PyTorchSource
    from gancc.stages import user_arch

    factory.load_spec(spec)
    for model in spec.models:
        if isinstance(model.source, PyTorchSource):
            user_arch.resolve(model)
        factory.make_passes(model, spec.source)
        resolve_model(model, model.atc.soc_version)
