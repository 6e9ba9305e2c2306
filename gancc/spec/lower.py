"""Checks and conversions from parsed statements to the typed spec model.

The grammar accepts any `key value, ...` inside `atc`, `aipp` and `validate`; here each key
is checked against its block's schema and each value against its type and range, so that a
misspelt key or a bad value is reported at its own line with the nearest valid name.
Checks that need gancc's registries (architectures, rewrites) are not the front end's: they
live in gancc.checks and gancc.passes.factory.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from gancc import aipp as aipp_msg
from gancc.dtypes import INPUT_DTYPES
from gancc.errors import SpecError, Span, did_you_mean
from gancc.spec.model import (DEFAULT_OPSET, Aipp, AtcOptions, BatchAtcOptions, Call,
                              ExportedProgramSource, Input, ModelSpec, PyTorchSource, Requirement, TensorFlowSource,
                              TorchScriptSource, Validation)

DTYPES = INPUT_DTYPES     # what an `input` statement may declare
MAX_BATCH = 2048          # ATC's documented upper bound for one batch gear
SUPPORTED_OPSETS = range(7, 19)  # ATC parses ai.onnx v11-v18; older ones export fine too

ATC_LOG_LEVELS = ("debug", "info", "warning", "error", "null")
ATC_INPUT_FORMATS = ("NCHW", "NHWC", "ND", "NCDHW", "NDHWC")
ATC_OUTPUT_TYPES = ("FP32", "FP16", "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32",
                    "UINT64", "INT64", "DOUBLE")
ATC_PRECISION_MODES = ("force_fp16", "force_fp32", "cube_fp16in_fp32out", "allow_fp32_to_fp16",
                       "must_keep_origin_dtype", "allow_mix_precision",
                       "allow_mix_precision_fp16", "allow_mix_precision_bf16",
                       "allow_fp32_to_bf16")
METRICS = ("pixel_cosine", "cosine", "max_abs", "mean_abs", "psnr")
REFERENCES = ("pytorch", "tensorflow", "onnx", "none")
DISTRIBUTIONS = {"uniform": ("low", "high"), "normal": ("mean", "std"),
                 "randint": ("low", "high"), "bernoulli": ("p",)}


@dataclass(frozen=True)
class Value:
    """A literal as written: its Python value and where it stands. `bare` marks a name."""

    value: Any
    span: Span
    bare: bool = False


@dataclass(frozen=True)
class Setting:
    key: str
    values: tuple[Value, ...]
    span: Span
    key_span: Span


# The largest integer a spec may write: every count, size and seed gancc reads fits in 64 bits
# (a torch seed is at most 2^64 - 1), and Python refuses to convert past 4,300 digits anyway.
MAX_INTEGER = 2**64 - 1
# An input dimension: what atc's --input_shape takes (int32); a whole input's element count:
# what ONNX and torch can count (int64).
MAX_DIM = 2**31 - 1
MAX_ELEMENTS = 2**63 - 1


def _shorten(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}...{text[-4:]} ({len(text)} characters)"


def integer(text: str, span: Span) -> int:
    """An integer literal; SpecError at it past MAX_INTEGER (in magnitude)."""
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > len(str(MAX_INTEGER)) or abs(int(text)) > MAX_INTEGER:
        raise SpecError(f"integer {_shorten(text)} is too large", span,
                        f"integers in a spec are at most {MAX_INTEGER} (2^64 - 1) in magnitude")
    return int(text)


def number(text: str, span: Span) -> int | float:
    """A number literal: an integer (see `integer`) or a finite decimal."""
    if text.lstrip("+-").isdigit():
        return integer(text, span)
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise SpecError(f"number {_shorten(text)} is out of range", span,
                        "decimals in a spec are finite: at most about 1.8e308 in magnitude")
    return value


def check_text(text: str, span: Span, what: str) -> str:
    """`text` unless it holds a control character: strings that reach atc.sh, a config file
    or a path may not carry a newline (which would end a `#` comment in atc.sh) or the like."""
    bad = next((ch for ch in text if ord(ch) < 32 or 127 <= ord(ch) < 160
                or ch in "\u2028\u2029"), None)
    if bad is not None:
        raise SpecError(f"{what} contains the control character {bad!r}", span,
                        "names, paths and atc values are printable text: remove it")
    return text


def plain(value: Any) -> Any:
    """Strip Value wrappers from (possibly nested) literals."""
    if isinstance(value, Value):
        return plain(value.value)
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    return value


def _unknown_key(setting: Setting, block: str, keys: list[str]) -> SpecError:
    return SpecError(f"unknown key '{setting.key}' in {block}", setting.key_span,
                     did_you_mean(setting.key, keys) or f"valid keys: {', '.join(sorted(keys))}")


def _single(setting: Setting) -> Value:
    if len(setting.values) != 1:
        raise SpecError(f"'{setting.key}' takes one value, got {len(setting.values)}",
                        setting.values[1].span if len(setting.values) > 1 else setting.span)
    return setting.values[0]


def _choice(setting: Setting, choices: tuple[str, ...]) -> str:
    v = _single(setting)
    if not isinstance(v.value, str) or v.value not in choices:
        raise SpecError(f"invalid value {v.value!r} for '{setting.key}'", v.span,
                        did_you_mean(str(v.value), choices) or f"one of: {', '.join(choices)}")
    return v.value


def _text(setting: Setting) -> str:
    v = _single(setting)
    if not isinstance(v.value, str):
        raise SpecError(f"'{setting.key}' takes a name or a \"string\", got {v.value!r}", v.span)
    return v.value


def _atc_output(setting: Setting) -> str:
    """atc's `output`: the .om's name, relative to the model's build folder (atc runs there);
    an absolute path or a `..` would put the .om outside it."""
    name = _text(setting)
    parts = name.replace("\\", "/").split("/")
    if not name or name.startswith(("/", "~")) or ".." in parts or (len(name) > 1 and name[1] == ":"):
        raise SpecError(f"atc output '{name}' leaves the model's build folder", setting.values[0].span,
                        "name the .om file only, e.g. `output \"CycleGAN_Ga\"` (atc writes it "
                        "into build/<model>/); copy it elsewhere after the build")
    return name


def _int(setting: Setting, low: int | None = None, high: int | None = None) -> int:
    v = _single(setting)
    if isinstance(v.value, bool) or not isinstance(v.value, int):
        raise SpecError(f"'{setting.key}' takes an integer, got {v.value!r}", v.span)
    if (low is not None and v.value < low) or (high is not None and v.value > high):
        raise SpecError(f"'{setting.key}' is {v.value}, outside [{low}, {high}]", v.span)
    return v.value


def _names(setting: Setting) -> tuple[str, ...]:
    out = []
    for v in setting.values:
        if not isinstance(v.value, str):
            raise SpecError(f"'{setting.key}' takes names, got {v.value!r}", v.span)
        out.append(v.value)
    return tuple(out)


def _no_repeats(settings: list[Setting], block: str) -> None:
    seen: dict[str, Setting] = {}
    for s in settings:
        if s.key in seen:
            raise SpecError(f"'{s.key}' is set twice in {block}", s.key_span,
                            f"first set at line {seen[s.key].span.line}")
        seen[s.key] = s


def fallback_seed(call: Call) -> int:
    """`else random(seed=N)` after a weights path."""
    if call.name != "random":
        raise SpecError(f"unknown fallback '{call.name}'", call.span,
                        "the only fallback is `else random(seed=0)`")
    kwargs = call.kwargs()
    positional = [a.value for a in call.args if a.name is None]
    extra = [a for a in call.args if a.name not in (None, "seed")]
    if extra:
        raise SpecError(f"random() has no argument '{extra[0].name}'", extra[0].span,
                        did_you_mean(extra[0].name, ["seed"]))
    seed = kwargs.get("seed", positional[0] if positional else None)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_INTEGER:
        raise SpecError("random() needs an integer seed from 0 to 2^64 - 1", call.span,
                        "e.g. `else random(seed=0)`")
    return seed


def make_input(name: str, dtype: str, dtype_span: Span, shape: tuple, batch: tuple,
               span: Span) -> Input:
    if dtype not in DTYPES:
        raise SpecError(f"unknown dtype '{dtype}'", dtype_span,
                        did_you_mean(dtype, DTYPES) or f"one of: {', '.join(DTYPES)}")
    for d in shape[1:]:
        if isinstance(d, str):
            raise SpecError(f"only the first (batch) dimension may be symbolic, got '{d}'", span,
                            "write the other dimensions as numbers")
    for d in shape:
        if isinstance(d, int) and d < 1:
            raise SpecError(f"dimension {d} must be at least 1", span)
        if isinstance(d, int) and d > MAX_DIM:
            raise SpecError(f"dimension {d} is too large", span,
                            f"atc's --input_shape takes dimensions up to {MAX_DIM} (2^31 - 1)")
    sizes = []
    for value, bspan in batch:
        if not 1 <= value <= MAX_BATCH:
            raise SpecError(f"batch size {value} is out of range", bspan,
                            f"ATC accepts batch sizes from 1 to {MAX_BATCH}")
        if value in sizes:
            raise SpecError(f"batch size {value} is listed twice", bspan)
        sizes.append(value)
    if sizes and shape and isinstance(shape[0], int) and sizes != [shape[0]]:
        raise SpecError(f"input '{name}' has a fixed batch of {shape[0]} but lists batch sizes "
                        f"{', '.join(map(str, sizes))}", batch[0][1],
                        "make the first dimension symbolic (e.g. N) to export a dynamic batch")
    elements = math.prod(d if isinstance(d, int) else max(sizes, default=1) for d in shape)
    if elements > MAX_ELEMENTS:
        raise SpecError(f"input '{name}' has {elements} elements, more than a tensor can hold",
                        span, f"ONNX and torch count a tensor's elements in int64 (at most "
                              f"{MAX_ELEMENTS}): make the input smaller")
    return Input(name, str(dtype), tuple(shape), tuple(sizes), span)


def check_opset(opset: int, span: Span) -> int:
    if opset not in SUPPORTED_OPSETS:
        raise SpecError(f"opset {opset} is not supported", span,
                        "ATC parses ai.onnx opsets 11 to 18; 11 is the safe choice")
    return opset


def make_aipp(input_name: str, items: list, span: Span) -> Aipp:
    from gancc.aipp.resolve import SUGAR

    statements = tuple(i for i in items if not isinstance(i, Setting))
    settings = [i for i in items if isinstance(i, Setting)]
    _no_repeats(settings, f"aipp {input_name}")
    fields: list[tuple[str, Any]] = []
    spans: dict[str, Span] = {}
    names = list(aipp_msg.FIELD_TYPES)
    for s in settings:
        if s.key in SUGAR and s.key not in aipp_msg.FIELD_TYPES:
            raise SpecError(f"'{s.key}' takes key=value arguments", s.key_span,
                            f"e.g. `{s.key} {' '.join(k + '=...' for k in SUGAR[s.key][:2])}` "
                            "(no spaces around '=')")
        if s.key not in aipp_msg.FIELD_TYPES:
            raise _unknown_key(s, "aipp", names + list(SUGAR))
        if s.key in aipp_msg.RESERVED_FIELDS:
            raise SpecError(f"AIPP field '{s.key}' is reserved and not supported by ATC on "
                            "Ascend 310/310P/910", s.key_span, "remove it")
        if s.key == "related_input_rank":
            raise SpecError("related_input_rank is derived from the input name", s.key_span,
                            "remove it; gancc writes the rank of the named input")
        v = _single(s)
        error = aipp_msg.field_value_error(s.key, v.value)
        if error:
            raise SpecError(f"invalid value {v.value!r} for '{s.key}'", v.span, error)
        fields.append((s.key, v.value))
        spans[s.key] = s.span
    keys = dict(fields)
    if "aipp_mode" not in keys:
        fields.insert(0, ("aipp_mode", "static"))
    elif keys["aipp_mode"] != "static":
        raise SpecError("gancc emits static AIPP only", spans["aipp_mode"],
                        "dynamic AIPP needs run-time parameters; use `aipp_mode static`")
    if "input_format" not in keys:
        raise SpecError(f"aipp {input_name} needs an input_format", span,
                        "e.g. `input_format RGB888_U8` or `input_format YUV420SP_U8`")
    return Aipp(input_name, tuple(fields), spans, span, statements)


def make_atc(items: list) -> AtcOptions:
    """The atc block: its settings, `env NAME "value"` lines and `batch N, ... { }` blocks."""
    settings = [i for i in items if isinstance(i, Setting)]
    env = atc_env([i for i in items if isinstance(i, EnvSetting)])
    per_batch = atc_per_batch([i for i in items if isinstance(i, BatchSettings)])
    _no_repeats(settings, "atc")
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    readers = _atc_readers()
    for s in settings:
        if s.key not in readers:
            raise _unknown_key(s, "atc", [*readers, "env", "batch"])
        values[s.key] = _read_atc_setting(s, readers)
        spans[s.key] = s.span
    if isinstance(values.get("output_type"), tuple):
        values["output_type_nodes"] = values.pop("output_type")
    if "soc_version" in values:
        values["soc_versions"] = _soc_versions(next(s for s in settings
                                                    if s.key == "soc_version"))
        values["soc_version"] = values["soc_versions"][0]
    return AtcOptions(**values, spans=spans, env=env, per_batch=per_batch)


def _read_atc_setting(s: Setting, readers: dict) -> Any:
    for v in s.values:     # every atc string ends up in atc.sh or a file next to it
        if isinstance(v.value, str):
            check_text(v.value, v.span, f"the value of '{s.key}'")
    return readers[s.key](s)


def _atc_readers() -> dict:
    return {
        "soc_version": _names,
        "output": _atc_output,
        "log": lambda s: _choice(s, ATC_LOG_LEVELS),
        "input_format": lambda s: _choice(s, ATC_INPUT_FORMATS),
        "out_nodes": _names,
        "output_type": _output_type,
        "precision_mode": lambda s: _choice(s, ATC_PRECISION_MODES),
        "extra": _extra_flags,
        "dynamic_batch_size": lambda s: tuple(_ints(s, 1, MAX_BATCH)),
        "dynamic_image_size": lambda s: tuple(_gears(s, 2)),
        "dynamic_dims": lambda s: tuple(_gears(s, None)),
        "input_fp16_nodes": _names,
        "op_select_implmode": lambda s: _choice(s, ATC_IMPLMODES),
        "keep_dtype": _strings,
        "fusion_off": _names,
        "enable_small_channel": _bool,
        "auto_tune_mode": _auto_tune_mode,
    }


def _soc_versions(setting: Setting) -> tuple[str, ...]:
    """`soc_version Ascend310P3` or several, `soc_version Ascend310P3, Ascend910B3`."""
    socs: list[str] = []
    for v in setting.values:
        if not isinstance(v.value, str) or not v.value.startswith("Ascend"):
            raise SpecError(f"soc_version '{v.value}' does not name an Ascend SoC", v.span,
                            "e.g. Ascend310, Ascend310P3, Ascend910B3")
        if v.value in socs:
            raise SpecError(f"soc_version {v.value} is listed twice", v.span)
        socs.append(v.value)
    return tuple(socs)


ATC_IMPLMODES = ("high_performance", "high_precision", "high_performance_for_all",
                 "high_precision_for_all")


AUTO_TUNE_MODES = ("RL", "GA")    # atc --auto_tune_mode: RL (vector ops), GA (cube ops)
# keys a `batch N { }` block may set: options of one compilation. The others fix the model's
# interface, its SoC or files shared by every command, so they are the whole block's.
PER_BATCH_KEYS = ("auto_tune_mode", "precision_mode", "op_select_implmode",
                  "enable_small_channel", "log", "extra")
_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# variables that change how bash or the loader runs atc.sh itself, or that CANN's set_env.sh
# owns: an `env` line may not set them (set them where atc.sh runs instead)
RESERVED_ENV = frozenset({"PATH", "IFS", "CDPATH", "ENV", "BASH_ENV", "SHELLOPTS", "BASHOPTS",
                          "PS4", "GLOBIGNORE", "HOME", "LD_PRELOAD", "LD_AUDIT",
                          "LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME"})


@dataclass(frozen=True)
class BatchSettings:
    """`batch 1, 16 { key value ... }` as parsed: the sizes (with where each is written)."""

    batches: tuple[tuple[int, Span], ...]
    settings: tuple[Setting, ...]
    span: Span


def _auto_tune_mode(setting: Setting) -> tuple[str, ...]:
    """`auto_tune_mode "RL,GA"` (as atc writes it) or `auto_tune_mode RL, GA`."""
    modes: list[str] = []
    for v in setting.values:
        parts = str(v.value).split(",") if isinstance(v.value, str) else [repr(v.value)]
        for mode in parts:
            if mode not in AUTO_TUNE_MODES:
                raise SpecError(f"invalid auto_tune_mode {mode!r}", v.span,
                                'the modes are RL and GA, e.g. `auto_tune_mode "RL,GA"`')
            if mode in modes:
                raise SpecError(f"auto_tune_mode {mode} is listed twice", v.span)
            modes.append(mode)
    return tuple(modes)


@dataclass(frozen=True)
class EnvSetting:
    """`env NAME "value"` in an atc block, as parsed."""

    name: str
    name_span: Span
    value: Value
    span: Span


def atc_env(lines: list[EnvSetting]) -> tuple[tuple[str, str], ...]:
    """`env NAME "value"` lines: NAME a shell identifier gancc does not reserve, once each."""
    out: dict[str, str] = {}
    for line in lines:
        name, value = line.name, line.value
        if not _SHELL_NAME.match(name):     # the grammar's NAME allows '-' and '.'
            raise SpecError(f"env name '{name}' is not a shell variable name", line.name_span,
                            "letters, digits and _, not starting with a digit")
        if name in RESERVED_ENV:
            raise SpecError(f"env {name}: atc.sh does not set this variable", line.name_span,
                            "it changes how bash, the loader or CANN's set_env.sh runs atc; "
                            "set it in the shell that runs atc.sh")
        if name in out:
            raise SpecError(f"env {name} is set twice", line.name_span)
        if isinstance(value.value, (bool, tuple)) or value.bare:
            raise SpecError(f"env {name} takes a \"string\" value, got {value.value!r}",
                            value.span, f'e.g. `env {name} "True"`')
        out[name] = check_text(str(value.value), value.span, f"the value of env {name}")
    return tuple(out.items())


def atc_per_batch(blocks: list[BatchSettings]) -> tuple[BatchAtcOptions, ...]:
    """`batch 1, 16 { ... }` blocks, each key read as the atc block reads it; a batch size is
    in one block only (whether the model declares it is checked in make_model)."""
    readers = _atc_readers()
    seen: dict[int, Span] = {}
    out = []
    for block in blocks:
        for size, span in block.batches:
            if size in seen:
                raise SpecError(f"batch {size} already has its own atc options", span,
                                f"at line {seen[size].line}: put its options in one block")
            seen[size] = span
        _no_repeats(list(block.settings), "this batch block")
        options, spans = [], {}
        for s in block.settings:
            if s.key not in PER_BATCH_KEYS:
                hint = (f"'{s.key}' applies to every command: set it in the atc block itself"
                        if s.key in readers or s.key == "env" else
                        did_you_mean(s.key, PER_BATCH_KEYS) or "")
                raise SpecError(f"'{s.key}' cannot be set per batch size", s.key_span,
                                (hint + "; " if hint else "") + "per batch: "
                                + ", ".join(PER_BATCH_KEYS))
            options.append((s.key, _read_atc_setting(s, readers)))
            spans[s.key] = s.span
        out.append(BatchAtcOptions(tuple(b for b, _ in block.batches), tuple(options),
                                   block.span, tuple(sp for _, sp in block.batches), spans))
    return tuple(out)


def check_batch_blocks(atc: AtcOptions, batch_sizes: tuple[int, ...]) -> None:
    """Each `batch N { }` names a size the model's atc commands are written for."""
    for block in atc.per_batch:
        if atc.dynamic_batch_size:
            raise SpecError("per-batch atc options need one command per batch size", block.span,
                            "dynamic_batch_size writes one command for every size: drop one")
        for size, span in zip(block.batches, block.batch_spans):
            if size not in batch_sizes:
                raise SpecError(f"batch {size} is not a batch size of this model", span,
                                "the model's inputs list batch "
                                + ", ".join(map(str, batch_sizes)))


def _output_type(setting: Setting):
    """`output_type FP16` for every output, or `output_type "maps:FP16", "aux:FP32"`."""
    if len(setting.values) == 1 and setting.values[0].bare:
        return _choice(setting, ATC_OUTPUT_TYPES)
    pairs = []
    for v in setting.values:
        target, sep, kind = str(v.value).rpartition(":")
        if v.bare or not sep or not target or kind not in ATC_OUTPUT_TYPES:
            raise SpecError(f"invalid output_type entry {v.value!r}", v.span,
                            'one type for all outputs (`output_type FP16`), or per output '
                            '"name:TYPE" strings, TYPE one of ' + ", ".join(ATC_OUTPUT_TYPES))
        pairs.append((target, kind))
    return tuple(pairs)


def _ints(setting: Setting, low: int, high: int) -> list[int]:
    out = []
    for v in setting.values:
        if isinstance(v.value, bool) or not isinstance(v.value, int) or not low <= v.value <= high:
            raise SpecError(f"'{setting.key}' takes integers in [{low}, {high}], got {v.value!r}",
                            v.span)
        out.append(v.value)
    return out


def _gears(setting: Setting, width: int | None) -> list[tuple[int, ...]]:
    """Gears written as strings: "256,256", "512,512" (one string per gear)."""
    gears = []
    for v in setting.values:
        try:
            gear = tuple(int(x) for x in str(v.value).split(","))
        except ValueError:
            gear = ()
        if v.bare or not gear or any(g < 1 for g in gear) or (width and len(gear) != width):
            example = '"256,256", "512,512"' if width == 2 else '"1,224", "4,224"'
            raise SpecError(f"invalid {setting.key} gear {v.value!r}", v.span,
                            f"one string per gear, e.g. {example}")
        gears.append(gear)
    return gears


def _strings(setting: Setting) -> tuple[str, ...]:
    out = []
    for v in setting.values:
        if not isinstance(v.value, str) or v.bare:
            raise SpecError(f"'{setting.key}' takes \"strings\"", v.span)
        out.append(v.value)
    return tuple(out)


def _bool(setting: Setting) -> bool:
    v = _single(setting)
    if not isinstance(v.value, bool):
        raise SpecError(f"'{setting.key}' is true or false, got {v.value!r}", v.span)
    return v.value


def _extra_flags(setting: Setting) -> tuple[str, ...]:
    flags = []
    for v in setting.values:
        if not isinstance(v.value, str) or v.bare or not v.value.startswith("--"):
            raise SpecError("extra atc flags are strings like \"--enable_small_channel=1\"", v.span)
        flags.append(v.value)
    return tuple(flags)


def make_requirement(metric: str, metric_span: Span, compare: str, threshold: Any,
                     output: str | None, span: Span) -> Requirement:
    if metric not in METRICS:
        raise SpecError(f"unknown metric '{metric}'", metric_span,
                        did_you_mean(metric, METRICS) or f"one of: {', '.join(METRICS)}")
    return Requirement(metric, compare, float(threshold), output, span)


def make_data(input_name: str, call: Call) -> tuple[str, Call]:
    if call.name not in DISTRIBUTIONS:
        raise SpecError(f"unknown distribution '{call.name}'", call.span,
                        did_you_mean(call.name, DISTRIBUTIONS) or
                        f"one of: {', '.join(DISTRIBUTIONS)}")
    params = DISTRIBUTIONS[call.name]
    if len(call.args) > len(params):
        raise SpecError(f"{call.name}() takes {len(params)} argument(s): {', '.join(params)}",
                        call.span)
    for a in call.args:
        if a.name is not None and a.name not in params:
            raise SpecError(f"{call.name}() has no argument '{a.name}'", a.span,
                            did_you_mean(a.name, params) or f"its arguments: {', '.join(params)}")
        if isinstance(a.value, bool) or not isinstance(a.value, (int, float)):
            raise SpecError(f"{call.name}() arguments are numbers, got {a.value!r}", a.span)
    return (input_name, call)


def make_validation(items: list) -> Validation:
    settings = [i for i in items if isinstance(i, Setting)]
    _no_repeats(settings, "validate")
    values: dict[str, Any] = {}
    spans: dict[str, Span] = {}
    readers = {
        "reference": lambda s: _choice(s, REFERENCES),
        "samples": lambda s: _int(s, 1, 64),
        "seed": lambda s: _int(s, 0, 2**32 - 1),
        "fp16": _bool,
        "fp16_converter": _bool,
    }
    for s in settings:
        if s.key not in readers:
            raise _unknown_key(s, "validate", [*readers, "require", "data"])
        values[s.key] = readers[s.key](s)
        spans[s.key] = s.span
    data = tuple(i for i in items if isinstance(i, tuple))
    seen = set()
    for name, call in data:
        if name in seen:
            raise SpecError(f"data for input '{name}' is given twice", call.span)
        seen.add(name)
    requirements = tuple(i for i in items if isinstance(i, Requirement))
    return Validation(**values, data=data, requirements=requirements, spans=spans)


_SECTIONS = ("source", "input", "output", "opset", "rewrite", "aipp", "atc", "validate")


def make_model(name: str, items: list[tuple[str, Any, Span]], span: Span,
               name_span: Span) -> ModelSpec:
    single: dict[str, tuple[Any, Span]] = {}
    inputs, outputs, aipps = [], [], []
    for kind, value, item_span in items:
        if kind == "input":
            inputs.append(value)
        elif kind == "output":
            outputs.extend(value)
        elif kind == "aipp":
            aipps.append(value)
        elif kind in single:
            raise SpecError(f"model '{name}' has two '{kind}' sections", item_span,
                            f"the first is at line {single[kind][1].line}; merge them")
        else:
            single[kind] = (value, item_span)
    if "source" not in single:
        raise SpecError(f"model '{name}' has no source", name_span,
                        "add `source pytorch { arch ... weights ... }` or `source onnx \"file.onnx\"`")
    source = single["source"][0]
    needs_interface = (PyTorchSource, TensorFlowSource, TorchScriptSource, ExportedProgramSource)
    if isinstance(source, needs_interface) and not inputs:
        raise SpecError(f"model '{name}' declares no input", name_span,
                        "add e.g. `input x: float32[N, 3, 256, 256] batch 1`")
    if isinstance(source, needs_interface) and not outputs:
        raise SpecError(f"model '{name}' declares no output", name_span, "add e.g. `output y`")
    _unique([i.name for i in inputs] + [o.name for o in outputs],
            [i.span for i in inputs] + [o.span for o in outputs], "input/output name")
    batch_sets = {i.batch_sizes for i in inputs if i.batch_sizes}
    if len(batch_sets) > 1:
        raise SpecError("all inputs of a model must list the same batch sizes", inputs[-1].span)
    input_names = [i.name for i in inputs]
    for a in aipps:
        if inputs and a.input not in input_names:
            raise SpecError(f"aipp names input '{a.input}', which the model does not declare",
                            a.span, did_you_mean(a.input, input_names) or
                            f"inputs: {', '.join(input_names)}")
    _unique([a.input for a in aipps], [a.span for a in aipps], "aipp block for input")
    atc = single.get("atc", (AtcOptions(), span))[0]
    validation = single.get("validate", (Validation(), span))[0]
    if validation.reference == "tensorflow" and not isinstance(source, TensorFlowSource):
        raise SpecError("`reference tensorflow` needs a `source tensorflow \"model.pb\"`",
                        validation.spans.get("reference", span),
                        "use `reference pytorch` or `reference onnx`")
    _check_names(atc, validation, input_names, [o.name for o in outputs])
    check_batch_blocks(atc, tuple(dict.fromkeys(b for i in inputs for b in i.batch_sizes))
                       or (1,))
    opset = single.get("opset", (DEFAULT_OPSET, span))[0]
    rewrites = single.get("rewrite", ((), span))[0]
    spans = {kind: item_span for kind, (_, item_span) in single.items()}
    return ModelSpec(name, source, tuple(inputs), tuple(outputs), opset, rewrites, tuple(aipps),
                     atc, validation, span, spans)


def _check_names(atc: AtcOptions, validation: Validation, input_names: list[str],
                 output_names: list[str]) -> None:
    """The inputs and outputs that `out_nodes`, `require ... for` and `data` name exist."""
    if output_names:
        for node in atc.out_nodes:
            if ":" not in node and node not in output_names:
                raise SpecError(f"out_nodes names '{node}', which is not a declared output",
                                atc.spans["out_nodes"], did_you_mean(node, output_names) or
                                f"outputs: {', '.join(output_names)}")
        for req in validation.requirements:
            if req.output is not None and req.output not in output_names:
                raise SpecError(f"require names output '{req.output}', which is not declared",
                                req.span, did_you_mean(req.output, output_names))
    for inp_name, call in validation.data:
        if input_names and inp_name not in input_names:
            raise SpecError(f"data names input '{inp_name}', which is not declared", call.span,
                            did_you_mean(inp_name, input_names))


def _unique(names: list[str], spans: list[Span], what: str) -> None:
    seen: set[str] = set()
    for name, span in zip(names, spans):
        if name in seen:
            raise SpecError(f"{what} '{name}' is used twice", span)
        seen.add(name)


def check_unique_models(models: tuple[ModelSpec, ...]) -> None:
    _unique([m.name for m in models], [m.span for m in models], "model name")
