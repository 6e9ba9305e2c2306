"""What the command line can change about a build (`gancc build --help` documents each)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuildOptions:
    out_root: Path = Path("build")
    random_seed: int | None = None       # --random-weights: seeded weights when none are found
    soc_version: str | None = None       # overrides the spec's atc soc_version
    atc_path: str | None = None          # atc binary; default: `atc` on PATH, if any
    run_atc: bool = True
    validate: bool = True
    samples: int | None = None
    verify_onnxruntime: bool = True      # load each rewritten graph in onnxruntime
    check_idempotent: bool = False       # each pass, rerun on its own output, finds nothing
    use_cache: bool = True               # --no-cache: neither read nor write the build cache
    cache_dir: Path | None = None        # default: $GANCC_CACHE_DIR or ~/.cache/gancc
    dump_dir: Path | None = None         # --dump-dir DIR: the graph after each stage, in DIR/<model>/
    dump_in_build: bool = False          # --dump-dir alone: in the build folder's ir/
    print_ir_after_change: bool = False  # print a diff of the IR after each stage that changed it
    fp16_foresight: bool | None = None   # None: on when atc compiles in fp16 (gancc.stages.predict)
    run_device: bool = False             # --run: run the .om with ais_bench/msame and compare
    ais_bench: str | None = None         # --ais-bench PATH
    msame: str | None = None             # --msame PATH
    run_soc: str | None = None           # --run-soc SOC: whose .om --run runs (several SoCs)
