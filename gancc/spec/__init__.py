"""The .gan spec language: grammar (gan.lark), typed model, parser and checks."""

from gancc.spec.model import ModelSpec, SpecFile
from gancc.spec.parser import parse_file, parse_text

__all__ = ["ModelSpec", "SpecFile", "parse_file", "parse_text"]
