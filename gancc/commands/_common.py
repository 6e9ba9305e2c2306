"""Helpers shared by several subcommands.

Kept small and cheap to import: everything heavy (onnx, the rewrite registry, the spec
parser, gancc.data_io) is imported inside the function that needs it.
"""

from __future__ import annotations

from pathlib import Path

from gancc.errors import GanccError


MAX_SEED = 2**64 - 1      # what torch.Generator.manual_seed takes, as a spec's random(seed=)


def seed(text: str) -> int:
    """The argparse type of `--random-weights SEED`: an integer from 0 to 2^64 - 1; anything
    else is a usage error (exit 2) naming the range."""
    import argparse

    shown = text if len(text) <= 24 else f"{text[:12]}...{text[-4:]}"
    problem = argparse.ArgumentTypeError(f"a seed is an integer from 0 to 2^64 - 1 "
                                         f"({MAX_SEED}), got '{shown}'")
    digits = text.strip().lstrip("+-").lstrip("0")
    if len(digits) > len(str(MAX_SEED)):      # int() refuses past 4,300 digits anyway
        raise problem
    try:
        value = int(text)
    except ValueError:
        raise problem from None
    if not 0 <= value <= MAX_SEED:
        raise problem
    return value


def load_user_rewrites(dirs: list[Path] | None) -> None:
    """Register the rewrites of each `--rewrites DIR` (build, check, passes, explain, opt)."""
    from gancc.passes import registry

    for folder in dirs or []:
        registry.load_dir(folder)


def spec_rules(spec_path: Path | None) -> tuple:
    """The rules of a spec named with --spec (none without one), its user code loaded."""
    if spec_path is None:
        return ()
    from gancc.passes.factory import load_spec
    from gancc.spec import parse_file

    spec = parse_file(spec_path)
    load_spec(spec)
    return spec.rules


def load_onnx(path: Path):
    """Read an ONNX file named on the command line; a missing or unreadable one is a GanccError."""
    import onnx

    try:
        return onnx.load(str(path))
    except FileNotFoundError:
        raise GanccError(f"ONNX file not found: {path}") from None
    except Exception as err:  # noqa: BLE001  (onnx raises many kinds for a bad file)
        raise GanccError(f"{path}: cannot read as ONNX: {err}") from None


def load_input_graph(path: Path, checker: bool = False):
    """An ONNX file a command works on (opt, explain, lint's structure aside), refused when it
    is no valid graph (empty, cyclic, dangling or duplicate names; with `checker`, anything
    onnx.checker rejects), so the input is blamed, not a rewrite. A GraphError names the
    file and the node."""
    from gancc.stages.lint import check_input_graph

    model = load_onnx(path)
    check_input_graph(model, path)
    if checker:
        import onnx

        try:
            onnx.checker.check_model(str(path))   # by path: also past protobuf's 2 GB
        except onnx.checker.ValidationError as err:
            from gancc.errors import GraphError

            raise GraphError(f"the input graph is not valid ONNX: {str(err).splitlines()[0]}",
                             model=str(path), hint="fix the file (onnx.checker.check_model "
                             "shows the same); gancc's rewrites start from a valid graph") from None
    return model


def add_data_arguments(cmd) -> None:
    """The SPEC, --model and --recipe arguments of prep / post / compare (gancc/data_io.py)."""
    from gancc.recipes import RECIPES

    cmd.add_argument("spec", type=Path)
    cmd.add_argument("--model", metavar="NAME", help="the model (default: the spec's only one)")
    cmd.add_argument("--recipe", choices=RECIPES,
                     help="the data convention (default: from the architecture)")


def one_model(args):
    """The model of `args.spec` that --model names, else the spec's only one."""
    from gancc.errors import did_you_mean
    from gancc.spec import parse_file

    spec = parse_file(args.spec)
    names = [m.name for m in spec.models]
    if args.model is None:
        if len(names) > 1:
            raise GanccError(f"{args.spec} has {len(names)} models: name one with --model",
                             f"its models: {', '.join(names)}")
        return spec.models[0]
    if args.model not in names:
        raise GanccError(f"{args.spec} has no model '{args.model}'",
                         did_you_mean(args.model, names) or f"its models: {', '.join(names)}")
    return spec.model(args.model)
