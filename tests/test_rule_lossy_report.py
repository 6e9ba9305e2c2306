"""A `lossy` pattern rule's effect is reported by the build exactly as a lossy Python
rewrite's: the same report.json pass entry and validation figures (border band included),
and report.html names it among the lossy rewrites; an `exact` rule is not named there."""

from __future__ import annotations

import json
from pathlib import Path

from gancc.cli import main
from tests.conftest import dedent

SPEC = dedent("""
    %(rules)s
    model tiny {
        source pytorch {
            arch resnet_generator(input_nc=3, output_nc=3, ngf=4, n_blocks=1)
            weights "absent.pth" else random(seed=0)
        }
        input img: float32[N, 3, 32, 32] batch 1
        output out
        rewrite {
            %(first)s
            %(second)s
        }
        atc {
            soc_version Ascend310P3
            output "Tiny"
        }
        validate {
            samples 1
            seed 0
            data img uniform(-1, 1)
        }
    }
""")
RULES = dedent("""
    rule reflect-pad-to-constant-dsl "Reflect padding becomes zero padding" lossy {
        match Pad(x, pads, v?) as p
        where p.mode == "reflect"
        => Pad(x, pads, **p, mode="constant")
    }
    rule fuse-pad-into-conv-dsl exact {
        match Conv(Pad(x, pads, v?) as p, w, b?) as c
        where p.mode == "constant" and default(v, 0) == 0 and not is_output(p)
        where readers(p) == readers(p, "Conv") and c.auto_pad == "NOTSET"
        let r = len(pads) // 2
        where r >= 3 and pads >= 0 and pads[0:2] == [0, 0] and pads[r:r + 2] == [0, 0]
        let fused = default(c.pads, zeros(2 * r - 4)) + (pads[2:r] ++ pads[r + 2:])
        where max(fused) <= 255
        => Conv(x, w, b?, **c, pads=fused)
    }
""")


def _build(folder: Path, rules: str, first: str, second: str) -> Path:
    folder.mkdir()
    spec = folder / "tiny.gan"
    spec.write_text(SPEC % {"rules": rules, "first": first, "second": second})
    assert main(["build", str(spec), "-o", str(folder / "out"), "--no-atc", "--no-cache",
                 "-q"]) == 0
    return folder / "out" / "tiny"


def _entry(entry: dict) -> dict:
    """A pass entry of report.json without its name and time."""
    return {k: v for k, v in entry.items() if k not in ("pass", "seconds")}


def test_a_lossy_rule_is_reported_as_a_lossy_python_rewrite(tmp_path: Path):
    python = _build(tmp_path / "python", "", "reflect-pad-to-constant", "fuse-pad-into-conv")
    rules = _build(tmp_path / "rules", RULES, "reflect-pad-to-constant-dsl",
                   "fuse-pad-into-conv-dsl")
    by_python = json.loads((python / "report.json").read_text())
    by_rules = json.loads((rules / "report.json").read_text())
    assert [p["pass"] for p in by_rules["passes"]] == ["reflect-pad-to-constant-dsl",
                                                       "fuse-pad-into-conv-dsl"]
    lossy_python, lossy_rule = by_python["passes"][0], by_rules["passes"][0]
    assert _entry(lossy_rule) == _entry(lossy_python) and lossy_rule["matches"] > 0
    # the measured effect: the same figures, the border band (where reflect -> zero shows)
    # included, as the two graphs compute the same numbers
    validation_python, validation_rules = by_python["validation"], by_rules["validation"]
    assert validation_rules["final_vs_reference"] == validation_python["final_vs_reference"]
    band = validation_rules["border_band"]["final_vs_reference"]["out"]
    assert band == validation_python["border_band"]["final_vs_reference"]["out"]
    assert band["border"]["mean_abs"] > band["interior"]["mean_abs"]    # the padding's effect
    assert "Lossy rewrites ran (reflect-pad-to-constant)" in (python / "report.html").read_text()
    # the lossy rule is named as the lossy rewrite was, and the exact rule is not
    assert "Lossy rewrites ran (reflect-pad-to-constant-dsl);" in (rules / "report.html").read_text()
