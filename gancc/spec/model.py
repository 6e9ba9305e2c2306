"""The spec as typed, frozen objects. Every object keeps the Span it was written at, so a
later stage (a missing input in the graph, an out_nodes name the export does not have) can
point back at the exact line of the .gan file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gancc.errors import Span

DEFAULT_OPSET = 11  # what ATC-era recipes export with, and what ATC parses everywhere


@dataclass(frozen=True)
class Arg:
    """One argument of a call or a pass option: `name=value`, or positional when name is None."""

    name: str | None
    value: Any
    span: Span


@dataclass(frozen=True)
class Call:
    """`name(arg, key=value, ...)`, as in `arch resnet_generator(ngf=64)` or `uniform(-1, 1)`."""

    name: str
    args: tuple[Arg, ...]
    span: Span

    def kwargs(self) -> dict[str, Any]:
        return {a.name: a.value for a in self.args if a.name is not None}

    def arg_span(self, name: str) -> Span:
        return next((a.span for a in self.args if a.name == name), self.span)


@dataclass(frozen=True)
class Weights:
    """A checkpoint path, and the seed to use instead when the file is absent (if declared);
    `key`: the entry of a wrapping dict that holds the state_dict (`key "params_ema"`)."""

    path: Path
    fallback_seed: int | None
    span: Span
    key: str | None = None


@dataclass(frozen=True)
class ArchRef:
    """`arch "nets.py:UNet"(...)` (a file, resolved against the spec's folder) or
    `arch "pkg.mod:UNet"(...)` (an importable module): a user's class or factory. The parser
    only records it; gancc.archs.user imports it at build/check time."""

    text: str                 # as written, also the architecture's name in reports
    file: Path | None
    module: str | None
    attr: str
    span: Span


@dataclass(frozen=True)
class PyTorchSource:
    arch: Call
    weights: Weights | None
    span: Span
    user: ArchRef | None = None     # None: `arch` names a registered architecture
    mode: str = "eval"              # "train": forward in train mode (BatchNorm, Dropout still eval)


@dataclass(frozen=True)
class TorchScriptSource:
    """`source torchscript "g.pt"`: a torch.jit.save'd module, weights included."""

    path: Path
    span: Span


@dataclass(frozen=True)
class ExportedProgramSource:
    """`source exported "g.pt2"`: a torch.export.save'd ExportedProgram, weights included."""

    path: Path
    span: Span


@dataclass(frozen=True)
class OnnxSource:
    path: Path
    span: Span


@dataclass(frozen=True)
class TensorFlowSource:
    """`source tensorflow "model.pb"`: a frozen TensorFlow GraphDef (atc --framework=3)."""

    path: Path
    span: Span


@dataclass(frozen=True)
class Input:
    """A graph input. Symbolic dims (e.g. `N`) are the dynamic batch axis."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]
    batch_sizes: tuple[int, ...]
    span: Span

    @property
    def batch_dim(self) -> str | None:
        return self.shape[0] if self.shape and isinstance(self.shape[0], str) else None

    def concrete_shape(self, batch: int) -> tuple[int, ...]:
        return tuple(batch if isinstance(d, str) else d for d in self.shape)


@dataclass(frozen=True)
class Output:
    name: str
    span: Span


@dataclass(frozen=True)
class PassStep:
    """One step of the rewrite pipeline: a rewrite or rule name and its options. The same
    from a spec's `rewrite { ... }` block and from `gancc opt --passes` (pipeline.lark)."""

    name: str
    options: tuple[Arg, ...]
    span: Span

    def option_dict(self) -> dict[str, Any]:
        return {a.name: a.value for a in self.options}


# -- rules and user code declared at the top of a spec ------------------------------------------

@dataclass(frozen=True)
class NodePattern:
    """One node of `match A as a -> B`: its op type and optional label."""

    op: str
    label: str | None
    span: Span


@dataclass(frozen=True)
class Predicate:
    """One `where` condition, on the node `label` (None: the last node of the chain).

    kind: "attr" (attribute compared with a value), "dtype" (element type of input 0),
    "constant" (`input[i] is [not] constant`), "input" (`input[i] == value`)."""

    kind: str
    label: str | None
    name: str                 # attribute name; "dtype"; "input"
    compare: str              # "==", "!=", "in", "is", "is not"
    value: Any
    index: int | None
    span: Span
    value_span: Span


@dataclass(frozen=True)
class Action:
    """One action: set / remove an attribute, op, bypass, insert before/after, rename."""

    kind: str
    label: str | None
    span: Span
    attr: str | None = None
    value: Any = None
    where: str | None = None  # insert: "before" | "after"
    call: Call | None = None  # insert: the new node, `Cast(to=10)`
    value_span: Span | None = None


@dataclass(frozen=True)
class Expr:
    """One node of a pattern rule's tree (its pattern, conditions and replacement).

    kind: "num" / "str" / "name" (value: the literal or name; `c.mode` is a name), "opt"
    (`b?`), "call" (value: op types joined by "|", or a function name; args), "kw"
    (value: attribute name; args: its Expr), "splat" (`**c`; value: the label), "list",
    "bin" / "cmp" (value: the operator; args: two Exprs), "in", "and", "or", "not", "neg",
    "index" (args: the Expr and the index), "slice" (args: the Expr, start, stop; None
    where omitted)."""

    kind: str
    value: Any
    args: tuple
    span: Span
    label: str | None = None  # `Op(...) as label`


@dataclass(frozen=True)
class RuleSpec:
    """`rule NAME "summary" { match ... where ... ACTIONS }`, as parsed and checked against
    the ONNX schemas (gancc.spec.checks). The rewrite engine runs it (gancc.passes.rules)."""

    name: str
    summary: str
    nodes: tuple[NodePattern, ...]
    predicates: tuple[Predicate, ...]
    actions: tuple[Action, ...]
    span: Span
    name_span: Span
    text: str = ""            # the rule as written, for `gancc passes NAME`
    # a pattern rule (`rule NAME exact { match Op(..) where .. let .. => Op(..) }`): nodes,
    # predicates and actions are empty, these are set (gancc.passes.rules_pattern runs it)
    exactness: str | None = None      # "exact" | "lossy"
    pattern: Expr | None = None
    steps: tuple[tuple, ...] = ()     # ("where", Expr) or ("let", name, Expr), in order
    replacement: Expr | None = None

    @property
    def source(self) -> str:
        return f"{self.span.file}:{self.span.line}"

    def node(self, label: str | None) -> NodePattern:
        if label is None:
            return self.nodes[-1]
        return next(n for n in self.nodes if n.label == label)

    def index(self, label: str | None) -> int:
        """Position in the chain of the node `label` names (None: the last node)."""
        if label is None:
            return len(self.nodes) - 1
        return next(i for i, n in enumerate(self.nodes) if n.label == label)


def find_rule(rules: tuple[RuleSpec, ...], name: str) -> RuleSpec | None:
    return next((r for r in rules if r.name == name), None)


@dataclass(frozen=True)
class ArchsDir:
    """`archs "folder/"`: Python architectures the spec's `arch NAME(...)` may name, loaded at
    build/check time (gancc.archs.user), not by the parser."""

    path: Path
    span: Span


@dataclass(frozen=True)
class RewritesDir:
    """`rewrites "folder/"`: Python rewrites the spec's pipelines may name. The parser only
    records the folder; the pass factory (gancc.passes.factory) loads it."""

    path: Path
    span: Span


@dataclass(frozen=True)
class Aipp:
    """Static AIPP for one input: field name -> value, as in the protobuf text format."""

    input: str
    fields: tuple[tuple[str, Any], ...]
    spans: dict[str, Span] = field(hash=False, compare=False)
    span: Span | None = None
    statements: tuple = ()   # `normalize mean=[..] std=[..]` etc. (gancc.aipp.resolve.Statement)


@dataclass(frozen=True)
class AtcOptions:
    soc_version: str | None = None     # the first (or only) SoC of `soc_version A, B`
    output: str | None = None          # base name of the .om; `_bs<N>` is appended per batch
    log: str = "error"
    input_format: str = "NCHW"
    out_nodes: tuple[str, ...] = ()
    output_type: str | None = None
    precision_mode: str | None = None
    extra: tuple[str, ...] = ()
    spans: dict[str, Span] = field(default_factory=dict, hash=False, compare=False)
    # the rest of the typed atc option set (gancc/stages/atc.py, docs/ascend.md)
    output_type_nodes: tuple[tuple[str, str], ...] = ()   # ("maps", "FP16"): per-output type
    dynamic_batch_size: tuple[int, ...] = ()
    dynamic_image_size: tuple[tuple[int, int], ...] = ()
    dynamic_dims: tuple[tuple[int, ...], ...] = ()
    input_fp16_nodes: tuple[str, ...] = ()
    op_select_implmode: str | None = None
    keep_dtype: tuple[str, ...] = ()       # lines of the --keep_dtype file gancc writes
    fusion_off: tuple[str, ...] = ()       # pass names switched off (--fusion_switch_file)
    enable_small_channel: bool | None = None
    # every SoC of `soc_version Ascend310P3, Ascend910B3`: one atc command per (SoC, batch)
    soc_versions: tuple[str, ...] = ()
    auto_tune_mode: tuple[str, ...] = ()   # ("RL", "GA"): --auto_tune_mode="RL,GA"
    env: tuple[tuple[str, str], ...] = ()  # `env NAME "value"`: exported at the top of atc.sh
    per_batch: tuple[BatchAtcOptions, ...] = ()   # `batch 1, 16 { ... }`: options for some sizes

    def for_batch(self, batch: int) -> BatchAtcOptions | None:
        """The `batch ... { }` block that lists `batch`, if any (a size is in one block only)."""
        return next((b for b in self.per_batch if batch in b.batches), None)


@dataclass(frozen=True)
class BatchAtcOptions:
    """`batch 1, 16 { auto_tune_mode "RL,GA" }` in an atc block: for those batch sizes' atc
    commands, each key replaces the block's value (gancc/stages/atc.py applies them)."""

    batches: tuple[int, ...]
    options: tuple[tuple[str, Any], ...]      # (key, value read as the atc block reads it)
    span: Span
    batch_spans: tuple[Span, ...] = field(default=(), hash=False, compare=False)
    spans: dict[str, Span] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Requirement:
    """`require pixel_cosine >= 0.99 [for maps]`: a threshold that fails the build."""

    metric: str
    compare: str
    threshold: float
    output: str | None
    span: Span

    def holds(self, value: float) -> bool:
        return {">=": value >= self.threshold, ">": value > self.threshold,
                "<=": value <= self.threshold, "<": value < self.threshold}[self.compare]


@dataclass(frozen=True)
class Validation:
    reference: str = "pytorch"          # pytorch | onnx | none
    samples: int = 2
    seed: int = 0
    data: tuple[tuple[str, Call], ...] = ()
    requirements: tuple[Requirement, ...] = ()
    spans: dict[str, Span] = field(default_factory=dict, hash=False, compare=False)
    fp16: bool | None = None            # fp16 foresight; None: when atc compiles in fp16
    # onnxconverter-common's float16 graph as a second fp16 opinion: a third run of the final
    # graph per build, and the weaker figure on the CPU, so only when asked
    fp16_converter: bool = False


@dataclass(frozen=True)
class TemplateOrigin:
    """Where a model made from a template comes from, so that an error found after
    expansion (checks, the build) can name the model and both places (templates.in_model)."""

    template: str
    template_span: Span       # the template's name, in its declaration
    last_line: int            # the template's last line
    use: Span                 # `model NAME = template(...)`


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: PyTorchSource | OnnxSource | TensorFlowSource | TorchScriptSource | ExportedProgramSource
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    opset: int
    rewrites: tuple[PassStep, ...]
    aipp: tuple[Aipp, ...]
    atc: AtcOptions
    validation: Validation
    span: Span
    spans: dict[str, Span] = field(default_factory=dict, hash=False, compare=False)
    # the spec file's `rule`s and `rewrites` folders, which `rewrite { ... }` may name
    rules: tuple[RuleSpec, ...] = field(default=(), hash=False, compare=False)
    rewrite_dirs: tuple[RewritesDir, ...] = field(default=(), hash=False, compare=False)
    arch_dirs: tuple[ArchsDir, ...] = field(default=(), hash=False, compare=False)
    made_from: TemplateOrigin | None = field(default=None, hash=False, compare=False)

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def batch_sizes(self) -> tuple[int, ...]:
        """The batch sizes the atc commands are emitted for (all inputs share them)."""
        sizes: list[int] = []
        for inp in self.inputs:
            for b in inp.batch_sizes:
                if b not in sizes:
                    sizes.append(b)
        return tuple(sizes) or (1,)


@dataclass(frozen=True)
class SpecFile:
    path: Path
    models: tuple[ModelSpec, ...]
    source: str = field(repr=False, default="")
    rules: tuple[RuleSpec, ...] = ()             # in file order
    rewrite_dirs: tuple[RewritesDir, ...] = ()   # `rewrites "folder/"`, in file order
    arch_dirs: tuple[ArchsDir, ...] = ()         # `archs "folder/"`, in file order

    def model(self, name: str) -> ModelSpec:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)
