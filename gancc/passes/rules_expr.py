"""Values of a pattern rule's expressions (`where`, `let`, attribute values and new constants
of the replacement), evaluated against one match. docs/spec.md ("Rules") is the reference.

Numbers and int lists are numpy arrays (float constants in float64, so computed weights are
as exact as the Python rewrites' float64 arithmetic); strings are str; an absent optional
input or an unset attribute without a schema default is None. A value that cannot be had (a
tensor that is not a constant, an unknown shape) raises NotHeld with the reason, which the
rule reports as its decline.
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np
import onnx
from onnx import helper

from gancc.dtypes import ONNX_TYPES, type_name
from gancc.graph import Graph
from gancc.spec.checks import op_schema
from gancc.spec.model import Expr


class NotHeld(Exception):
    """A value a condition needs is not there (the reason is the message)."""


_PURE_KEY = f"{__name__}.pure"


class Match:
    """What a pattern bound: tensors (None: an absent optional input), labelled nodes, `let`
    values; and the graph it was matched in."""

    def __init__(self, graph: Graph, opset: int, pure: dict[int, tuple[str, ...]] | None = None,
                 compiled: dict | None = None):
        self.graph, self.opset = graph, opset
        self.tensors: dict[str, str | None] = {}
        self.labels: dict[str, onnx.NodeProto] = {}
        self.lets: dict[str, Any] = {}
        self.nodes: list[onnx.NodeProto] = []      # matched nodes, root first
        # id(expr) -> tensor names, of the expressions computed once per pass for each set
        # of constants they read (gancc.passes.rules_pure); their values, for this pass
        self.pure = pure or {}
        self.computed: dict = graph.memo(_PURE_KEY, dict) if self.pure else {}
        self.compiled: dict[int, Compiled] = compiled or {}    # compile_rule's table

    def snapshot(self) -> tuple:
        return dict(self.tensors), dict(self.labels), list(self.nodes)

    def restore(self, saved: tuple) -> None:
        self.tensors, self.labels, self.nodes = dict(saved[0]), dict(saved[1]), list(saved[2])


def attr_value(graph: Graph, node: onnx.NodeProto, name: str, opset: int) -> Any:
    """The attribute as set on `node`, else its schema default at `opset`, else None; lists
    as arrays, strings as str."""
    value = _set_attribute(node, name)
    if value is None:
        defaults = graph.memo(_DEFAULTS_KEY, dict)     # looking up a schema is slow
        key = (node.op_type, name, opset)
        if key not in defaults:
            defaults[key] = _schema_default(node.op_type, name, opset)
        value = defaults[key]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (list, tuple)):
        items = [v.decode() if isinstance(v, bytes) else v for v in value]
        return tuple(items) if items and isinstance(items[0], str) else np.asarray(items)
    return value


_DEFAULTS_KEY = f"{__name__}.defaults"


def _set_attribute(node: onnx.NodeProto, name: str) -> Any:
    """Graph.attr without decoding; the common kinds read directly (conditions read
    attributes of every candidate node)."""
    for a in node.attribute:
        if a.name == name:
            kind = a.type
            if kind == onnx.AttributeProto.STRING:
                return a.s
            if kind == onnx.AttributeProto.INT:
                return a.i
            if kind == onnx.AttributeProto.INTS:
                return list(a.ints)
            return helper.get_attribute_value(a)
    return None


def _schema_default(op: str, name: str, opset: int) -> Any:
    schema = op_schema(op, opset)
    attr = schema.attributes.get(name) if schema is not None else None
    if attr is not None and attr.default_value.type:
        return helper.get_attribute_value(attr.default_value)
    return None


def const_of(m: Match, name: str) -> np.ndarray | None:
    tensor = m.tensors.get(name)
    if tensor is None:
        return None
    value = m.graph.const_value(tensor)
    if value is None:
        raise NotHeld(f"{name} ('{tensor}') is not a constant")
    return value.astype(np.float64) if value.dtype.kind == "f" else np.asarray(value)


def evaluate(e: Expr, m: Match) -> Any:
    """The value of `e` in match `m` (NotHeld: it cannot be had, with the reason)."""
    fn = m.compiled.get(id(e))
    return (fn or compile_expr(e, m.pure))(m)


Compiled = Callable[[Match], Any]


def compile_rule(exprs, pure: dict[int, tuple[str, ...]]) -> dict[int, Compiled]:
    """id(expr) -> its compiled function, for `exprs` and all their subexpressions (a
    rule's, made once per rule: a pass then runs closures, not a walk of the tree per
    candidate node). `pure` marks what is computed once per pass (gancc.passes.rules_pure)."""
    table: dict[int, Compiled] = {}

    def walk(e):
        if not isinstance(e, Expr) or id(e) in table or e.kind in ("opt", "splat"):
            return
        if e.kind != "kw" and not (e.kind == "call" and e.value[:1].isupper()):  # not an op
            table[id(e)] = compile_expr(e, pure)
        for a in e.args:
            walk(a)
    for e in exprs:
        walk(e)
    return table


def compile_expr(e: Expr, pure: dict[int, tuple[str, ...]]) -> Compiled:
    """A function computing `e` in a match; a pure one looks its value up first."""
    fn = _compile(e, pure)
    deps = pure.get(id(e))
    if deps is None:
        return fn
    ident = id(e)
    only = deps[0] if len(deps) == 1 else None

    def memoised(m: Match) -> Any:
        if only is not None:                    # the common case (`pads`), without a loop
            key = (ident, m.tensors.get(only))
        else:
            key = (ident,) + tuple([m.tensors.get(n) for n in deps])
        found = m.computed.get(key)
        if found is None:
            try:
                value = fn(m)
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False       # shared by every match of the pass
                found = (value, None)
            except NotHeld as err:
                found = (None, err)
            m.computed[key] = found
        if found[1] is not None:
            raise NotHeld(str(found[1]))
        return found[0]
    return memoised


def _compile(e: Expr, pure: dict) -> Compiled:
    kind = e.kind
    if kind in ("num", "str"):
        value = e.value
        return lambda m: value
    if kind == "name":
        return _compile_name(e.value)
    if kind == "call":
        return _compile_call(e, pure)
    parts = [compile_expr(a, pure) if isinstance(a, Expr) else None for a in e.args]
    if kind == "list":
        return lambda m: _list([p(m) for p in parts])
    first = parts[0]
    if kind == "not":
        return lambda m: not truthy(first(m))
    if kind == "neg":
        return lambda m: -_number(first(m), e)
    if kind in ("index", "slice"):
        return lambda m: _subscript(e, first(m), parts[1:], m)
    second = parts[1]
    if kind == "and":
        return lambda m: truthy(first(m)) and truthy(second(m))
    if kind == "or":
        return lambda m: truthy(first(m)) or truthy(second(m))
    if kind == "in":
        return lambda m: _contains(first(m), second(m))
    if kind == "cmp":
        op = e.value
        return lambda m: compare(op, first(m), second(m))
    return lambda m: _arithmetic(e, first(m), second(m))


def _list(items: list) -> Any:
    return tuple(items) if any(isinstance(i, str) for i in items) else np.asarray(items)


def _contains(left: Any, right: Any) -> bool:
    return any(equal(left, item) for item in right)


def _compile_name(name: str) -> Compiled:
    if name in ("none", "true", "false"):
        value = {"none": None, "true": True, "false": False}[name]
        return lambda m: value
    label, dot, attr = name.partition(".")
    if dot:
        return lambda m: attr_value(m.graph, m.labels[label], attr, m.opset)

    def bound(m: Match) -> Any:
        if name in m.lets:
            return m.lets[name]
        if name in m.tensors:
            return const_of(m, name)
        raise NotHeld(f"'{name}' labels a node: use {name}.attr, readers({name}), ...")
    return bound


def truthy(value: Any) -> bool:
    if value is True or value is False:         # conditions are mostly comparisons: fast
        return value
    if value is None:
        return False
    if isinstance(value, np.ndarray):
        return value.size > 0 and bool(np.all(value))
    return bool(value)


_SCALARS = (int, float, np.integer, np.floating)


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, _SCALARS) and isinstance(b, _SCALARS):      # the common case, fast
        return bool(a == b)
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return a is b if a is None or b is None else a == b
    if isinstance(a, tuple) or isinstance(b, tuple):
        return tuple(a) == tuple(b)
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim and b.ndim and a.size != b.size:
        return False
    return bool(np.all(a.reshape(-1) == b.reshape(-1)) if a.ndim and b.ndim else np.all(a == b))


def compare(op: str, a: Any, b: Any) -> bool:
    if op == "==":
        return equal(a, b)
    if op == "!=":
        return not equal(a, b)
    if a is None or b is None:
        return False
    if isinstance(a, _SCALARS) and isinstance(b, _SCALARS):      # the common case, fast
        return bool(_ORDER[op](a, b))
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim and b.ndim and a.shape != b.shape:
        raise NotHeld(f"{show(a)} and {show(b)} have different lengths")
    return bool(np.all(_ORDER[op](a, b)))


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _number(value: Any, e: Expr) -> Any:
    if value is None or isinstance(value, (str, tuple)):
        raise NotHeld(f"{show(value)} is not a number (at {e.span.line}:{e.span.col})")
    return np.asarray(value) if isinstance(value, (list, np.ndarray)) else value


def _arithmetic(e: Expr, left: Any, right: Any) -> Any:
    if e.value == "++":
        parts = [np.atleast_1d(_number(v, e)) for v in (left, right)]
        return np.concatenate(parts)
    a, b = _number(left, e), _number(right, e)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.ndim and b.ndim \
            and a.shape != b.shape and a.ndim == b.ndim == 1:
        raise NotHeld(f"{show(a)} {e.value} {show(b)}: lists of different lengths")
    if e.value == "+":
        return a + b
    if e.value == "-":
        return a - b
    if e.value == "*":
        return a * b
    if e.value == "//":
        return a // b
    return np.true_divide(a, b)


def _subscript(e: Expr, base: Any, bounds: list, m: Match) -> Any:
    if base is None:
        raise NotHeld(f"nothing to index (at {e.span.line}:{e.span.col})")
    if e.kind == "index":
        index = int(bounds[0](m))
        if not -len(base) <= index < len(base):
            raise NotHeld(f"index {index} is out of {show(base)}")
        return base[index]
    start, stop = (None if b is None else int(b(m)) for b in bounds)
    return base[start:stop]


def _tensor_arg(e: Expr, m: Match) -> str | None:
    """The tensor a function's argument names: a bound tensor, or a labelled node's output."""
    if e.kind == "name" and e.value in m.tensors:
        return m.tensors[e.value]
    if e.kind == "name" and e.value in m.labels:
        return m.labels[e.value].output[0]
    raise NotHeld(f"{e.value if e.kind == 'name' else 'this'} is not a tensor of the pattern")


def _compile_call(e: Expr, pure: dict) -> Compiled:
    name, operand, rest = e.value, e.args[0], e.args[1:]
    if name in _TENSOR_FUNCTIONS:
        fn = _TENSOR_FUNCTIONS[name]
        return lambda m: fn(m, _tensor_arg(operand, m), *rest)
    parts = [compile_expr(a, pure) for a in e.args]
    return lambda m: _function(e, name, [p(m) for p in parts])


def _function(e: Expr, name: str, args: list) -> Any:
    if name == "default":
        return args[1] if args[0] is None else args[0]
    if name == "cast":
        return np.asarray(args[0]).astype(onnx.helper.tensor_dtype_to_np_dtype(
            ONNX_TYPES[args[1]]))
    if name in ("zeros", "ones"):
        return (np.zeros if name == "zeros" else np.ones)(int(args[0]), np.int64)
    if name == "trailing":
        value = np.asarray(args[0])
        return value.reshape(value.shape + (1,) * max(0, int(args[1]) - value.ndim))
    value = _number(args[0], e)
    if name == "len":
        return int(np.size(value))
    if name in ("max", "min", "sum") and np.size(value) == 0:
        raise NotHeld(f"{name}() of an empty list")
    return {"all": lambda v: bool(np.all(v)), "any": lambda v: bool(np.any(v)),
            "max": np.max, "min": np.min, "sum": np.sum, "abs": np.abs,
            "sqrt": np.sqrt}[name](value)


def _shape(m: Match, tensor: str | None, *_) -> np.ndarray:
    dims = m.graph.memo("gancc.passes.rules_expr.shapes", lambda: _shapes(m.graph)).get(tensor)
    if dims is None:
        raise NotHeld(f"the shape of '{tensor}' is not known")
    return np.asarray(dims, np.int64)


def _shapes(graph: Graph) -> dict[str, list[int]]:
    from gancc.graph.types import value_dims
    from gancc.graph.weightfree import weight_free_bytes

    try:
        model = onnx.shape_inference.infer_shapes(weight_free_bytes(graph.model))
    except Exception:   # a graph inference cannot follow: what the graph declares
        model = graph.model
    table = {}
    for v in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        dims = value_dims(v)
        if dims is not None:
            table[v.name] = [d if isinstance(d, int) else -1 for d in dims]
    for t in graph.model.graph.initializer:
        table[t.name] = list(t.dims)
    return table


def _dtype(m: Match, tensor: str | None, *_) -> str:
    elem = m.graph.elem_type(tensor) if tensor else None
    if elem is None and tensor:
        const = m.graph.initializer(tensor)
        elem = const.data_type if const is not None else None
    if elem is None:
        raise NotHeld(f"the dtype of '{tensor}' is not known")
    return type_name(elem)


def _readers(m: Match, tensor: str | None, *op: Expr) -> int:
    readers = m.graph.consumers(tensor) if tensor else []
    if op:
        wanted = evaluate(op[0], m)
        readers = [r for r in readers if r.op_type == wanted]
    return len(readers)


_TENSOR_FUNCTIONS = {
    "shape": _shape,
    "rank": lambda m, t, *_: len(_shape(m, t)),
    "dtype": _dtype,
    "readers": _readers,
    "is_const": lambda m, t, *_: t is not None and m.graph.const_value(t) is not None,
    "is_output": lambda m, t, *_: t is not None and m.graph.is_graph_output(t),
}


def show(value: Any) -> str:
    """A value as a rule writes it, shortened: [0, 0, 1, 1], "reflect", none."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (np.ndarray, tuple, list)):
        flat = np.asarray(value).reshape(-1).tolist() if not isinstance(value, tuple) \
            else list(value)
        if isinstance(value, np.ndarray) and value.ndim == 0:
            return show(flat[0] if flat else None)
        text = ", ".join(show(v) for v in flat[:8])
        return f"[{text}{', ...' if len(flat) > 8 else ''}]"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)
