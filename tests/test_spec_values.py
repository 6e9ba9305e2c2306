"""Spec values Python cannot take as written (issue 13): lists nested hundreds deep, integers
past 4,300 digits or 64 bits, decimals past float range, seeds torch refuses. Each is a
SpecError at the literal's file:line:col with a hint, and `gancc check` exits 1 (never 70)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gancc.cli import main
from gancc.errors import SpecError
from gancc.spec import parse_text
from gancc.spec.parser import parse_pipeline

BASE = """\
model g {
    source pytorch {
        arch resnet_generator(ngf=8, n_blocks=1)
        weights "nope.pth" else random(seed=SEED)
    }
    input x: float32[N, 3, DIM, 64] batch BATCH
    output y
    opset OPSET
    rewrite { fuse-pad-into-conv{max_pad=MAXPAD} }
    atc { soc_version Ascend310P3 }
    validate { data x uniform(-1, 1)  require psnr >= PSNR }
}
"""
DEFAULTS = {"SEED": "0", "DIM": "64", "BATCH": "1", "OPSET": "11", "MAXPAD": "3", "PSNR": "20"}
HUGE = "9" * 5000            # past Python's 4,300-digit int conversion limit
BIG = "9" * 400              # converts to int, but not to float
DEEP = "[" * 300 + "]" * 300  # past the Transformer's recursion depth


def spec_text(**values: str) -> str:
    text = BASE
    for key, default in DEFAULTS.items():
        text = text.replace(key, values.get(key, default))
    return text


def test_the_base_spec_is_valid():
    parse_text(spec_text(), "g.gan")


@pytest.mark.parametrize("key, value, message", [
    ("SEED", HUGE, "too large"),
    ("SEED", str(2**64), "too large"),
    ("SEED", "-1", "seed from 0 to 2^64 - 1"),
    ("DIM", HUGE, "too large"),
    ("DIM", str(2**31), "dimension 2147483648 is too large"),   # atc's int32 --input_shape
    ("DIM", str(2**64 - 1), "dimension 18446744073709551615 is too large"),
    ("BATCH", HUGE, "too large"),
    ("OPSET", HUGE, "too large"),
    ("MAXPAD", HUGE, "too large"),
    ("PSNR", HUGE, "too large"),
    ("PSNR", BIG, "too large"),
    ("PSNR", "1e309", "out of range"),
    ("PSNR", "-1e309", "out of range"),
    ("MAXPAD", DEEP, "nest more than"),
])
def test_values_python_cannot_take_are_spec_errors(key: str, value: str, message: str):
    text = spec_text(**{key: value})
    with pytest.raises(SpecError) as info:
        parse_text(text, "g.gan")
    err = info.value
    assert message in err.message
    assert err.hint
    line = next(i for i, row in enumerate(text.split("\n"), 1) if value in row)
    assert err.span is not None and err.span.line == line
    rendered = err.render()
    assert rendered.startswith(f"g.gan:{line}:")


def test_a_seed_at_the_torch_limit_is_accepted():
    spec = parse_text(spec_text(SEED=str(2**64 - 1)), "g.gan")
    assert spec.models[0].source.weights.fallback_seed == 2**64 - 1


def test_deep_lists_in_arguments_are_spec_errors():
    text = spec_text().replace("n_blocks=1)", f"n_blocks=1, x={'[' * 1000}{']' * 1000})")
    with pytest.raises(SpecError) as info:
        parse_text(text, "g.gan")
    assert info.value.span.line == 3


def test_nesting_inside_strings_and_comments_is_not_counted():
    text = spec_text().replace("output y", f'output y  # {"[" * 100}')
    parse_text(text, "g.gan")


@pytest.mark.parametrize("pipeline", [f"x{{max_pad={HUGE}}}", f"x{{value={BIG}.5e9999}}",
                                      f"x{{v={DEEP}}}"])
def test_pipeline_text_values_are_spec_errors(pipeline: str):
    with pytest.raises(SpecError) as info:
        parse_pipeline(pipeline)
    assert info.value.span.line == 1


@pytest.mark.parametrize("key, value", [("SEED", HUGE), ("SEED", str(2**70)), ("OPSET", HUGE),
                                        ("PSNR", "1e309"), ("PSNR", BIG), ("MAXPAD", DEEP)])
def test_check_exits_1_with_the_place(tmp_path: Path, capsys, key: str, value: str):
    spec = tmp_path / "g.gan"
    spec.write_text(spec_text(**{key: value}), encoding="utf-8")
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert f"{spec}:" in err and "internal error" not in err


@pytest.mark.parametrize("command", ["opt", "explain"])
def test_opt_and_explain_report_a_huge_option_value(tmp_path: Path, capsys, command: str):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    pipeline = f"fuse-pad-into-conv{{max_pad={HUGE}}}"
    argv = (["opt", str(model), "--passes", pipeline, "-o", str(tmp_path / "o.onnx")]
            if command == "opt" else ["explain", pipeline, str(model)])
    status = main(argv)
    err = capsys.readouterr().err
    assert status in (1, 2) and "internal error" not in err


def test_a_dimension_at_the_int32_limit_is_accepted():
    spec = parse_text(spec_text(DIM=str(2**31 - 1)), "g.gan")
    assert spec.models[0].inputs[0].shape[2] == 2**31 - 1


def test_an_input_with_more_elements_than_int64_counts_is_refused_at_its_line():
    big = 2**31 - 1
    text = spec_text().replace("float32[N, 3, DIM, 64] batch 1".replace("DIM", "64"),
                               f"float32[N, {big}, {big}, {big}] batch 1")
    with pytest.raises(SpecError) as info:
        parse_text(text, "g.gan")
    assert "more than a tensor can hold" in info.value.message
    assert info.value.span.line == 6


@pytest.mark.parametrize("command", ["check", "build"])
@pytest.mark.parametrize("key, value", [("DIM", str(2**31)), ("SEED", str(2**64))])
def test_check_and_build_refuse_a_value_past_its_bound_at_the_spec_line(
        tmp_path: Path, capsys, command: str, key: str, value: str):
    spec = tmp_path / "g.gan"
    text = spec_text(**{key: value})
    spec.write_text(text, encoding="utf-8")
    argv = [command, str(spec)] + (["-o", str(tmp_path / "out"), "--no-atc"]
                                   if command == "build" else [])
    assert main(argv) == 1
    err = capsys.readouterr().err
    line = next(i for i, row in enumerate(text.split("\n"), 1) if value in row)
    assert f"{spec}:{line}:" in err and "too large" in err and "internal error" not in err
    assert not (tmp_path / "out" / "g").exists()


@pytest.mark.parametrize("command", ["check", "build", "validate"])
@pytest.mark.parametrize("seed", [str(2**64), "-1", HUGE, "x"])
def test_a_random_weights_seed_out_of_range_is_a_usage_error(tmp_path: Path, capsys,
                                                             command: str, seed: str):
    spec = tmp_path / "g.gan"
    spec.write_text(spec_text(), encoding="utf-8")
    extra = ["--count", "1"] if command == "validate" else []
    with pytest.raises(SystemExit) as info:
        main([command, str(spec), f"--random-weights={seed}", *extra])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "a seed is an integer from 0 to 2^64 - 1" in err and "Traceback" not in err


def test_a_random_weights_seed_at_the_torch_limit_is_accepted(tmp_path: Path):
    spec = tmp_path / "g.gan"
    spec.write_text(spec_text(), encoding="utf-8")
    assert main(["check", str(spec), f"--random-weights={2**64 - 1}"]) == 0
