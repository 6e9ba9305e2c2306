"""Pause Python's cyclic garbage collector while the diff builds or renders big results.

A 100k-node diff makes about a million small tuples, lists and dicts, none of them in a
reference cycle (reference counting frees them all). The collector does not know that: it
runs every 700 allocations and, as the objects age, rescans the whole growing heap, which
cost about a third of the indexing time and, after the diff, about 0.5 s of the text and
JSON renderings. Paused, it does not run; its next run (when the program goes on
allocating) looks at what is still alive then, once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collector off for the block (or, as a decorator, the call); restored after, also
    when the block raises. Nested uses are fine: only the outermost turns it back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
