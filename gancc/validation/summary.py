"""The set's figures from its per-sample rows, and the spec's `require` lines applied to them.

A row (validation.json's `samples`, and what `gancc compare` reports per file) is
`{"id", "source", "outputs": {output: {group: {figure: value}}}}`, group one of `final`,
`border`, `fp16`, `aipp` (compare: `device`). Each figure `output.group.figure` is summarised
as its mean, min, max and the worst sample (lowest for a similarity, highest for an error).
A `require` line holds for the set when the mean holds; its worst sample is reported beside
it, and fails the run too with `--strict`.
"""

from __future__ import annotations

import math

# figures where more is better: the worst sample is the lowest
HIGHER_IS_BETTER = {"pixel_cosine", "cosine", "psnr", "ssim", "border_pixel_cosine"}


def flat_figures(row: dict) -> dict[str, float]:
    out = {}
    for output, groups in row["outputs"].items():
        for group, figures in groups.items():
            for name, value in figures.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    out[f"{output}.{group}.{name}"] = float(value)
    return out


def summarise(rows: list[dict]) -> dict[str, dict]:
    """figure key -> {mean, min, max, worst, worst_id, count}."""
    values: dict[str, list[tuple[float, str]]] = {}
    for row in rows:
        for key, value in flat_figures(row).items():
            values.setdefault(key, []).append((value, row["id"]))
    out = {}
    for key, pairs in values.items():
        numbers = [v for v, _ in pairs]
        higher = key.rsplit(".", 1)[1] in HIGHER_IS_BETTER
        worst = min(pairs) if higher else max(pairs)
        finite = [v for v in numbers if math.isfinite(v)]
        mean = (sum(numbers) / len(numbers)) if len(finite) == len(numbers) else (
            math.inf if any(v == math.inf for v in numbers) and higher else math.nan)
        out[key] = {"mean": mean, "min": min(numbers), "max": max(numbers),
                    "worst": worst[0], "worst_id": worst[1], "count": len(numbers)}
    return out


def headline(channels: int) -> str:
    """The recipes' criterion for an output: pixel_cosine, or cosine where the output has one
    channel (there pixel_cosine is sign agreement: a scaled output still scores 1)."""
    return "pixel_cosine" if channels > 1 else "cosine"


def apply_checks(stats: dict, outputs: list[str], checks: list, group: str = "final",
                 strict: bool = False) -> tuple[list[dict], list[str]]:
    """Each check (a spec Requirement, or a data_io.Check) on each output it names, over the
    set: the mean decides; the worst sample is reported, and decides too when `strict`."""
    results, failures = [], []
    for check in checks:
        where = getattr(check, "where", None) or str(check.span)
        for name in [check.output] if check.output else outputs:
            key = f"{name}.{group}.{check.metric}"
            if key not in stats:
                failures.append(f"output '{name}': no {check.metric} figure to check ({where})")
                continue
            s = stats[key]
            worst = s["min"] if check.compare in (">=", ">") else s["max"]
            mean_ok, worst_ok = check.holds(s["mean"]), check.holds(worst)
            ok = mean_ok and (worst_ok or not strict)
            results.append({"output": name, "metric": check.metric,
                            "require": f"{check.compare} {check.threshold:g}", "where": where,
                            "mean": s["mean"], "worst": worst, "worst_id": s["worst_id"],
                            "passed_mean": mean_ok, "passed_worst": worst_ok, "passed": ok})
            if not mean_ok:
                failures.append(f"output '{name}': mean {check.metric} = {s['mean']:.6g} over "
                                f"{s['count']} samples, required {check.compare} "
                                f"{check.threshold:g} ({where})")
            elif strict and not worst_ok:
                failures.append(f"output '{name}': {check.metric} = {worst:.6g} on sample "
                                f"{s['worst_id']}, required {check.compare} "
                                f"{check.threshold:g} ({where}; --strict)")
    return results, failures


def worst_samples(rows: list[dict], key: str, count: int = 3) -> list[dict]:
    """The `count` rows with the worst value of figure `key`."""
    higher = key.rsplit(".", 1)[1] in HIGHER_IS_BETTER
    scored = [(flat_figures(r).get(key), r) for r in rows]
    scored = [(v, r) for v, r in scored if v is not None]
    scored.sort(key=lambda vr: vr[0], reverse=not higher)
    return [r for _, r in scored[:count]]


def rows_from_compare(summary: dict) -> list[dict]:
    """`gancc compare`'s per-file figures (data_io.compare) as rows of this module: one per
    prepared file, the device's figures in group `device`."""
    rows: dict[str, dict] = {}
    for output, result in summary["outputs"].items():
        for r in result["rows"]:
            row = rows.setdefault(r["file"], {"id": r["file"], "source": r["file"], "outputs": {}})
            row["outputs"][output] = {"device": {k: v for k, v in r.items() if k != "file"}}
    return list(rows.values())
