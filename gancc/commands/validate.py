"""`gancc validate SPEC (--data DIR | --count N)`: the built model over a whole data set, on
Ray (gancc/validation/)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gancc.commands._common import add_data_arguments, one_model, seed
from gancc.errors import UsageError


def add_parser(sub: argparse._SubParsersAction) -> None:
    vp = sub.add_parser("validate", help="validate a built model over a whole data set (Ray)",
                        description="Run the reference, the final graph (build/<model>/"
                                    "<model>.onnx), its fp16 prediction and, for AIPP models, "
                                    "the emulated AIPP path on every sample of a data set, on a "
                                    "local Ray instance or a cluster; per-sample figures, the "
                                    "set's summary and the spec's `require` lines in "
                                    "validation.json and validation.html. Resumable: stored "
                                    "rows are not recomputed.")
    add_data_arguments(vp)
    source = vp.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, metavar="DIR",
                        help="the recipe's inputs (images, label maps) or a `gancc prep` folder")
    source.add_argument("--count", type=int, metavar="N",
                        help="N seeded samples from the spec's `data` lines")
    vp.add_argument("--attrs", type=Path, metavar="FILE",
                    help="stargan: list_attr_celeba.txt (default: DIR/list_attr_celeba.txt)")
    vp.add_argument("--workers", type=int, metavar="N",
                    help="Ray workers, one CPU each (default: all cores, or the cluster's CPUs)")
    vp.add_argument("--address", metavar="HOST:PORT",
                    help="an existing Ray cluster (`ray start --head`); default: a local instance")
    vp.add_argument("--out", type=Path, metavar="DIR",
                    help="validation.json, validation.html and the stored rows "
                         "(default: BUILD_DIR/<model>-validation, beside the build folder "
                         "a rebuild replaces)")
    vp.add_argument("--build-dir", type=Path, default=Path("build"), metavar="DIR",
                    help="where `gancc build` wrote the model (default: build)")
    vp.add_argument("--onnx", type=Path, metavar="FILE", help="the final graph, if elsewhere")
    vp.add_argument("--random-weights", type=seed, metavar="SEED",
                    help="the seed the model was built with by --random-weights")
    vp.add_argument("--fp16", action=argparse.BooleanOptionalAction, default=None,
                    help="the fp16 prediction per sample (default: when atc compiles in fp16)")
    vp.add_argument("--strict", action="store_true",
                    help="a `require` line must hold on the worst sample too, not only the mean")


def run(args) -> int:
    from gancc.validation import run as validation
    from gancc.validation.engine import EngineOptions
    from gancc.validation.samples import list_samples

    if args.count is not None and args.count < 1 or args.workers is not None and args.workers < 1:
        raise UsageError("--count and --workers must be at least 1")
    model = one_model(args)
    onnx = validation.final_graph(args.build_dir, model, args.onnx)
    out = (args.out or args.build_dir / f"{model.name}-validation").resolve()
    data = args.data.resolve() if args.data else None
    samples = list_samples(model, data, args.count, args.recipe,
                           args.attrs.resolve() if args.attrs else None)
    options = EngineOptions(args.spec.resolve(), model.name, onnx, args.workers, args.address,
                            args.random_weights, args.fp16)
    with _Progress() as progress:
        result = validation.validate_set(model, options, samples, out, args.strict,
                                         progress.start, progress.row)
    _print(result, out)
    for failure in result["summary"]["failures"]:
        print(f"error: {failure}", file=sys.stderr)
    return 0 if result["summary"]["passed"] else 1


class _Progress:
    """A rich progress bar on stderr: samples done, samples per second, time left."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = Progress(TextColumn("validate"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                            TextColumn("left"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=False)
        self.bar.__enter__()
        self.task = None
        return self

    def start(self, total: int, reused: int) -> None:
        import time

        self.t0, self.computed = time.perf_counter(), 0
        self.task = self.bar.add_task("validate", total=total, rate=f"{reused} stored")

    def row(self, row: dict, reused: bool) -> None:
        import time

        if not reused:
            self.computed += 1
        elapsed = time.perf_counter() - self.t0
        rate = f"{self.computed / elapsed:.2f} samples/s" if self.computed and elapsed else ""
        self.bar.update(self.task, advance=1, rate=rate)

    def __exit__(self, *exc):
        return self.bar.__exit__(*exc)


def _print(result: dict, out: Path) -> None:
    s = result["summary"]
    engine = result["engine"]
    print(f"{result['model']}: {s['samples']} samples ({result['reused']} reused) on "
          f"{engine['name']} {engine['version']}, {engine['workers']} worker(s) on "
          f"{engine['nodes']} node(s), reference {result['reference']}")
    for output, metric in s["headline"].items():
        f = s["figures"].get(f"{output}.final.{metric}")
        if f:
            print(f"  {output}: {metric} mean {f['mean']:.6f}, worst {f['worst']:.6f} "
                  f"({f['worst_id']})")
    for c in s["checks"]:
        print(f"  {c['output']}: {c['metric']} {c['require']}: mean {c['mean']:.6g} "
              f"{'ok' if c['passed_mean'] else 'FAILED'}, worst {c['worst']:.6g} "
              f"({c['worst_id']}) {'ok' if c['passed_worst'] else 'below'}")
    print(f"  {out / 'validation.json'}, {out / 'validation.html'}")
