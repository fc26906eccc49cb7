"""The user-facing entry points to the engine: ``backward`` and ``autograd.grad``."""
from __future__ import annotations

from .. import _state
from .graph import run_backward


def _as_list(x):
    if x is None:
        return None
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _root_grads(outputs, grad_outputs, op: str):
    from ..tensor import Tensor
    grads = []
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"{op}: got {len(grad_outputs)} grad_outputs for {len(outputs)} "
                           f"outputs")
    for out, g in zip(outputs, grad_outputs):
        if not isinstance(out, Tensor):
            raise TypeError(f"{op}: outputs must be Tensors, got {type(out).__name__}")
        if not out.requires_grad:
            raise RuntimeError(f"{op}: element 0 of tensors does not require grad and does "
                               f"not have a grad_fn (shape {tuple(out.shape)}); did you run "
                               f"it under no_grad, or forget requires_grad=True?")
        if g is None:
            if out._data.size != 1:
                raise RuntimeError(
                    f"{op}: grad can be implicitly created only for scalar outputs, but the "
                    f"output has shape {tuple(out.shape)}; pass a gradient of that shape")
            g = Tensor._wrap(out._dev.xp.ones(out._data.shape, out._data.dtype), out._dev)
            if _state.tracer is not None:
                _state.tracer.constant(g)
        elif not isinstance(g, Tensor):
            from ..ops.creation import tensor
            g = tensor(g, dtype=out.dtype)
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(f"{op}: gradient has shape {tuple(g.shape)} but the output has "
                               f"shape {tuple(out.shape)}")
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves (or of ``inputs``)."""
    if grad_tensors is None and inputs is None and not create_graph and \
            getattr(tensors, "requires_grad", False) and tensors._data.size == 1:
        # the common `loss.backward()`: skip the general argument handling
        d = tensors._data
        one = tensors.__class__._wrap(tensors._dev.xp.ones(d.shape, d.dtype), tensors._dev)
        if _state.tracer is not None:  # a traced training step: the seed is a constant
            _state.tracer.constant(one)
        run_backward([tensors], [one], retain_graph=bool(retain_graph))
        return
    outs = _as_list(tensors)
    grads = _root_grads(outs, _as_list(grad_tensors), "backward")
    if retain_graph is None:
        retain_graph = create_graph
    if inputs is not None:
        inputs = _as_list(inputs)
        res = run_backward(outs, grads, retain_graph=retain_graph, create_graph=create_graph,
                           inputs=inputs)
        for t, g in zip(inputs, res):
            if g is not None:
                g = g if create_graph else g.detach()
                t.grad = g.clone() if t.grad is None else t.grad + g
        return
    run_backward(outs, grads, retain_graph=retain_graph, create_graph=create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=False, materialize_grads=False):
    """Return the gradients of ``outputs`` with respect to ``inputs`` (no ``.grad`` writes)."""
    outs = _as_list(outputs)
    single = not isinstance(inputs, (list, tuple))
    ins = _as_list(inputs)
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"autograd.grad: input {i} (shape {tuple(t.shape)}) does not "
                               f"require grad")
    grads = _root_grads(outs, _as_list(grad_outputs), "autograd.grad")
    if retain_graph is None:
        retain_graph = create_graph
    res = run_backward(outs, grads, retain_graph=retain_graph, create_graph=create_graph,
                       inputs=ins)
    for i, g in enumerate(res):
        if g is None:
            if materialize_grads:
                from ..ops.creation import zeros_like
                res[i] = zeros_like(ins[i])
            elif not allow_unused:
                raise RuntimeError(f"autograd.grad: input {i} (shape {tuple(ins[i].shape)}) "
                                   f"was not used in the graph; pass allow_unused=True if "
                                   f"this is intended")
        elif not create_graph:
            res[i] = g.detach()
    return tuple(res) if not single else (res[0],)
