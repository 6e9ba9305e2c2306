"""Run the fuzzers: `python -m tests.fuzz.run --specs 10000 --aipp 2000 [--seed N] [--jobs J]`.

Cases are numbered and made from (seed, kind, number), so a run is reproducible and any
case can be made again. Chunks of cases run in child processes (`--worker`), so a case that
kills the process with a signal is found too (its chunk is rerun one case per process). A
case fails when it raises anything but a GanccError (gancc would exit 70) or dies by a
signal or hangs (a case gets CASE_SECONDS; a chunk, CHUNK_SECONDS plus 2 s a case, far
more than the cases take, then it is rerun one case per process); each failure is saved as a reproducer (the spec or config text, and a .txt with the
error) under --out. Exit status 1 when any case failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.fuzz import aipp_fuzz, spec_fuzz

REPO = Path(__file__).resolve().parents[2]
SUFFIX = {"spec": ".gan", "aipp": ".cfg"}


def make_case(kind: str, seed: int, number: int) -> str:
    rng = random.Random(f"{seed}:{kind}:{number}")
    if kind == "spec":
        return spec_fuzz.spec_case(rng, spec_fuzz.seed_specs())
    return aipp_fuzz.random_config(rng)


def run_one(kind: str, text: str, trace: bool = True) -> str | None:
    """None when the case passes, else the traceback of what it raised."""
    from gancc.errors import GanccError

    try:
        if kind == "spec":
            spec_fuzz.run_case(text, trace)
        else:
            aipp_fuzz.run_case(text)
    except GanccError:
        return None
    except BaseException:  # noqa: BLE001  (every other exception is the finding)
        return traceback.format_exc()
    return None


def worker(kind: str, seed: int, start: int, stop: int, trace: bool) -> list[dict]:
    failures = []
    for number in range(start, stop):
        error = run_one(kind, make_case(kind, seed, number), trace)
        if error:
            failures.append({"number": number, "error": error})
    return failures


CASE_SECONDS = 60
CHUNK_SECONDS = 120
TIMED_OUT = "timed out"


def _child(kind: str, seed: int, start: int, stop: int, trace: bool
           ) -> tuple[int | str, list[dict]]:
    argv = [sys.executable, "-m", "tests.fuzz.run", "--worker", kind, str(seed), str(start),
            str(stop)] + ([] if trace else ["--no-trace"])
    limit = CASE_SECONDS if stop - start == 1 else CHUNK_SECONDS + 2 * (stop - start)
    try:
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:     # a hang on bad input is a finding too
        return TIMED_OUT, []
    if proc.returncode == 0:
        return 0, json.loads(proc.stdout.splitlines()[-1])
    return proc.returncode, []


def run_chunk(kind: str, seed: int, start: int, stop: int, trace: bool) -> list[dict]:
    status, failures = _child(kind, seed, start, stop, trace)
    if status == 0:
        return failures
    found = []       # a child died (a signal, or worse) or hung: find the case, one per process
    for number in range(start, stop):
        status, one = _child(kind, seed, number, number + 1, trace)
        if status == TIMED_OUT:
            found.append({"number": number, "error": f"the case ran past {CASE_SECONDS} s"})
        elif status != 0:
            found.append({"number": number, "error": f"the process died (exit status {status})"})
        else:
            found += one
    return found


def save(out: Path, kind: str, seed: int, failure: dict) -> Path:
    text = make_case(kind, seed, failure["number"])
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{kind}-{digest}{SUFFIX[kind]}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    path.with_suffix(".txt").write_text(
        f"case {kind} seed={seed} number={failure['number']}\n\n{failure['error']}\n",
        encoding="utf-8")
    return path


def campaign(kind: str, count: int, seed: int, jobs: int, chunk: int, trace: bool,
             out: Path) -> list[Path]:
    ranges = [(s, min(s + chunk, count)) for s in range(0, count, chunk)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(lambda r: run_chunk(kind, seed, r[0], r[1], trace), ranges)
        failures = [f for chunk_failures in results for f in chunk_failures]
    return [save(out, kind, seed, f) for f in failures]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", type=int, default=1000, help="spec mutants to run")
    parser.add_argument("--aipp", type=int, default=500, help="AIPP configs to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--no-trace", action="store_true",
                        help="skip the architectures' meta-device trace (much faster)")
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fuzz" / "failures")
    parser.add_argument("--worker", nargs=4, metavar=("KIND", "SEED", "START", "STOP"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, seed, start, stop = args.worker
        print(json.dumps(worker(kind, int(seed), int(start), int(stop), not args.no_trace)))
        return 0
    bad = 0
    for kind, count in (("spec", args.specs), ("aipp", args.aipp)):
        saved = campaign(kind, count, args.seed, args.jobs, args.chunk, not args.no_trace,
                         args.out)
        bad += len(saved)
        print(f"{kind}: {count} cases, {len(saved)} internal error(s)")
        for path in saved:
            print(f"  reproducer: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
