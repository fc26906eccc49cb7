"""Memory planning: run elementwise ops in place, into the buffer of an input that dies there.

``plan_memory(graph)`` sets ``graph.inplace = {node_index: input_position}``; the code
generator then emits that node as its ufunc with ``out=`` the input's array
(``v7 = xp.add(v3, v5, out=_reuse(v3, v5))``) instead of calling the op's forward, so no new
array is allocated. A node qualifies when

- its op is in :data:`ELEMENTWISE` (a table of ops whose forward is exactly one ufunc) or is a
  fused chain of them (:mod:`.fusion`), and its output is a floating array of rank >= 1;
- the chosen input has the output's shape and dtype (nothing is broadcast onto it);
- the input's *buffer* is dead after this node. Values that may share memory form one buffer:
  a view op's output and its base (``Op.view``), and the inputs and outputs of any op not
  known to return a fresh array. A buffer is never written when it holds an input, capture,
  constant or dynamic, or a value that is live at the end (outputs, mutations, gradients).

At run time ``_reuse`` also checks that the operands are C-contiguous, so the result has the
same memory layout as the freshly allocated one it replaces: planned code is bit-identical.
"""
from __future__ import annotations

# op name -> ufunc name, for ops whose forward is exactly ``ufunc(*inputs)``
UNARY = {"neg": "negative", "exp": "exp", "exp2": "exp2", "expm1": "expm1", "log": "log",
         "log2": "log2", "log10": "log10", "log1p": "log1p", "sqrt": "sqrt", "sin": "sin",
         "cos": "cos", "tan": "tan", "asin": "arcsin", "acos": "arccos", "atan": "arctan",
         "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "arcsinh",
         "acosh": "arccosh", "atanh": "arctanh", "abs": "absolute"}
BINARY = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "true_divide",
          "maximum": "maximum", "minimum": "minimum", "fmax": "fmax", "fmin": "fmin",
          "atan2": "arctan2"}
# written by hand below: relu = maximum(x, 0), square = x * x, threshold_backward
SPECIAL = {"relu", "square", "threshold_backward"}
ELEMENTWISE = set(UNARY) | set(BINARY) | SPECIAL

# ops (besides ELEMENTWISE) whose forward always returns a freshly allocated array that
# shares no memory with its inputs; every other op is assumed to possibly alias its inputs
FRESH = ELEMENTWISE | {"linear", "matmul", "sigmoid", "sigmoid_backward", "gelu",
                       "gelu_backward", "silu", "softplus", "softmax", "softmax_backward",
                       "log_softmax", "log_softmax_backward"}


def _reuse(target, *others):
    """``target`` when writing the result into it gives the layout a fresh array would have."""
    if target.flags.c_contiguous and all(o.flags.c_contiguous for o in others
                                         if hasattr(o, "flags")):
        return target
    return None


def _threshold_backward_into(xp, g, y, threshold, out):
    """``threshold_backward``'s forward, writing into ``out`` (same values, same dtype)."""
    if not xp.isfinite(g).all():
        return xp.where(y > threshold, g, 0).astype(g.dtype, copy=False)
    return xp.multiply(g, y > threshold, out=out)


HELPERS = {"_reuse": _reuse, "_threshold_backward_into": _threshold_backward_into}


def is_elementwise(node) -> bool:
    """Can ``node`` be emitted as a ufunc writing into a buffer of its output's shape?"""
    name = node.op.name
    if getattr(node.op, "steps", None) is not None:
        return True  # a fused chain
    if name not in ELEMENTWISE or len(node.outputs) != 1:
        return False
    o = node.outputs[0]
    if o.dtype.kind != "f" or o.shape == ():
        return False
    if name == "threshold_backward":
        return set(node.attrs) <= {"threshold"}
    return not node.attrs


def emit(name: str, args: list, attrs: dict, out: str, literal) -> str:
    """Python expression computing op ``name`` on argument expressions ``args`` into ``out``
    (an expression: an array or None). ``literal(value)`` renders an attribute value."""
    if name in UNARY:
        return f"xp.{UNARY[name]}({args[0]}, out={out})"
    if name in BINARY:
        return f"xp.{BINARY[name]}({args[0]}, {args[1]}, out={out})"
    if name == "relu":
        return f"xp.maximum({args[0]}, 0, out={out})"
    if name == "square":
        return f"xp.multiply({args[0]}, {args[0]}, out={out})"
    if name == "threshold_backward":
        thr = literal(attrs.get("threshold", 0.0))
        return f"_threshold_backward_into(xp, {args[0]}, {args[1]}, {thr}, {out})"
    raise KeyError(name)


def candidates(node) -> list:
    """Input positions whose buffer the node may write (same shape and dtype as the output;
    for a fused chain only inputs read by its first step alone)."""
    o = node.outputs[0]
    allowed = getattr(node.op, "first_only", None)
    out = []
    for p, v in enumerate(node.inputs):
        if v.shape == o.shape and v.dtype == o.dtype and (allowed is None or p in allowed):
            out.append(p)
    return out


def plan_memory(graph):
    """Choose in-place targets; the result is ``graph.inplace`` (node index -> input
    position)."""
    parent: dict = {}

    def find(k):
        while parent.get(k, k) != k:
            parent[k] = parent.get(parent[k], parent[k])
            k = parent[k]
        return k

    def union(a, b):
        ra, rb = find(id(a)), find(id(b))
        if ra != rb:
            parent[ra] = rb

    for node in graph.nodes:
        fresh = node.op.name in FRESH or getattr(node.op, "steps", None) is not None
        if getattr(node.op, "view", False):
            union(node.outputs[0], node.inputs[0])
        elif not fresh:
            for o in node.outputs:
                for v in node.inputs:
                    union(o, v)
        elif len(node.outputs) > 1:
            for o in node.outputs[1:]:
                for v in node.inputs:
                    union(o, v)
    pinned = set()
    for v in graph.inputs + graph.captures + graph.consts + graph.dynamics + \
            graph.live_values():
        pinned.add(find(id(v)))
    for node in graph.nodes:
        for v in node.inputs:
            if v.kind != "node":
                pinned.add(find(id(v)))
    last = {}
    for j, node in enumerate(graph.nodes):
        for v in node.inputs:
            last[find(id(v))] = j
    plan = {}
    for j, node in enumerate(graph.nodes):
        if not is_elementwise(node):
            continue
        allowed = getattr(node.op, "first_only", None)
        for p in candidates(node):
            r = find(id(node.inputs[p]))
            if allowed is not None and any(find(id(w)) == r for q, w in
                                           enumerate(node.inputs) if q not in allowed):
                continue  # a later step of the chain reads that memory
            if r not in pinned and last.get(r) == j:
                plan[j] = p
                break
    graph.inplace = plan
    return graph
