"""Pause Python's cyclic garbage collector while a large, cycle-free structure is built.

A rewrite pass over a 100k-node graph, or a diff of two such graphs, makes hundreds of
thousands of small, long-lived objects (indexes, node wrappers, tuples, dicts), none of them
in a reference cycle: reference counting frees them all. The collector does not know that: it
runs every 700 allocations and, as the objects age, rescans the whole growing heap, which
cost as much as the pass itself, and about a third of a diff's indexing time. Paused, it does
not run; its next run (when the program goes on allocating) looks at what is still alive
then, once.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collector off for the block (or, as a decorator `@gc_paused()`, the call); restored
    after, also when the block raises. Nested uses are fine: only the outermost turns it
    back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
