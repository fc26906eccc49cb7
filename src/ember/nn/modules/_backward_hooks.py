"""Module backward hooks (``register_full_backward_hook`` / ``_pre_hook``), built from forward
hooks so that modules without them pay nothing.

On each forward with gradients on, the module's tensor inputs and outputs pass through an
identity autograd Function whose backward reports the gradient flowing through it. When every
output's gradient has arrived the pre-hooks run (``hook(module, grad_output)``); when every
input's has, the full hooks run (``hook(module, grad_input, grad_output)``) — or at once with
``grad_input`` all None when no input needs a gradient. A hook's returned gradients replace the
reported ones for modules of one tensor input (full hooks) or output (pre-hooks).
"""
from __future__ import annotations

from ... import _state
from ...autograd.function import Function
from ...tensor import Tensor


class _Tap(Function):
    """Identity whose backward hands the gradient to ``on_grad`` (which may replace it)."""

    @staticmethod
    def forward(ctx, x, on_grad):
        ctx.on_grad = on_grad
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        r = ctx.on_grad(grad)
        return (grad if r is None else r), None


class _Call:
    """The gradients of one forward call, gathered as backward reaches them."""

    def __init__(self, module, n_inputs: int):
        self.module = module
        self.grad_inputs = [None] * n_inputs
        self.inputs_left = 0
        self.grad_outputs: list = []
        self.outputs_left = 0

    def output_grad(self, k):
        def on_grad(g):
            self.grad_outputs[k] = g
            self.outputs_left -= 1
            if self.outputs_left:
                return None
            replaced = None
            for hook in list(self.module._backward_pre_hooks.values()):
                r = hook(self.module, tuple(self.grad_outputs))
                if r is not None:
                    self.grad_outputs = list(r if isinstance(r, (tuple, list)) else (r,))
                    replaced = self.grad_outputs[k]
            if self.inputs_left == 0:
                self._run_full_hooks()
            return replaced
        return on_grad

    def input_grad(self, k):
        def on_grad(g):
            self.grad_inputs[k] = g
            self.inputs_left -= 1
            if self.inputs_left:
                return None
            r = self._run_full_hooks()
            return None if r is None else r[k]
        return on_grad

    def _run_full_hooks(self):
        replaced = None
        for hook in list(self.module._backward_hooks.values()):
            r = hook(self.module, tuple(self.grad_inputs), tuple(self.grad_outputs))
            if r is not None:
                self.grad_inputs = list(r if isinstance(r, (tuple, list)) else (r,))
                replaced = self.grad_inputs
        return replaced


def _wants(t) -> bool:
    return isinstance(t, Tensor) and t.requires_grad


def _pre_forward(module, args):
    if not _state.grad_enabled or not (module._backward_hooks or module._backward_pre_hooks):
        return None
    call = _Call(module, len(args))
    module.__dict__["_backward_hook_call"] = call
    new = list(args)
    for k, a in enumerate(args):
        if _wants(a):
            call.inputs_left += 1
            new[k] = _Tap.apply(a, call.input_grad(k))
    return tuple(new)


def _post_forward(module, args, out):
    call = module.__dict__.pop("_backward_hook_call", None)
    if call is None:
        return None
    outs = out if isinstance(out, (tuple, list)) else (out,)
    call.grad_outputs = [None] * len(outs)
    new = list(outs)
    for k, o in enumerate(outs):
        if _wants(o):
            call.outputs_left += 1
            new[k] = _Tap.apply(o, call.output_grad(k))
    if isinstance(out, (tuple, list)):
        return type(out)(new) if type(out) in (tuple, list) else type(out)(*new)
    return new[0]


def install(module) -> None:
    """Give ``module`` its hook tables and the forward hooks that tap its gradients."""
    d = module.__dict__
    if "_backward_hooks" in d:
        return
    from collections import OrderedDict
    d["_backward_hooks"] = OrderedDict()
    d["_backward_pre_hooks"] = OrderedDict()
    module.register_forward_pre_hook(_pre_forward)
    module.register_forward_hook(_post_forward)
