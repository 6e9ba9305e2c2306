"""`gancc prep SPEC`: a recipe's input .bin files for ais_bench / msame (gancc/data_io.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancc.commands._common import add_data_arguments, one_model
from gancc.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    pr = sub.add_parser("prep", help="write input .bin files for ais_bench / msame",
                        description="Preprocess images / label maps (or draw seeded latents) into "
                                    "raw little-endian .bin files, one per batch, in one folder "
                                    "per model input, plus manifest.json.")
    add_data_arguments(pr)
    pr.add_argument("--input", type=Path, action="append", metavar="PATH", default=[],
                    help="an image / label map, or a folder of them (repeatable)")
    pr.add_argument("--out", type=Path, required=True, metavar="DIR")
    pr.add_argument("--batch", type=int, metavar="N", help="samples per file (an atc batch size)")
    pr.add_argument("--count", type=int, default=1, metavar="N",
                    help="latent recipes (gan, bigbigan): how many files (default 1)")
    pr.add_argument("--seed", type=int, default=0, help="latent recipes: the seed (default 0)")
    pr.add_argument("--attrs", type=Path, metavar="FILE",
                    help="stargan: list_attr_celeba.txt for the images' own attributes")
    pr.add_argument("--instances", type=Path, metavar="DIR",
                    help="pix2pixhd: folder of *_instanceIds.png (default: beside the labels)")
    pr.add_argument("--legacy-seed", action="store_true",
                    help="latent recipes: numpy's legacy np.random.seed(SEED) stream, as the "
                         "recipes draw (normal / uniform, randint), to reproduce their bins")
    pr.add_argument("--split", choices=("test",),
                    help="stargan: upstream's test set (the --attrs lines shuffled with seed "
                         "1234, the first 1999) in its order, files named <cnt>.bin as the recipe")
    pr.add_argument("--dvpp", action="store_true",
                    help="AIPP models: also write the recipe's JPEG thumbnails (<input>_jpeg/) and "
                         "<input>.info for the legacy benchmark tool's -useDvpp=true")


def run(args) -> int:
    from gancc.data_io import PrepOptions, prep

    model = one_model(args)
    if args.batch is not None and args.batch < 1 or args.count < 1:
        raise UsageError("--batch and --count must be at least 1")
    manifest = prep(model, PrepOptions(args.input, args.out, args.batch, args.count, args.seed,
                                       args.recipe, args.attrs, args.instances, args.dvpp,
                                       args.legacy_seed, args.split))
    for warning in manifest["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{model.name} ({manifest['recipe']}): wrote {len(manifest['files'])} file(s) of batch "
          f"{manifest['batch']} per input under {args.out}/ "
          f"({', '.join(f'{n}/' for n in manifest['inputs'])}), manifest.json")
    return 0
