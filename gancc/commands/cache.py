"""`gancc cache info|clear`: show or empty the build cache."""

from __future__ import annotations

import argparse

from gancc.errors import GanccError


def add_parser(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("cache", help="show or empty the build cache",
                       description="The build cache keeps exports (the simplified graph before "
                                   "the rewrites), validation references and the figures "
                                   "of each final graph, keyed by the "
                                   "architecture, weights, shapes, opset and tool versions. "
                                   "Location: $GANCC_CACHE_DIR, else $XDG_CACHE_HOME/gancc, "
                                   "else ~/.cache/gancc.")
    k.add_argument("action", choices=("info", "clear"), help="info: where and how big, and "
                   "the leftovers of interrupted builds; clear: remove every entry and leftover")


def run(args) -> int:
    from gancc.cache import Cache, human_bytes

    cache = Cache()
    if args.action == "clear":
        try:
            entries, size, leftovers = cache.clear()
        except OSError as err:
            raise GanccError(f"cannot clear the cache at {cache.root}: {err}",
                             "check that folder's permissions") from None
        extra = f" and {leftovers} leftover temporary folder(s)" if leftovers else ""
        print(f"removed {entries} cache entr{'y' if entries == 1 else 'ies'}{extra} "
              f"({human_bytes(size)}) from {cache.root}")
        return 0
    info = cache.info()
    print(f"cache: {info['path']}")
    for kind, figures in info["kinds"].items():
        print(f"  {kind:<10} {figures['entries']:4d} entries  {human_bytes(figures['bytes'])}")
    left = info["leftovers"]
    print(f"  leftovers  {left['folders']:4d} folders  {human_bytes(left['bytes'])}"
          + ("  (of interrupted builds; the next build or `gancc cache clear` removes them)"
             if left["folders"] else ""))
    print(f"  total      {human_bytes(info['bytes'] + left['bytes'])}")
    return 0
