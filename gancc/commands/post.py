"""`gancc post SPEC`: device output .bin files back into images (gancc/data_io.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gancc.commands._common import add_data_arguments, one_model


def add_parser(sub: argparse._SubParsersAction) -> None:
    po = sub.add_parser("post", help="turn device output .bin files into images",
                        description="Read ais_bench (<stem>_0.bin), msame (<stem>_output_0.bin) "
                                    "or legacy benchmark (<stem>_1.bin) outputs and write one "
                                    "image per sample, with each recipe's exact pixel "
                                    "conversion (GAN: also one grid image per batch file; "
                                    "StarGAN: each image's 5 translations side by side, and "
                                    "the recipe's grid per batch in OUT/batches/).")
    add_data_arguments(po)
    po.add_argument("--bins", type=Path, required=True, metavar="DIR")
    po.add_argument("--out", type=Path, required=True, metavar="DIR")
    po.add_argument("--inputs", type=Path, metavar="DIR",
                    help="the `gancc prep` folder (names samples after their source files)")
    po.add_argument("--onnx", type=Path, metavar="FILE",
                    help="also run this ONNX graph on the prepared inputs (needs --inputs) and "
                         "write its images, named as the device's, into OUT/onnx/ (the "
                         "recipes' --onnx_save reference images)")
    po.add_argument("--tool", choices=("ais_bench", "msame", "benchmark"),
                    help="default: from the file names")
    po.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                    help="float16 when atc ran with --output_type=FP16")
    po.add_argument("--format", choices=("png", "jpg"), default="png",
                    help="png (default: lossless, the recipe's pixels exactly) or jpg (as the "
                         "recipes save; JPEG is lossy)")


def run(args) -> int:
    from gancc.data_io import post

    model = one_model(args)
    written = post(model, args.bins, args.out, args.tool, args.dtype, args.recipe, args.inputs,
                   args.format, args.onnx)
    print(f"{model.name}: wrote {len(written)} image(s) to {args.out}/")
    return 0
