"""The rewrite registry: the catalogue's conventions, registration errors, options, discovery
of user folders, and the textual pipeline."""

from __future__ import annotations

import inspect
from pathlib import Path

import onnx
import onnx.parser
import pytest

from gancc.errors import GanccError
from gancc.passes import registry
from gancc.passes.base import GraphPass, Pass, Rewrite
from gancc.passes.manager import run_pipeline
from gancc.passes.pipeline_text import format_step, parse_pipeline
from gancc.passes.registry import OptionError, Registry, RegistryError, make_pass

TESTS = Path(__file__).resolve().parent
BUILTIN = registry.all_rewrites()


@pytest.fixture
def fresh() -> Registry:
    """A registry of its own with the built-ins, so what a test registers stays out of the
    default one (which the catalogue checks below and the CLI read)."""
    own = Registry()
    own.load_builtin()
    return own


def test_the_catalogue_is_not_empty():
    assert {"reflect-pad-to-constant", "fuse-pad-into-conv"} <= set(BUILTIN)


# -- conventions every rewrite in the catalogue follows ---------------------------------------

@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_rewrite_module_docstring_is_a_before_after_catalogue(name: str):
    cls = BUILTIN[name]
    doc = inspect.getmodule(cls).__doc__
    assert doc and doc.strip(), "the module docstring is what `gancc passes` shows"
    summary, _, body = inspect.cleandoc(doc).partition("\n")
    assert summary.strip() and registry.summary(cls) == summary
    assert "->" in body, "the docstring body lists each transformation as `Before -> After`"
    assert "Constraints" in body


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_rewrite_name_is_its_file_name(name: str):
    path = Path(inspect.getsourcefile(BUILTIN[name]))
    assert path.stem.replace("_", "-") == name


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_rewrite_has_an_onnx_anchor(name: str):
    cls = BUILTIN[name]
    assert issubclass(cls, Rewrite) != issubclass(cls, GraphPass), "one kind of pass or the other"
    if issubclass(cls, GraphPass):           # run(model): the whole graph is its one candidate
        assert cls.anchor == ""
        return
    for anchor in cls.anchor.split("|"):
        assert anchor and onnx.defs.has(anchor), f"anchor {anchor!r} is not an ONNX op type"


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_rewrite_has_its_own_test_file(name: str):
    stem = Path(inspect.getsourcefile(BUILTIN[name])).stem
    assert (TESTS / "rewrites" / f"test_{stem}.py").is_file()


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_rewrite_source_location_points_at_its_registration(name: str):
    cls = BUILTIN[name]
    file, line = cls.source.rsplit(":", 1)
    assert Path(file) == Path(inspect.getsourcefile(cls))
    text = Path(file).read_text(encoding="utf-8").split("\n")[int(line) - 1]
    assert f'@rewrite("{name}")' in text or f"class {cls.__name__}" in text


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_default_options_make_a_pass(name: str):
    rule = make_pass(name)
    assert isinstance(rule, Pass) and rule.name == name
    assert rule.pipeline_text() == name          # defaults are not written out


# -- registration errors ------------------------------------------------------------------------

def test_second_class_under_an_existing_name_names_both_places(fresh: Registry):
    first = fresh.get("fuse-pad-into-conv")
    with pytest.raises(RegistryError) as info:
        @fresh.rewrite("fuse-pad-into-conv")
        class Impostor(Rewrite):
            anchor = "Pad"
    message = info.value.message
    assert "defined twice" in message
    assert first.source in message                            # rewrites/fuse_pad_into_conv.py:N
    assert f"{Path(__file__)}:" in message                    # and this file, with its line
    assert info.value.hint == "rename one of them"
    assert fresh.get("fuse-pad-into-conv") is first           # the original stays registered


@pytest.mark.parametrize("bad", ["Fuse-Pad", "fuse_pad", "fuse--pad", "-fuse", "fuse-",
                                 "fuse pad", "1fuse", ""])
def test_name_that_is_not_kebab_case_is_refused(fresh: Registry, bad: str):
    with pytest.raises(RegistryError, match="not kebab-case"):
        @fresh.rewrite(bad)
        class Bad(Rewrite):
            anchor = "Relu"
    assert bad not in fresh.all()


def test_only_pass_subclasses_register(fresh: Registry):
    for base in (object, Pass):        # Pass is the common base: a pass is one kind or the other
        with pytest.raises(RegistryError, match="must decorate a subclass of Rewrite or GraphPass"):
            @fresh.rewrite("not-a-rewrite-for-test")
            class Plain(base):
                pass


def test_a_graph_pass_registers_and_runs(fresh: Registry):
    @fresh.rewrite("drop-doc-strings-for-test")
    class DropDocStrings(GraphPass):
        """Clear the graph's doc_string."""

        def run(self, model):
            if not model.graph.doc_string:
                return self.decline("no doc_string")
            model.graph.doc_string = ""
            return 1

    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y) { y = Relu (x) }
    """)
    model.graph.doc_string = "made by hand"
    rule = fresh.make_pass("drop-doc-strings-for-test")
    assert isinstance(rule, GraphPass) and rule.pipeline_text() == "drop-doc-strings-for-test"
    (result,) = run_pipeline(model, [rule])
    assert result.matches == 1 and model.graph.doc_string == ""
    assert "drop-doc-strings-for-test" not in registry.all_rewrites()   # the default is untouched


def test_a_fresh_registry_sees_modules_imported_before(fresh: Registry):
    # the built-in modules were imported long before `fresh`: it collects their passes anyway
    assert fresh.all().keys() == registry.all_rewrites().keys()
    assert fresh.get("simplify") is registry.get("simplify")


def test_unknown_rewrite_suggests_the_closest_name():
    with pytest.raises(RegistryError, match="unknown rewrite 'fuse-pad-into-cnov'") as info:
        make_pass("fuse-pad-into-cnov")
    assert info.value.hint == "did you mean 'fuse-pad-into-conv'?"


# -- options ------------------------------------------------------------------------------------

def test_unknown_option_suggests_the_closest_one():
    with pytest.raises(OptionError, match="has no option 'max_pads'") as info:
        make_pass("fuse-pad-into-conv", {"max_pads": 3})
    assert info.value.hint == "did you mean 'max_pad'?"


def test_unknown_option_far_from_any_lists_them():
    with pytest.raises(OptionError) as info:
        make_pass("fuse-pad-into-conv", {"zzz": 3})
    assert info.value.hint == "its options: max_pad"


@pytest.mark.parametrize("name, options", [
    ("fuse-pad-into-conv", {"max_pad": "big"}),
    ("fuse-pad-into-conv", {"max_pad": 2.5}),
    ("fuse-pad-into-conv", {"max_pad": True}),
    ("reflect-pad-to-constant", {"value": "zero"}),
    ("reflect-pad-to-constant", {"value": False}),
])
def test_option_of_the_wrong_type_is_refused(name: str, options: dict):
    key = next(iter(options))
    with pytest.raises(OptionError, match=f"option '{key}' of {name} takes"):
        make_pass(name, options)


def test_options_are_set_and_ints_widen_to_floats():
    assert make_pass("fuse-pad-into-conv", {"max_pad": 32}).max_pad == 32
    value = make_pass("reflect-pad-to-constant", {"value": 1}).value
    assert value == 1.0 and isinstance(value, float)
    assert make_pass("fuse-pad-into-conv", {"max_pad": 32}) == make_pass("fuse-pad-into-conv",
                                                                         {"max_pad": 32})


def test_passes_are_frozen():
    rule = make_pass("fuse-pad-into-conv", {"max_pad": 4})
    with pytest.raises(Exception):
        rule.max_pad = 5


# -- user folders -------------------------------------------------------------------------------

USER_REWRITE = '''\
"""Remove Identity nodes (a user rewrite loaded from a folder).

    y = Identity(x)  ->  readers of y read x

Constraints:
- y is not a graph output.
"""

from gancc.passes.base import Rewrite
from gancc.passes.registry import rewrite


@rewrite("remove-identity-for-test")
class RemoveIdentity(Rewrite):
    anchor = "Identity"

    def match(self, graph, node):
        if graph.is_graph_output(node.output[0]):
            return self.decline("the output is a graph output")
        return True

    def apply(self, graph, node, match):
        graph.replace_uses(node.output[0], node.input[0])
        graph.remove_node(node)
'''


def test_load_dir_registers_a_user_rewrite(tmp_path: Path, fresh: Registry):
    (tmp_path / "remove_identity_for_test.py").write_text(USER_REWRITE, encoding="utf-8")
    (tmp_path / "_private_helper.py").write_text("raise RuntimeError('never imported')\n")

    fresh.load_dir(tmp_path)

    cls = fresh.all()["remove-identity-for-test"]
    assert "remove-identity-for-test" not in registry.all_rewrites()    # only in `fresh`
    assert cls.source.startswith(str(tmp_path / "remove_identity_for_test.py") + ":")
    assert registry.summary(cls) == "Remove Identity nodes (a user rewrite loaded from a folder)."
    model = onnx.parser.parse_model("""
    <ir_version: 8, opset_import: ["" : 13]>
    g (float[2] x) => (float[2] y)
    {
        i = Identity (x)
        y = Relu (i)
    }
    """)
    (result,) = run_pipeline(model, [fresh.make_pass("remove-identity-for-test")])
    assert result.matches == 1
    assert [n.op_type for n in model.graph.node] == ["Relu"]
    assert list(model.graph.node[0].input) == ["x"]
    fresh.load_dir(tmp_path)                    # a second load of the same folder is a no-op
    assert fresh.get("remove-identity-for-test") is cls


def test_load_dir_of_a_missing_folder(tmp_path: Path):
    with pytest.raises(RegistryError, match="rewrite folder not found"):
        Registry().load_dir(tmp_path / "missing")


def test_load_dir_with_a_broken_file_names_it(tmp_path: Path, fresh: Registry):
    (tmp_path / "broken.py").write_text("import no_such_module_for_gancc_tests\n")
    with pytest.raises(RegistryError) as info:
        fresh.load_dir(tmp_path)
    assert str(tmp_path / "broken.py") in info.value.message
    assert "ModuleNotFoundError" in info.value.message


# -- textual pipeline ------------------------------------------------------------------------

@pytest.mark.parametrize("text, steps", [
    ("a,b{k=1,x=true}", [("a", {}), ("b", {"k": 1, "x": True})]),
    ("reflect-pad-to-constant,fuse-pad-into-conv{max_pad=32}",
     [("reflect-pad-to-constant", {}), ("fuse-pad-into-conv", {"max_pad": 32})]),
    ('one{f=0.5,s="two words",n=-3,off=false,w=word}',
     [("one", {"f": 0.5, "s": "two words", "n": -3, "off": False, "w": "word"})]),
])
def test_pipeline_text_round_trips(text: str, steps: list):
    assert parse_pipeline(text) == steps
    assert ",".join(format_step(name, options) for name, options in steps) == text


def test_pipeline_text_tolerates_spaces():
    assert parse_pipeline(" a , b{ k = 1 } ") == [("a", {}), ("b", {"k": 1})]


@pytest.mark.parametrize("text, message", [
    ("a,,b", "bad pass pipeline at character 3"),
    ("Fuse", "bad pass pipeline at character 1"),
    ("a{k}", "bad option 'k' for pass 'a'"),
    ("a{k=1", "bad pass pipeline"),
])
def test_bad_pipeline_text(text: str, message: str):
    with pytest.raises(GanccError, match=message):
        parse_pipeline(text)


def test_format_step_leaves_out_defaults():
    assert format_step("p", {"a": 1, "b": 2}, {"a": 1, "b": 3}) == "p{b=2}"
    assert format_step("p", {"a": 1}, {"a": 1}) == "p"


def test_a_configured_pass_replays_from_its_pipeline_text():
    rule = make_pass("fuse-pad-into-conv", {"max_pad": 32})
    text = rule.pipeline_text()
    assert text == "fuse-pad-into-conv{max_pad=32}"
    ((name, options),) = parse_pipeline(text)
    assert make_pass(name, options) == rule


def test_docstring_is_the_description():
    cls = BUILTIN["fuse-pad-into-conv"]
    assert registry.description(cls) == inspect.cleandoc(inspect.getmodule(cls).__doc__)
    assert registry.description(cls).startswith("Fuse a zero constant Pad")
