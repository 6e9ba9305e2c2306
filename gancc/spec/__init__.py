"""The .gan spec language, the front end: grammar (gan.lark, and pipeline.lark for a rewrite
pipeline's steps), typed model, parser and the checks against the ONNX operator schemas.
It parses and lowers only: it imports nothing of the rewrite engine (gancc.passes), the graph
core (gancc.graph) or the build, and runs no user code."""

from gancc.spec.model import ModelSpec, SpecFile
from gancc.spec.parser import parse_file, parse_text

__all__ = ["ModelSpec", "SpecFile", "parse_file", "parse_text"]
