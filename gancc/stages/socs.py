"""The `--soc_version` values ATC knows (/work/shared/reference/ascend.md §2.2, from the SoC
capability table of CANN's graph engine): a value atc does not know fails only on the Ascend
host, after the whole build, so gancc refuses it up front, with the nearest known name."""

from __future__ import annotations

import difflib
import re

KNOWN_SOC_VERSIONS = (
    "Ascend310",
    "Ascend310P1", "Ascend310P3", "Ascend310P5", "Ascend310P7",
    "Ascend310B1", "Ascend310B",
    "Ascend910", "Ascend910A", "Ascend910B", "Ascend910ProA", "Ascend910ProB",
    "Ascend910PremiumA",
    "Ascend910B1", "Ascend910B2", "Ascend910B2C", "Ascend910B3", "Ascend910B4", "Ascend910B4-1",
    "Ascend910_9391", "Ascend910_9381", "Ascend910_9392", "Ascend910_9382", "Ascend910_9372",
    "Ascend910_9362",
    "Ascend035",
)
# the 950 family's values are `Chip_NPU` names (e.g. Ascend910_95xx): a pattern, not a list
_FAMILY_950 = re.compile(r"^Ascend(950\w*|910_95\w+)$")


def unknown_soc(value: str) -> tuple[str, str] | None:
    """(message, hint) when `value` is not a soc_version atc knows, else None."""
    if value in KNOWN_SOC_VERSIONS or _FAMILY_950.match(value):
        return None
    by_case = [k for k in KNOWN_SOC_VERSIONS if k.lower() == value.lower()]
    if by_case:
        return (f"soc_version '{value}' is not a known Ascend SoC",
                f"did you mean '{by_case[0]}'? (soc_version is case-sensitive)")
    close = difflib.get_close_matches(value, KNOWN_SOC_VERSIONS, n=1, cutoff=0.75)
    hint = (f"did you mean '{close[0]}'? " if close else "") + \
        "known: Ascend310, Ascend310P1/P3/P5/P7, Ascend310B1, Ascend910, Ascend910B1-B4, ... " \
        "(\"Ascend\" + the Name `npu-smi info` prints on the target)"
    return f"soc_version '{value}' is not a known Ascend SoC", hint
