"""Spec templates: `template NAME(params) { ... }` and `model NAME = NAME(args)`. A model made
from a template is the model written out (same artifacts, byte for byte); errors point at the
line that caused them and name the other place; `gancc check --expand` prints a spec that
parses back to the same models."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from gancc.cli import main
from gancc.errors import SpecError, Span
from gancc.spec import parse_text
from gancc.spec.parser import expand_text
from tests.conftest import REPO

# specs/cyclegan.gan as it was before templates: two 30-line blocks, three names apart
CYCLEGAN_WRITTEN_OUT = """\
model cyclegan_g_a {
    source pytorch {
        arch resnet_generator(input_nc=3, output_nc=3, ngf=64, n_blocks=9,
                              norm="instance", padding_type="reflect")
        weights "checkpoints/maps_cyclegan/latest_net_G_A.pth" else random(seed=0)
    }
    input img_sat_maps: float32[N, 3, 256, 256] batch 1, 16
    output maps
    opset 11
    rewrite {
        reflect-pad-to-constant
        fuse-pad-into-conv
    }
    atc {
        soc_version Ascend310P3
        output "CycleGAN_Ga"
        log error
        out_nodes maps
    }
    validate {
        reference pytorch
        samples 2
        seed 0
        data img_sat_maps uniform(-1, 1)
        require pixel_cosine >= 0.85
    }
}

model cyclegan_g_b {
    source pytorch {
        arch resnet_generator(input_nc=3, output_nc=3, ngf=64, n_blocks=9,
                              norm="instance", padding_type="reflect")
        weights "checkpoints/maps_cyclegan/latest_net_G_B.pth" else random(seed=1)
    }
    input img_maps_sat: float32[N, 3, 256, 256] batch 1, 16
    output sat
    opset 11
    rewrite {
        reflect-pad-to-constant
        fuse-pad-into-conv
    }
    atc {
        soc_version Ascend310P3
        output "CycleGAN_Gb"
        log error
        out_nodes sat
    }
    validate {
        reference pytorch
        samples 2
        seed 0
        data img_maps_sat uniform(-1, 1)
        require pixel_cosine >= 0.85
    }
}
"""


def without_spans(obj):
    """A spec object as plain tuples, every Span left out: what the build reads of it."""
    if isinstance(obj, Span):
        return None
    if dataclasses.is_dataclass(obj):
        return tuple((f.name, without_spans(getattr(obj, f.name)))
                     for f in dataclasses.fields(obj)
                     if f.name not in ("span", "spans", "made_from"))   # where, not what
    if isinstance(obj, (tuple, list)):
        return tuple(without_spans(x) for x in obj)
    if isinstance(obj, dict):
        return tuple((k, without_spans(v)) for k, v in obj.items())
    return obj


def shipped_cyclegan() -> str:
    return (REPO / "specs" / "cyclegan.gan").read_text(encoding="utf-8")


def test_shipped_cyclegan_uses_a_template_and_reads_as_written_out():
    text = shipped_cyclegan()
    assert "template cyclegan_generator(" in text and text.count("source pytorch") == 1
    path = REPO / "specs" / "cyclegan.gan"
    made = parse_text(text, path).models
    written = parse_text(CYCLEGAN_WRITTEN_OUT, path).models
    assert [m.name for m in made] == ["cyclegan_g_a", "cyclegan_g_b"]
    assert [without_spans(m) for m in made] == [without_spans(m) for m in written]
    # a model's span is its use; a statement's is the template's line
    assert made[1].span.line == text.split("\n").index(
        next(ln for ln in text.split("\n") if ln.startswith("model cyclegan_g_b"))) + 1


def test_expand_parses_back_to_the_same_models(capsys):
    path = REPO / "specs" / "cyclegan.gan"
    assert main(["check", str(path), "--expand"]) == 0
    captured = capsys.readouterr()
    assert "no problems found" in captured.err
    assert "template cyclegan_generator(" not in captured.out
    assert "model cyclegan_g_b {" in captured.out and "= cyclegan_generator(" not in captured.out
    assert 'weights "checkpoints/maps_cyclegan/latest_net_G_B.pth" else random(seed=1)' \
        in captured.out
    again = parse_text(captured.out, path).models
    assert [without_spans(m) for m in again] == \
        [without_spans(m) for m in parse_text(shipped_cyclegan(), path).models]
    assert expand_text(CYCLEGAN_WRITTEN_OUT) == CYCLEGAN_WRITTEN_OUT     # nothing to expand


TEMPLATE = """\
template gen(name, seed=0, size=64, om="Gen") {
    source pytorch {
        arch resnet_generator(input_nc=3, output_nc=3, ngf=8, n_blocks=2)
        weights "w/${name}.pth" else random(seed=seed)
    }
    input img: float32[N, 3, size, size] batch 1
    output out
    atc { soc_version Ascend310P3  output om  log error }
}
"""


def parse_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_text(text, "t.gan")
    return info.value


def test_defaults_dims_and_strings():
    spec = parse_text(TEMPLATE + 'model a = gen(name="A")\nmodel b = gen("B", 3, size=32)\n')
    a, b = spec.models
    assert a.source.weights.path.name == "A.pth" and a.source.weights.fallback_seed == 0
    assert b.source.weights.fallback_seed == 3 and b.inputs[0].shape == ("N", 3, 32, 32)
    assert a.atc.output == "Gen"


def test_error_in_the_template_names_the_use():
    err = parse_error(TEMPLATE.replace("log error", "lgo error") + 'model a = gen(name="A")\n')
    assert err.span.line == 8 and "unknown key 'lgo'" in err.message
    text = err.render()
    assert "t.gan:8:" in text and "t.gan:10:1: note: in model 'a', made from template 'gen'" \
        in text


def test_error_at_the_use_names_the_template():
    err = parse_error(TEMPLATE + 'model a = gen(name="A", size=-3)\n')
    assert err.span.line == 10              # the argument, not the template's dim
    assert "shape dimension" in err.message
    assert "t.gan:6:" in err.render() and "note: the parameter is used here" in err.render()
    err = parse_error(TEMPLATE + 'model a = gen(name="A", sede=1)\n')
    assert err.span.line == 10 and err.hint == "did you mean 'seed'?"
    err = parse_error(TEMPLATE + 'model a = gen(seed=1)\n')
    assert "needs argument(s) name" in err.message
    err = parse_error(TEMPLATE + 'model a = gne(name="A")\n')
    assert err.hint == "did you mean 'gen'?"
    err = parse_error(TEMPLATE.replace("${name}", "${nmae}") + 'model a = gen(name="A")\n')
    assert err.span.line == 4 and err.hint == "did you mean 'name'?"
    assert "t.gan:10:1: note: in model 'a'" in err.render()


def test_two_models_from_one_template_still_need_distinct_names():
    err = parse_error(TEMPLATE + 'model a = gen(name="A")\nmodel a = gen(name="B")\n')
    assert "model name 'a' is used twice" in err.message and err.span.line == 11


AIPP_BLOCK = """
    aipp img {
        input_format YUV420SP_U8  csc_switch true
        src_image_size_w 128  src_image_size_h 128  crop true
        load_start_pos_w 16  load_start_pos_h 16  crop_size_w 64  crop_size_h 64
        matrix_r0c0 256  matrix_r0c2 359  input_bias_1 128
    }
"""
SMALL_WRITTEN = """\
model small_%(n)s {
    source pytorch {
        arch resnet_generator(input_nc=3, output_nc=3, ngf=8, n_blocks=2)
        weights "weights/%(n)s.pth" else random(seed=%(seed)s)
    }
    input img: float32[N, 3, 64, 64] batch 1, 2
    output out
    rewrite { reflect-pad-to-constant  fuse-pad-into-conv }
%(aipp)s    atc { soc_version Ascend310P3  output "Small_%(n)s"  out_nodes out }
}
"""
SMALL_TEMPLATE = """\
template small(n, seed) {
    source pytorch {
        arch resnet_generator(input_nc=3, output_nc=3, ngf=8, n_blocks=2)
        weights "weights/${n}.pth" else random(seed=seed)
    }
    input img: float32[N, 3, 64, 64] batch 1, 2
    output out
    rewrite { reflect-pad-to-constant  fuse-pad-into-conv }
%(aipp)s    atc { soc_version Ascend310P3  output "Small_${n}"  out_nodes out }
}
model small_a = small(n=a, seed=0)
model small_b = small(n=b, seed=1)
"""


def build_artifacts(folder: Path, text: str, *extra: str) -> dict[str, dict[str, str]]:
    """Build `text` as folder/spec.gan; per model: atc.sh, aipp.cfg and the .onnx sha256."""
    folder.mkdir()
    (folder / "spec.gan").write_text(text, encoding="utf-8")
    out = folder / "out"
    assert main(["build", str(folder / "spec.gan"), "-o", str(out), "--no-atc",
                 "--no-validate", "-q", *extra]) == 0
    found = {}
    for model in sorted(p.parent.name for p in out.glob("*/report.json")):
        report = json.loads((out / model / "report.json").read_text())
        aipp = out / model / "aipp.cfg"
        found[model] = {
            "atc.sh": (out / model / "atc.sh").read_text().replace(str(folder), "<dir>"),
            "aipp.cfg": aipp.read_text().replace(str(folder), "<dir>") if aipp.exists() else "",
            "onnx": report["final"]["sha256"]}
    return found


def test_small_template_builds_byte_identical_artifacts(tmp_path: Path):
    written = "\n".join(SMALL_WRITTEN % {"n": n, "seed": s, "aipp": AIPP_BLOCK}
                        for n, s in (("a", 0), ("b", 1)))
    before = build_artifacts(tmp_path / "written", written)
    after = build_artifacts(tmp_path / "template", SMALL_TEMPLATE % {"aipp": AIPP_BLOCK})
    assert list(before) == ["small_a", "small_b"] and before == after
    assert "--insert_op_conf=aipp.cfg" in after["small_b"]["atc.sh"]
    assert before["small_a"]["onnx"] != before["small_b"]["onnx"]     # the seeds differ


@pytest.mark.slow
def test_cyclegan_template_builds_byte_identical_artifacts(tmp_path: Path):
    """The shipped spec against its written-out form: same atc.sh and final .onnx."""
    before = build_artifacts(tmp_path / "before", CYCLEGAN_WRITTEN_OUT)
    after = build_artifacts(tmp_path / "after", shipped_cyclegan())
    assert list(after) == ["cyclegan_g_a", "cyclegan_g_b"] and before == after
