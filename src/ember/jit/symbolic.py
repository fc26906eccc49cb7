"""Define-then-run: build a graph from declared input shapes, before any data exists.

    spec = ember.jit.TensorSpec((32, 784))
    f = ember.jit.symbolic(model, spec)   # traced now, on placeholder inputs
    print(f.graph)                        # the IR, ready for passes, export or replay
    y = f(x)                              # runs the compiled graph on real data

The function is traced on zero-filled placeholders of the declared shapes, so it must not
branch on input values (such code makes the trace fall back to eager, with a warning, as
for ``ember.jit``). This is the entry point the Keras functional API builds on.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import dtypes as _dt
from ..autograd.grad_mode import no_grad
from .function import jit


@dataclass(frozen=True)
class TensorSpec:
    """A declared input: a concrete shape and a dtype (default float32)."""

    shape: tuple
    dtype: object = None

    def placeholder(self):
        from ..ops.creation import zeros
        d = _dt.as_dtype(self.dtype) if self.dtype is not None else _dt.get_default_dtype()
        if any(s is None or s < 0 for s in self.shape):
            raise ValueError(f"TensorSpec: every dimension needs a size to trace, got "
                             f"{self.shape} (dynamic sizes come with ONNX export)")
        return zeros(tuple(self.shape), dtype=d)


def symbolic(fn, *specs: TensorSpec, grad: bool = False):
    """Trace ``fn`` on placeholders for ``specs`` now; return the compiled function."""
    f = jit(fn)
    inputs = [s.placeholder() for s in specs]
    if grad:
        f(*inputs)
    else:
        with no_grad():
            f(*inputs)
    return f
