"""Warnings about atc's `--auto_tune_mode` for the SoCs a spec compiles for.

What the Ascend docs say (docs/ascend.md, "auto_tune_mode", has the pages):
- the CANN 5.0.4 atc option page for `--auto_tune_mode` ("RL", "GA" or "RL,GA") lists two
  product lines: Atlas 200/300/500 inference (soc_version Ascend310) and Atlas training
  (the Ascend910 family); it needs an NPU on the machine that runs atc, and cannot be combined
  with `--op_bank_path`;
- from CANN 6.0 the Auto Tune guide says the tool will expire in later releases and points to
  AOE (the `aoe` tool), which replaces it.
So the option is written as the spec says (the generation-1 GAN recipe used it on Ascend310),
with a warning per SoC outside those two lines, where atc may reject it or ignore it.
"""

from __future__ import annotations

from gancc.spec.model import ModelSpec

# soc_version values of the two product lines the atc page lists (docs/ascend.md, §2.2)
AUTO_TUNE_SOCS = ("Ascend310", "Ascend910", "Ascend910A", "Ascend910B", "Ascend910ProA",
                  "Ascend910ProB", "Ascend910PremiumA")


def auto_tune_batches(model: ModelSpec) -> list[str]:
    """Where the spec asks for auto_tune_mode: "every batch size", or "batch 1, 16"."""
    where = ["every batch size"] if model.atc.auto_tune_mode else []
    for block in model.atc.per_batch:
        if dict(block.options).get("auto_tune_mode"):
            where.append("batch " + ", ".join(map(str, block.batches)))
    return where


def tuning_warnings(model: ModelSpec, socs: tuple[str | None, ...]) -> list[str]:
    """One warning per SoC the atc docs do not list for --auto_tune_mode."""
    where = auto_tune_batches(model)
    if not where:
        return []
    return [f"model '{model.name}': auto_tune_mode ({'; '.join(where)}) on {soc}: the atc docs "
            "list it for Ascend310 and the Ascend910 training line only (CANN 5.x), and CANN "
            "6.0 on replaces Auto Tune with AOE; atc for this SoC may reject or ignore it "
            "(tune with `aoe` instead)"
            for soc in socs if soc is not None and soc not in AUTO_TUNE_SOCS]
