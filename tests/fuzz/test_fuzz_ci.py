"""The fuzzers' seeded CI subset (a few hundred cases, in-process): no case may end in
anything but a GanccError. The big campaign is `python -m tests.fuzz.run` (docs/testing.md)."""

from __future__ import annotations

import pytest

from tests.fuzz.run import make_case, run_one


@pytest.mark.parametrize("kind, count", [("spec", 200), ("aipp", 200)])
def test_seeded_fuzz_cases_never_end_in_an_internal_error(kind: str, count: int):
    # trace=False: the architectures' meta-device trace is what makes a spec case slow; the
    # campaign runs it (tests/fuzz/run.py without --no-trace)
    failures = {n: run_one(kind, make_case(kind, 2024, n), trace=False) for n in range(count)}
    failures = {n: error for n, error in failures.items() if error}
    assert not failures, "\n\n".join(f"case {n}:\n{e}" for n, e in list(failures.items())[:3])
