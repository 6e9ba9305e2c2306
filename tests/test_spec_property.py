"""Property: whatever a user does to a spec, the front end answers with a SpecFile or a
GanccError that points at a place; never with a Python or lark exception.

Each example takes a shipped spec (specs/*.gan) and applies a few random edits of the kind
people make: deleting a span, typing stray characters or keywords, duplicating or swapping
lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gancc.errors import GanccError, SpecError
from gancc.spec import SpecFile, parse_text

SPEC_FILES = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.gan"))
TEXTS = {str(p): p.read_text(encoding="utf-8") for p in SPEC_FILES}

# Things a user might type: punctuation of the grammar, numbers in and out of range,
# keywords, and characters that have tripped position bookkeeping before.
ALPHABET = [
    "{", "}", "(", ")", "[", "]", '"', "'", ",", "=", ":", ";", "#", ">=", "<", "-", ".",
    "\\", "\\q", "\\N", "\n", " ", "\t", "\r", "\f", "\u2028", "\u00e9",
    "0", "1", "7", "-1", "0.5", "1e9", "2048", "4096", "99999999999999999999",
    "model", "source", "pytorch", "onnx", "arch", "weights", "else", "random", "input",
    "output", "batch", "opset", "rewrite", "aipp", "atc", "validate", "require", "data",
    "for", "true", "false", "float32", "N", "x", "resize", "out_nodes", "soc_version",
    "fuse-pad-into-conv", "uniform(-1, 1)", '"w.pth"',
]

# What gets typed inside a "string": escapes good and bad, and non-ASCII text.
STRING_ALPHABET = ["\\", "\\\\", '\\"', "\\n", "\\q", "\\N", "\\x4", "\\u12",
                   "\u00e9", "\u2028", "'", "{", "#", " "]


@st.composite
def mutated_specs(draw) -> tuple[str, str]:
    path = draw(st.sampled_from(sorted(TEXTS)))
    text = TEXTS[path]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "insert-in-string", "duplicate-line",
                                     "swap-lines"]))
        quotes = [i + 1 for i, c in enumerate(text) if c == '"']
        if kind == "delete":
            start = draw(st.integers(0, len(text)))
            text = text[:start] + text[start + draw(st.integers(1, 40)):]
        elif kind.startswith("insert"):
            at = draw(st.sampled_from(quotes)) if kind == "insert-in-string" and quotes \
                else draw(st.integers(0, len(text)))
            alphabet = STRING_ALPHABET if kind == "insert-in-string" else ALPHABET
            tokens = draw(st.lists(st.sampled_from(alphabet), min_size=1, max_size=3))
            text = text[:at] + draw(st.sampled_from(["", " "])).join(tokens) + text[at:]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            if kind == "duplicate-line":
                lines.insert(i, lines[i])
            else:
                j = draw(st.integers(0, len(lines) - 1))
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return path, text


def check_outcome(path: str, text: str) -> None:
    try:
        result = parse_text(text, path)
    except SpecError as err:
        rendered = err.render()
        assert err.span is not None, "a SpecError from the parser always has a place"
        assert re.match(rf"{re.escape(path)}:\d+:\d+: error: ", rendered), rendered
        assert rendered.startswith(f"{path}:{err.span.line}:{err.span.col}: error: ")
        assert 1 <= err.span.line <= text.count("\n") + 1
        assert err.span.col >= 1
    except GanccError as err:
        assert err.render().startswith("error: ")
    else:
        assert isinstance(result, SpecFile) and result.models


@pytest.mark.skipif(not SPEC_FILES, reason="no specs/*.gan to mutate")
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutated_specs())
# Inputs that once escaped as IndexError / lark VisitError (kept as regression examples).
@example(("specs/cyclegan.gan", "model m { \u2028 }"))
@example(("specs/cyclegan.gan", 'model m {\n source onnx "m.onnx"\n atc { output "\\N" }\n}'))
def test_mutated_specs_fail_only_with_located_errors(case: tuple[str, str]):
    check_outcome(*case)


def test_unmutated_specs_parse():
    assert SPEC_FILES, "the repository ships at least one spec"
    for path, text in TEXTS.items():
        assert isinstance(parse_text(text, path), SpecFile)
