"""AIPP (Ascend AI Pre-Processing): the config message and its text format (message.py),
CSC presets (presets.py), the spec's aipp blocks expanded and checked (resolve.py,
checks.py), a numpy emulator of static AIPP (emulate.py) and config import (spectext.py).

`from gancc import aipp` keeps the message API at the package level.
"""

from gancc.aipp.message import (AIPP_MODES, DEFAULTS, FIELD_TYPES, INPUT_FORMATS, MATRIX_FIELDS,
                                RANGES, RESERVED_FIELDS, SUPPORTED_INPUT_FORMATS, build_config,
                                effective, field_names, field_value_error, parse_config, to_text)

__all__ = ["AIPP_MODES", "DEFAULTS", "FIELD_TYPES", "INPUT_FORMATS", "MATRIX_FIELDS", "RANGES",
           "RESERVED_FIELDS", "SUPPORTED_INPUT_FORMATS", "build_config", "effective", "field_names",
           "field_value_error", "parse_config", "to_text"]
