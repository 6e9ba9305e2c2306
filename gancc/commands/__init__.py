"""The subcommands of `gancc`, one module each: gancc/cli.py -> commands/<name>.py -> the
pipeline, stages, diff, data_io, ... that do the work.

Each module has `add_parser(sub)`, which adds its subparser to the `gancc` parser, and
`run(args) -> int`, which runs it and returns the exit status. Only argparse-level imports
happen at module level; the work's imports are inside `run`, so `gancc --help` stays fast and
torch is imported only by the commands that need it. Helpers shared by several commands live
in `_common.py`. Nothing here imports gancc.cli.
"""
