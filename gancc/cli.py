"""The `gancc` command line.

    gancc build SPEC      export -> simplify -> rewrite -> atc commands -> validate -> report
    gancc check SPEC      check a spec (syntax, architectures, rewrites) without building
    gancc passes [NAME]   list the rewrites, or describe one
    gancc opt IN -o OUT --passes PIPELINE   run a textual rewrite pipeline on any ONNX file
    gancc explain REWRITE IN.onnx   what a rewrite does to each candidate node, and why not
    gancc prep / post / compare SPEC ...     device input bins, output images, the metric
    gancc cache info|clear   show or empty the build cache (exports, validation references)
    gancc diff A [B]      structural diff of two graphs or build stages (text, --json, --html)

User mistakes end in a message naming the file and line (or node, or key) and what to do,
with exit status 1; usage errors exit 2. A traceback is printed only for gancc's own bugs
when GANCC_DEBUG=1 is set.

This module is only the entry point: the top-level parser, the order of the commands, and
the turning of errors into messages and exit statuses. Each command lives in
gancc/commands/<name>.py (`add_parser(sub)` and `run(args)`), which calls into the pipeline,
stages, diff, ... ; nothing there imports this module.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback

from gancc import __version__
from gancc.commands import (
    aipp,
    build,
    cache,
    check,
    compare,
    diff,
    explain,
    lint,
    opt,
    passes,
    post,
    prep,
    validate,
)
from gancc.errors import GanccError, UsageError, did_you_mean
from gancc.fsutil import output_problem

EPILOG = """examples:
  gancc build specs/cyclegan.gan                 build every model in the spec
  gancc build specs/cyclegan.gan --model cyclegan_g_a -o out/
  gancc build specs/cyclegan.gan --random-weights   use seeded weights if a checkpoint is missing
  gancc check specs/cyclegan.gan
  gancc passes fuse-pad-into-conv
  gancc explain fuse-pad-into-conv model.onnx    why each Pad was fused or not
  gancc explain --spec specs/my.gan my-rule model.onnx   the same for a spec rule
  gancc opt model.onnx --passes 'reflect-pad-to-constant,fuse-pad-into-conv' -o out.onnx
  gancc build specs/cyclegan.gan --no-cache      rebuild without reading or writing the cache
  gancc cache clear
  gancc build specs/cyclegan.gan --dump-dir --print-ir-after-change
  gancc diff build/cyclegan_g_a:reflect-pad-to-constant   what that pass changed
  gancc diff a.onnx b.onnx --html diff.html
  gancc prep specs/cyclegan.gan --model cyclegan_g_a --input testA/ --out bins/
  gancc post specs/cyclegan.gan --model cyclegan_g_a --bins result/Abs1 --inputs bins/ --out images/
  gancc compare specs/cyclegan.gan --model cyclegan_g_a --bins result/Abs1 --inputs bins/
"""

# The subcommands, in the order `gancc --help` lists them.
COMMANDS = {"build": build, "lint": lint, "aipp": aipp, "check": check, "passes": passes,
            "explain": explain, "opt": opt, "cache": cache, "diff": diff,
            "prep": prep, "post": post, "compare": compare, "validate": validate}


class _Parser(argparse.ArgumentParser):
    """argparse, with a did-you-mean hint on an invalid choice: `gancc bild` suggests build.
    Subparsers are made of the parent's class, so every command and action gets it."""

    def error(self, message: str):
        found = re.search(r"invalid choice: '?([^'\s]*)'? \(choose from (.*)\)", message)
        if found:
            choices = [c.strip(" '\"") for c in found.group(2).split(",")]
            hint = did_you_mean(found.group(1), choices)
            if hint:
                message += f"\nhint: {hint}"
        super().error(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gancc", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compile GAN generators from PyTorch weights (or ONNX) to atc-ready ONNX, "
                    "atc commands and AIPP configs for Huawei Ascend NPUs, validated on the CPU.")
    parser.add_argument("--version", action="version", version=f"gancc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


# The exit status of a command whose output went into a closed pipe (`gancc ... | head -1`):
# 128 + SIGPIPE, what a shell reports for any tool the closed pipe stopped. Quietly: the
# reader chose to stop reading.
CLOSED_PIPE = 141


def _closed_pipe() -> int:
    # stdout's buffer still holds what could not be written: point stdout at /dev/null so
    # that the flush at interpreter exit does not raise (and print) the same error again
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return CLOSED_PIPE


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    handler = COMMANDS[args.command].run
    try:
        status = handler(args)
        sys.stdout.flush()      # a closed pipe shows here, not in the interpreter's exit
        return status
    except BrokenPipeError:
        return _closed_pipe()
    except GanccError as err:
        print(err.render(), file=sys.stderr)
        return 2 if isinstance(err, UsageError) else 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        # a file any command writes (opt -o, diff --html, ...) on a full or read-only disk,
        # or a file in a folder's place: the environment's problem, not gancc's
        problem = output_problem(err)
        if problem is None:
            return _internal_error(err)
        print(f"error: {problem}\nhint: {problem.hint}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001  (a gancc bug, not a user mistake)
        return _internal_error(err)


def _internal_error(err: Exception) -> int:
    """A gancc bug, not a user mistake: exit 70 (with the traceback under GANCC_DEBUG=1)."""
    if os.environ.get("GANCC_DEBUG"):
        traceback.print_exc()
    print(f"internal error: {type(err).__name__}: {err}\n"
          "this is a bug in gancc; rerun with GANCC_DEBUG=1 for the traceback and report it",
          file=sys.stderr)
    return 70
