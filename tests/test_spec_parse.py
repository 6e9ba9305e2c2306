"""The .gan front end: the shipped CycleGAN spec parses into the expected typed objects, and
every kind of mistake is reported at its own file:line:col with the line, a caret and a hint.

Bad specs are written with an `@` marking where the error must point (the marker is removed
before parsing), so each case states its expected position in place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gancc.errors import GanccError, SpecError
from gancc.spec import parse_file, parse_text
from gancc.spec.model import (Call, Input, ModelSpec, OnnxSource, PassStep, PyTorchSource,
                              Requirement, SpecFile)

REPO = Path(__file__).resolve().parents[1]
CYCLEGAN = REPO / "specs" / "cyclegan.gan"


@pytest.fixture(scope="module")
def cyclegan() -> SpecFile:
    return parse_file(CYCLEGAN)


# -- the shipped spec -----------------------------------------------------------------------

def test_cyclegan_declares_both_generators(cyclegan: SpecFile):
    assert isinstance(cyclegan, SpecFile)
    assert cyclegan.path == CYCLEGAN
    assert [m.name for m in cyclegan.models] == ["cyclegan_g_a", "cyclegan_g_b"]
    assert all(isinstance(m, ModelSpec) for m in cyclegan.models)
    assert cyclegan.model("cyclegan_g_b") is cyclegan.models[1]
    with pytest.raises(KeyError):
        cyclegan.model("cyclegan_g_c")


@pytest.mark.parametrize("model, input_name, output_name", [
    ("cyclegan_g_a", "img_sat_maps", "maps"),
    ("cyclegan_g_b", "img_maps_sat", "sat"),
])
def test_cyclegan_inputs_and_outputs(cyclegan: SpecFile, model: str, input_name: str,
                                     output_name: str):
    m = cyclegan.model(model)
    (inp,) = m.inputs
    assert isinstance(inp, Input)
    assert (inp.name, inp.dtype) == (input_name, "float32")
    assert inp.shape == ("N", 3, 256, 256)
    assert inp.batch_sizes == (1, 16)
    assert inp.batch_dim == "N"
    assert inp.concrete_shape(16) == (16, 3, 256, 256)
    assert m.batch_sizes() == (1, 16)
    assert m.input_names == [input_name]
    assert m.output_names == [output_name]
    assert m.opset == 11


def test_cyclegan_source(cyclegan: SpecFile):
    for model, seed, ckpt in (("cyclegan_g_a", 0, "latest_net_G_A.pth"),
                              ("cyclegan_g_b", 1, "latest_net_G_B.pth")):
        source = cyclegan.model(model).source
        assert isinstance(source, PyTorchSource)
        assert isinstance(source.arch, Call) and source.arch.name == "resnet_generator"
        assert source.arch.kwargs() == {"input_nc": 3, "output_nc": 3, "ngf": 64, "n_blocks": 9,
                                        "norm": "instance", "padding_type": "reflect"}
        assert source.weights is not None
        assert source.weights.fallback_seed == seed
        assert source.weights.path == CYCLEGAN.parent / "checkpoints" / "maps_cyclegan" / ckpt


def test_cyclegan_rewrite_pipeline(cyclegan: SpecFile):
    for m in cyclegan.models:
        assert all(isinstance(s, PassStep) for s in m.rewrites)
        assert [s.name for s in m.rewrites] == ["reflect-pad-to-constant", "fuse-pad-into-conv"]
        assert all(s.option_dict() == {} for s in m.rewrites)


def test_cyclegan_atc_options(cyclegan: SpecFile):
    a, b = (m.atc for m in cyclegan.models)
    assert a.out_nodes == ("maps",) and b.out_nodes == ("sat",)
    assert (a.soc_version, a.output, a.log) == ("Ascend310P3", "CycleGAN_Ga", "error")
    assert b.output == "CycleGAN_Gb"
    assert a.input_format == "NCHW"          # the default, not written in the spec
    assert a.precision_mode is None and a.extra == ()


def test_cyclegan_validation_requirement(cyclegan: SpecFile):
    v = cyclegan.model("cyclegan_g_a").validation
    assert (v.reference, v.samples, v.seed) == ("pytorch", 2, 0)
    (req,) = v.requirements
    assert isinstance(req, Requirement)
    assert (req.metric, req.compare, req.output) == ("pixel_cosine", ">=", None)
    # the threshold is tuned in the spec; it must be the number written on the require line
    written = CYCLEGAN.read_text(encoding="utf-8").split("\n")[req.span.line - 1]
    assert written.split()[:3] == ["require", "pixel_cosine", ">="]
    assert req.threshold == float(written.split()[3]) and 0 < req.threshold < 1
    assert req.holds(req.threshold) and req.holds(1.0) and not req.holds(req.threshold - 0.01)
    ((name, call),) = v.data
    assert name == "img_sat_maps"
    assert call.name == "uniform" and [a.value for a in call.args] == [-1, 1]


def test_spans_point_at_what_was_written(cyclegan: SpecFile):
    lines = CYCLEGAN.read_text(encoding="utf-8").split("\n")

    def at(span) -> str:
        return lines[span.line - 1][span.col - 1:]

    # a model made from a template: the model at its use, statements at the template's
    # lines, a name given as an argument at the argument (tests/test_spec_templates.py)
    m = cyclegan.model("cyclegan_g_a")
    assert at(m.span).startswith("model cyclegan_g_a = cyclegan_generator(")
    assert at(m.inputs[0].span).startswith("input image:")
    assert at(m.outputs[0].span).startswith("maps")
    assert at(m.rewrites[1].span).startswith("fuse-pad-into-conv")
    assert at(m.atc.spans["out_nodes"]).startswith("out_nodes result")
    assert at(m.validation.requirements[0].span).startswith("require pixel_cosine")
    assert all(s.file == str(CYCLEGAN) for s in (m.span, m.inputs[0].span))


def test_paths_resolve_relative_to_the_spec_folder(tmp_path: Path, monkeypatch):
    folder = tmp_path / "elsewhere" / "specs"
    folder.mkdir(parents=True)
    copy = folder / "copy.gan"
    shutil.copy(CYCLEGAN, copy)
    monkeypatch.chdir(tmp_path)            # the working directory must not matter
    spec = parse_file(Path("elsewhere/specs/copy.gan"))
    weights = spec.model("cyclegan_g_a").source.weights
    expected = folder / "checkpoints" / "maps_cyclegan" / "latest_net_G_A.pth"
    assert weights.path.resolve() == expected.resolve()

    onnx_spec = parse_text('model m {\n    source onnx "nets/g.onnx"\n}\n', folder / "o.gan")
    source = onnx_spec.models[0].source
    assert isinstance(source, OnnxSource)
    assert source.path == folder / "nets" / "g.onnx"


def test_missing_spec_file_is_a_gancc_error(tmp_path: Path):
    with pytest.raises(GanccError, match="spec file not found") as info:
        parse_file(tmp_path / "nope.gan")
    assert not isinstance(info.value, SpecError)
    assert str(tmp_path / "nope.gan") in info.value.render()


def test_strings_keep_non_ascii_text_and_escapes():
    text = ('model m {\n    source onnx "m.onnx"\n'
            '    atc {\n        output "Générateur_\\"q\\"_a\\\\b"\n    }\n}\n')
    spec = parse_text(text, "u.gan")
    assert spec.models[0].atc.output == 'Générateur_"q"_a\\b'


# -- errors -----------------------------------------------------------------------------------

GOOD = """\
model m {
    source pytorch {
        arch resnet_generator(ngf=8, n_blocks=1)
        weights "w.pth" else random(seed=0)
    }
    input x: float32[N, 3, 16, 16] batch 1, 4
    output y
%s
}
"""


def body(text: str) -> str:
    """GOOD with `text` as extra statements of the model."""
    return GOOD % text


def test_the_error_table_base_spec_is_valid():
    spec = parse_text(body("    atc {\n        out_nodes y\n    }"), "good.gan")
    assert spec.models[0].atc.out_nodes == ("y",)


# (id, text with an @ where the error points, message fragment, hint fragment or None)
BAD_SPECS = [
    ("syntax-error", body("    opset @= 11"), "unexpected '=', expected an integer", None),
    ("unknown-atc-key", body("    atc {\n        @soc_versoin Ascend310P3\n    }"),
     "unknown key 'soc_versoin' in atc", "did you mean 'soc_version'?"),
    ("bad-dtype", GOOD.replace("x: float32", "x: @float33") % "",
     "unknown dtype 'float33'", "did you mean 'float32'?"),
    ("batch-zero", GOOD.replace("batch 1, 4", "batch @0, 4") % "",
     "batch size 0 is out of range", "from 1 to 2048"),
    ("batch-4096", GOOD.replace("batch 1, 4", "batch 1, @4096") % "",
     "batch size 4096 is out of range", "from 1 to 2048"),
    ("duplicate-model", body("") + '\n@model m {\n    source onnx "m.onnx"\n}\n',
     "model name 'm' is used twice", None),
    ("weights-outside-source", body('    @weights "w.pth"'), "unexpected 'weights'",
     "'weights' goes inside a `source pytorch { ... }` block"),
    ("unknown-metric", body("    validate {\n        require @pixel_cosin >= 0.9\n    }"),
     "unknown metric 'pixel_cosin'", "did you mean 'pixel_cosine'?"),
    ("unterminated-block", body("    atc {\n        log error@").replace("\n}\n", "\n"),
     "unexpected end of file", "is a closing '}' missing?"),
    ("single-quoted-string", body("    atc {\n        output @'G.om'\n    }"),
     "unexpected character \"'\"", "strings use double quotes"),
    ("aipp-undeclared-input", body("    @aipp z {\n        input_format RGB888_U8\n    }"),
     "aipp names input 'z', which the model does not declare", "inputs: x"),
    ("aipp-reserved-field",
     body("    aipp x {\n        input_format RGB888_U8\n        @resize true\n    }"),
     "AIPP field 'resize' is reserved", "remove it"),
    ("out-nodes-not-an-output", body("    atc {\n        @out_nodes yy\n    }"),
     "out_nodes names 'yy', which is not a declared output", "did you mean 'y'?"),
    ("tab-indented-line", body("\tatc {\n\t\t@soc_versoin Ascend310P3\n\t}"),
     "unknown key 'soc_versoin' in atc", "did you mean 'soc_version'?"),
    ("unknown-string-escape", body('    atc {\n        output "G@\\q.om"\n    }'),
     "unknown escape '\\q' in a string", "known escapes"),
]


def unmark(text: str) -> tuple[str, int, int]:
    """Remove the single `@` marker; return the text and the marker's 1-based line and col."""
    assert text.count("@") == 1, "a bad spec needs exactly one @ marker"
    before, after = text.split("@")
    line = before.count("\n") + 1
    col = len(before) - (before.rfind("\n") + 1) + 1
    return before + after, line, col


def parse_error(text: str, path: str = "bad.gan") -> SpecError:
    with pytest.raises(SpecError) as info:
        parse_text(text, path)
    return info.value


@pytest.mark.parametrize("marked, message, hint", [c[1:] for c in BAD_SPECS],
                         ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_points_at_the_mistake(marked: str, message: str, hint: str | None):
    text, line, col = unmark(marked)
    path = "specs/bad.gan"             # not on disk: the error must show the parsed text
    with pytest.raises(SpecError) as info:
        parse_text(text, path)
    err = info.value
    assert (err.span.file, err.span.line, err.span.col) == (path, line, col)

    rendered = err.render().split("\n")
    assert rendered[0].startswith(f"{path}:{line}:{col}: error: ")
    assert message in rendered[0]
    source_line = text.split("\n")[line - 1]
    gutter = f"{line:>5} | "
    assert rendered[1] == gutter + source_line.expandtabs(4)
    caret_line = rendered[2]
    assert caret_line.startswith(" " * (len(gutter) - 2) + "| ")
    # the caret sits under the marked column, also when the line is indented with tabs
    assert caret_line.index("^") == len(gutter) + len(source_line[:col - 1].expandtabs(4))
    assert set(caret_line[len(gutter):].strip()) == {"^"}
    hints = [r for r in rendered if r.startswith("hint: ")]
    if hint is None:
        assert hints == [] and err.hint is None
    else:
        assert len(hints) == 1 and hint in hints[0]


def test_caret_spans_the_whole_token():
    text, line, col = unmark(body("    atc {\n        @soc_versoin Ascend310P3\n    }"))
    caret_line = parse_error(text).render().split("\n")[2]
    assert caret_line.strip(" |") == "^" * len("soc_versoin")


def test_render_reads_the_file_when_no_source_is_attached(tmp_path: Path):
    path = tmp_path / "on_disk.gan"
    path.write_text(body("    opset = 11"), encoding="utf-8")
    err = parse_error(path.read_text(encoding="utf-8"), str(path))
    err.source = None
    assert "    opset = 11" in err.render().split("\n")[1]


def test_empty_spec_says_how_to_start():
    err = parse_error("# only a comment\n")
    assert (err.span.line, err.span.col) == (1, 1)
    assert "declares no model" in err.message and "model <name>" in err.hint


@pytest.mark.parametrize("text, line, col", [
    ("model m {\u2028}\n", 1, 10),       # a Unicode line separator: lark does not count it
    ("model m {\n  atc { log \u00e9 }\n}\n", 2, 13),
], ids=["line-separator", "non-ascii-name"])
def test_unexpected_characters_never_crash_the_reporter(text: str, line: int, col: int):
    err = parse_error(text)
    assert (err.span.line, err.span.col) == (line, col)
    assert err.message.startswith("unexpected character")


def test_render_shows_the_right_line_after_a_form_feed():
    text = 'model m {\f\n    source onnx "m.onnx"\n    opset = 11\n}\n'
    err = parse_error(text)
    assert err.span.line == 3
    assert err.render().split("\n")[1].endswith("opset = 11")


# -- one grammar for a pipeline step: a spec's `rewrite { }` block and `--passes` --------------

def spec_with_step(step: str) -> str:
    return f'model m {{\n    source onnx "m.onnx"\n    rewrite {{ {step} }}\n}}\n'


STEP_LINE, STEP_COL = 3, len("    rewrite { ") + 1     # where the step starts in that spec


# Steps as both places write them: the same PassStep must come out of either.
STEP_TEXTS = [
    "reflect-pad-to-constant",
    "fuse-pad-into-conv{max_pad=32}",
    "keep-outputs{names=a;b}",
    'keep-outputs{names="maps;feat"}',
    'rename-io{map="img:input;out:maps"}',
    'p{s="two, words, here",k=1}',
    "p{f=0.5,g=-3,h=1e-3,i=+2,j=-0.25,n=.5}",
    "p{on=true,off=false}",
    "p{w=word,dotted=a.b,mode=nearest-neighbor,path=a/b:c}",
    'p{q="say \\"hi\\"\\n",l=[1,-2,"x"]}',
    "p{ k = 1 , s = \"x\" }",
    "p{}",
]


@pytest.mark.parametrize("step", STEP_TEXTS)
def test_a_step_means_the_same_in_a_spec_and_in_passes(step: str):
    from gancc.passes.pipeline_text import parse_pipeline, parse_steps

    (in_spec,) = parse_text(spec_with_step(step), "s.gan").models[0].rewrites
    (in_passes,) = parse_steps(step)
    assert (in_spec.name, in_spec.option_dict()) == (in_passes.name, in_passes.option_dict())
    assert [o.name for o in in_spec.options] == [o.name for o in in_passes.options]
    # spans: the same columns, shifted by where the step stands in the spec
    for a, b in zip((in_spec, *in_spec.options), (in_passes, *in_passes.options)):
        assert (a.span.line, a.span.col - STEP_COL + 1) == (STEP_LINE, b.span.col)
    assert parse_pipeline(f"{step},x") == [(in_spec.name, in_spec.option_dict()), ("x", {})]


def test_step_values_are_typed_as_written():
    from gancc.passes.pipeline_text import parse_pipeline

    assert parse_pipeline("keep-outputs{names=a;b}") == [("keep-outputs", {"names": "a;b"})]
    ((_, options),) = parse_pipeline('p{s="x,y",f=0.5,g=-3,on=true,off=false,w=word,l=[1,2]}')
    assert options == {"s": "x,y", "f": 0.5, "g": -3, "on": True, "off": False, "w": "word",
                       "l": (1, 2)}
    assert [type(options[k]) for k in ("f", "g", "on")] == [float, int, bool]


# (step with an @ where the error points, message fragment)
BAD_STEPS = [
    ("p{@k}", "bad option 'k' for pass 'p'"),
    ("p{k=1, @j}", "bad option 'j' for pass 'p'"),
    ("p{k=@}", "unexpected '}'"),
    ("p{@=1}", "unexpected '='"),
    ("p{k=1 @j=2}", "unexpected 'j'"),
    ("p{k=1,@}", "unexpected '}'"),
    ("p{k=@'x'}", "unexpected character \"'\""),
    ("p{k=@%}", "unexpected character '%'"),
    ('p{k="a@\\qb"}', "unknown escape '\\q' in a string"),
    ("p{k=[1,@}", "unexpected '}'"),
]


@pytest.mark.parametrize("marked, message", BAD_STEPS, ids=[b[0] for b in BAD_STEPS])
def test_a_bad_step_is_reported_alike_in_a_spec_and_in_passes(marked: str, message: str):
    from gancc.passes.pipeline_text import PIPELINE_HINT, parse_steps
    from gancc.spec.parser import parse_pipeline

    step, _, col = unmark(marked)
    in_spec = parse_error(spec_with_step(step))
    with pytest.raises(SpecError) as info:
        parse_pipeline(step)
    in_passes = info.value
    assert message in in_spec.message
    assert (in_spec.span.line, in_spec.span.col) == (STEP_LINE, STEP_COL + col - 1)
    assert (in_passes.span.line, in_passes.span.col) == (1, col)
    assert (in_passes.message, in_passes.hint) == (in_spec.message, in_spec.hint)
    # the command line names the character, with the same message
    with pytest.raises(GanccError) as info:
        parse_steps(step)
    assert info.value.message == f"bad pass pipeline at character {col}: {in_spec.message}"
    assert info.value.hint == (in_spec.hint or PIPELINE_HINT)


ROUND_TRIP_OPTIONS = [
    {},
    {"max_pad": 32},
    {"names": "a;b", "map": "img:input;out:maps"},
    {"s": "two, words", "t": "true", "f": "false", "e": "", "q": 'say "hi"\\ok\n\t'},
    {"x": 0.5, "y": -3, "z": -0.25, "big": 1e-05, "on": True, "off": False},
    {"word": "nearest", "dotted": "a.b", "l": (1, -2, "x y", True)},
]


@pytest.mark.parametrize("options", ROUND_TRIP_OPTIONS)
def test_format_step_round_trips_through_the_parser(options: dict):
    from gancc.passes.pipeline_text import format_step, parse_pipeline

    text = format_step("some-pass", options)
    assert parse_pipeline(text) == [("some-pass", options)]
    (step,) = parse_text(spec_with_step(text), "s.gan").models[0].rewrites
    assert step.option_dict() == options


def test_the_spec_front_end_imports_no_engine_graph_or_stages():
    """gancc.spec parses and lowers only: the rewrite engine, the graph core and the build
    stages are not imported by it (checked in a fresh interpreter and in the source)."""
    import ast
    import subprocess
    import sys

    code = ("import sys, gancc.spec, gancc.spec.parser, gancc.spec.checks, gancc.spec.rules\n"
            "import gancc.spec.lower, gancc.spec.model\n"
            "gancc.spec.parse_text(open(sys.argv[1]).read(), sys.argv[1])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['gancc', 'passes'], ['gancc', 'graph'], ['gancc', 'stages'], ['gancc', 'build'])))")
    out = subprocess.run([sys.executable, "-c", code, str(CYCLEGAN)], capture_output=True,
                         text=True, check=True, cwd=REPO).stdout
    assert out.strip() == "[]"
    forbidden = ("gancc.passes", "gancc.graph", "gancc.stages", "gancc.build", "gancc.archs")
    for path in (REPO / "gancc" / "spec").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad = [n for n in names if n.startswith(forbidden)]
            assert not bad, f"{path.name} imports {bad}"


def test_expected_tokens_read_as_what_to_type_not_grammar_names():
    """lark names some terminals itself (`__ANON_1` for '=>') and the grammar names others
    for its own use (P_ADD for + and ++): a message lists what they match instead."""
    text = ('model g {\n    source onnx "g.onnx"\n    input x: float32[N, 3, 8, 8] batch 1\n'
            '    output y\n    atc {\n        soc_version Ascend310\n'
            '        bach 1 { log error }\n    }\n}\n')
    with pytest.raises(SpecError) as err:
        parse_text(text, "t.gan")
    message, span = str(err.value), err.value.span
    assert (span.line, span.col) == (7, 16) and "unexpected '{'" in message
    assert "'=>'" in message and "'++' or '+'" in message
    for internal in ("__anon", "p_add", "p_cmp", "p_mul", "'minus'"):
        assert internal not in message.lower(), internal
