"""Run every benchmark in bench/ and print one table (the one docs/performance.md records).

    python bench/run_all.py [--quick] [--only build,iterate,rewrite,diff,rules,pix2pixhd] [--markdown FILE]

Each benchmark runs as its own process (python bench/<file>), one after another, so they do
not compete for the CPU. A benchmark prints `RESULT {json}` lines, which are collected as
they are; for bench_diff.py and bench_pix2pixhd.py, which print their own report, the
figures are read from that report. A benchmark whose file is absent is listed as "not
available"; one that fails is listed with its exit status, and the others still run.

--quick runs smaller sizes (rewrite and rules 1k/10k, diff 10k, no Pix2pixHD) for a smoke test.
--markdown FILE also writes the table, with the machine it ran on, as Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _result_lines(out: str) -> list[dict]:
    rows = []
    for line in out.splitlines():
        if line.startswith("RESULT "):
            try:
                rows.append(json.loads(line[len("RESULT "):]))
            except ValueError:
                pass
    return rows


def _diff_rows(out: str, nodes: int) -> list[dict]:
    m = re.search(r"diff \(index \+ match \+ compare\): ([0-9.]+)s", out)
    if not m:
        return []
    seconds = float(m.group(1))
    ok = "result: exactly the planted changes" in out
    row = {"bench": "diff", "item": f"gancc diff, two {nodes // 1000}k-node graphs"
           + ("" if ok else " (WRONG RESULT)"), "gancc": seconds, "unit": "s",
           "baseline": None, "baseline_name": "none", "ratio": None}
    if nodes >= 100_000:
        row.update(target="<= 2 s", met=seconds <= 2.0 and ok)
    return [row]


def _pix2pixhd_rows(out: str, validated: bool = False) -> list[dict]:
    start = out.find("\n{")
    text = out[start + 1:] if start >= 0 else (out if out.startswith("{") else "")
    try:
        data = json.loads(text[: text.rfind("}") + 1])
    except ValueError:
        return []
    if "peak_rss_mb" not in data:
        return []
    ratio = data.get("peak_over_weights")
    row = {"bench": "pix2pixhd", "item": "full-size Pix2pixHD build: peak RSS vs weights",
           "gancc": data["peak_rss_mb"], "unit": "MiB", "baseline": data.get("weights_mb"),
           "baseline_name": "size of the weights", "ratio": ratio, "target": "<= 2.5x",
           "met": ratio is not None and ratio <= 2.5 and data.get("exit") == 0,
           "note": f"build {data.get('wall_s')} s, exit {data.get('exit')}"}
    if validated:   # information: onnxruntime alone needs ~2 GB at 1024x2048 (performance.md)
        row.update(item="full-size Pix2pixHD build with validation (1 sample at 1024x2048) "
                   "and fp16 foresight: peak RSS vs weights", target=None, met=None)
    return [row]


def benchmarks(quick: bool) -> list[tuple[str, str, list[str], object]]:
    """(name, file, arguments, parser of its output or None for RESULT lines)."""
    items = [
        ("build", "bench_build.py", ["--repeat", "1" if quick else "2"], None),
        ("iterate", "bench_iterate.py", ["--repeat", "1"], None),
        ("rewrite", "bench_rewrite.py", ["--sizes", "1000,10000" if quick else "1000,10000,100000"],
         None),
        ("diff", "bench_diff.py", ["--nodes", "10000"], lambda out: _diff_rows(out, 10_000)),
        ("rules", "bench_rules.py", ["--sizes", "1000,10000" if quick else "10000,100000"], None),
    ]
    if not quick:
        items += [
            ("diff", "bench_diff.py", ["--nodes", "100000"], lambda out: _diff_rows(out, 100_000)),
            ("pix2pixhd", "bench_pix2pixhd.py", ["--no-validate"], _pix2pixhd_rows),
            ("pix2pixhd", "bench_pix2pixhd.py", [], lambda out: _pix2pixhd_rows(out, True)),
        ]
    return items


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem = 0
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True).stdout.strip()
    except OSError:
        rev = ""
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": str(os.cpu_count()), "cpu": cpu, "memory": f"{mem:.0f} GiB",
            "python": platform.python_version(), "platform": platform.platform(),
            "commit": rev or "unknown", "load": _load()}


def _load() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def fmt(value, unit: str | None) -> str:
    if value is None:
        return "–"
    if unit == "s":
        return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"
    if unit:
        return f"{value:.0f} {unit}"
    return str(value)


def table(rows: list[dict], markdown: bool) -> str:
    header = ["benchmark", "gancc", "baseline", "ratio", "target", "met"]
    lines = []
    body = []
    for r in rows:
        ratio = r.get("ratio")
        base = fmt(r.get("baseline"), r.get("unit"))
        if r.get("baseline_name") and r.get("baseline") is not None:
            base += f" ({r['baseline_name']})"
        elif r.get("baseline_name") and r.get("baseline") is None:
            base = r["baseline_name"]
        met = r.get("met")
        body.append([r["item"] + (f" [{r['note']}]" if r.get("note") else ""),
                     fmt(r.get("gancc"), r.get("unit")), base,
                     "–" if ratio is None else
                     f"{ratio:.3f}x" if ratio < 0.1 else f"{ratio:.2f}x",
                     r.get("target") or "–", "–" if met is None else ("yes" if met else "NO")])
    if markdown:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in body]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
        for row in [header] + body:
            lines.append("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated: build, iterate, rewrite, diff, rules, pix2pixhd")
    parser.add_argument("--markdown", type=Path, metavar="FILE")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per benchmark")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None

    info = machine()
    print(f"gancc benchmarks on {info['cpus']} x {info['cpu']}, {info['memory']}, "
          f"Python {info['python']}, {info['date']}, commit {info['commit']}", flush=True)
    rows: list[dict] = []
    for name, file, extra, parse in benchmarks(args.quick):
        if only and name not in only:
            continue
        path = HERE / file
        if not path.is_file():
            rows.append({"bench": name, "item": f"{name} ({file}): not available", "gancc": None,
                         "baseline": None, "ratio": None})
            continue
        print(f"--- {file} {' '.join(extra)}", flush=True)
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, str(path), *extra], cwd=REPO, text=True,
                                  capture_output=True, timeout=args.timeout)
            out, rc = proc.stdout, proc.returncode
            if proc.stderr.strip():
                print(proc.stderr.rstrip()[-2000:], file=sys.stderr)
        except subprocess.TimeoutExpired:
            out, rc = "", f"timed out after {args.timeout} s"
        print(out.rstrip(), flush=True)
        print(f"--- {file}: {time.perf_counter() - start:.0f} s, exit {rc}", flush=True)
        found = _result_lines(out) or (parse(out) if parse else [])
        if not found:
            what = f"{name} ({file} {' '.join(extra)})".replace(" )", ")")
            found = [{"bench": name, "item": f"{what}: no result, exit {rc}",
                      "gancc": None, "baseline": None, "ratio": None}]
        rows += found

    print()
    print(table(rows, markdown=False))
    if args.markdown:
        text = (f"Machine: {info['cpus']} x {info['cpu']}, {info['memory']} RAM, "
                f"{info['platform']}, Python {info['python']}; run {info['date']} "
                f"(commit {info['commit']}); load average (1/5/15 min) {info['load']} at the "
                f"start, {_load()} at the end.\n\n" + table(rows, markdown=True) + "\n")
        args.markdown.write_text(text)
        print(f"\nwrote {args.markdown}")
    return 0 if all(r.get("met") is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
