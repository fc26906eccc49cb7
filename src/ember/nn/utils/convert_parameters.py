"""Flatten parameters into one vector and back."""
from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...ops.shape import cat


def parameters_to_vector(parameters):
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters) -> None:
    start = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[start:start + n].reshape(p.shape))
            start += n
    if start != vec.numel():
        raise ValueError(f"vector_to_parameters: vector has {vec.numel()} elements but the "
                         f"parameters need {start}")
