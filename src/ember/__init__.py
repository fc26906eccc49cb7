"""ember: a deep learning framework on NumPy — eager tensors with autograd (PyTorch names),
graph mode, Keras- and fastai-style training, ONNX deployment.

    import ember as em
    x = em.tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward()
    x.grad  # tensor([[2., 4.]])
"""
import math as _math
import warnings as _warnings

# NumPy warns on log(-1), 1/0...; PyTorch returns NaN/inf silently (anomaly mode finds them).
# The filter only matches warnings raised from ember's own modules.
_warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"ember(\.|$)")

from .dtypes import (  # noqa: F401,E402
    bfloat16, bool_ as bool, dtype, finfo, float16, float32, float64, get_default_dtype, iinfo,
    int8, int16, int32, int64, promote_types, result_type, set_default_dtype, uint8)
from .dtypes import float16 as half, float32 as float, float64 as double  # noqa: F401
from .dtypes import int16 as short, int32 as int, int64 as long  # noqa: F401
from .backend import Device, device  # noqa: F401
from .tensor import Size, Tensor, set_printoptions  # noqa: F401
from .tensor import (  # noqa: F401  (old-style typed constructors: LongTensor([1, 2]))
    BFloat16Tensor, BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor,
    IntTensor, LongTensor, ShortTensor)
from . import autograd  # noqa: F401
from .autograd import (  # noqa: F401
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
    set_grad_enabled)
from .autograd.functional import grad, value_and_grad  # noqa: F401
from .ops.arithmetic import (  # noqa: F401
    cast, add, sub, rsub, mul, trunc_div, div, true_divide, divide, floor_divide,
    remainder, fmod, pow, float_power, maximum, minimum, fmax, fmin, atan2, arctan2, lerp,
    addcmul, addcdiv, neg, negative, positive, logaddexp, xlogy, hypot)
from .ops.unary import (  # noqa: F401
    exp, exp2, expm1, log, log2, log10, log1p, sqrt, rsqrt, sin, cos, tan, asin, acos,
    atan, sinh, cosh, tanh, asinh, acosh, atanh, reciprocal, erf, erfc, abs, sign, sgn,
    floor, ceil, trunc, fix, frac, square, absolute, round, logit, nan_to_num)
from .ops.activation import (  # noqa: F401
    relu, sigmoid, gelu, silu, softplus, softmax, log_softmax)
from .ops.comparison import (  # noqa: F401
    eq, ne, lt, le, gt, ge, less, less_equal, greater, greater_equal, not_equal,
    logical_and, logical_or, logical_xor, bitwise_and, bitwise_or, bitwise_xor,
    logical_not, isnan, isinf, isfinite, isposinf, isneginf, signbit, bitwise_not, equal,
    allclose, isclose, isin, where, clamp, clip, clamp_min, clamp_max)
from .ops.reduction import (  # noqa: F401
    sum, mean, nansum, nanmean, prod, amax, amin, max, min, argmax, argmin, var, std,
    var_mean, std_mean, logsumexp, cumsum, cumprod, norm, all, any, count_nonzero, diff,
    bincount, histc, aminmax, dist)
from .ops.shape import (  # noqa: F401
    reshape, view, view_as, reshape_as, flatten, ravel, unflatten, permute, transpose,
    swapaxes, swapdims, t, movedim, moveaxis, squeeze, unsqueeze, expand, expand_as,
    broadcast_to, broadcast_shapes, broadcast_tensors, atleast_1d, atleast_2d, clone,
    contiguous, cat, concat, concatenate, stack, hstack, vstack, narrow, select, split,
    chunk, tensor_split, unbind, flip, fliplr, flipud, roll, repeat, tile,
    repeat_interleave, triu, tril, diagonal, trace, pad, meshgrid, diag, diag_embed, diagflat,
    rot90)
from .ops.indexing import (  # noqa: F401
    index_put, gather, scatter, scatter_add, take_along_dim, index_select, index_add,
    masked_fill, masked_select, nonzero, argwhere, index_fill)
from .ops.linalg import (  # noqa: F401
    matmul, mm, bmm, mv, dot, inner, outer, ger, einsum, tensordot, addmm, baddbmm, addmv,
    cdist, det, inverse, cross)
from .ops.sorting import (  # noqa: F401
    sort, argsort, msort, topk, kthvalue, median, unique, searchsorted, bucketize, quantile)
from .ops.creation import (  # noqa: F401
    tensor, as_tensor, asarray, from_numpy, from_dlpack, zeros, ones, empty, full,
    zeros_like, ones_like, empty_like, full_like, arange, linspace, logspace, eye,
    triu_indices, tril_indices)
from .ops.random import (  # noqa: F401
    Generator, default_generator, manual_seed, seed, initial_seed, get_rng_state,
    set_rng_state, rand, randn, randint, randperm, normal, rand_like, randn_like,
    randint_like, bernoulli, multinomial)
from . import ops  # noqa: F401,E402
from . import cuda  # noqa: F401,E402
from . import linalg  # noqa: F401,E402
from . import nn  # noqa: F401,E402
from .nn.functional import cosine_similarity, pairwise_distance  # noqa: F401,E402
from . import utils  # noqa: F401,E402
from . import optim  # noqa: F401,E402
from . import datasets  # noqa: F401,E402
from .serialization import load, save  # noqa: F401,E402
from .jit import jit  # noqa: F401,E402


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend=None, mode=None,
            options=None, disable: bool = False):
    """PyTorch's ``torch.compile`` spelling of :func:`ember.jit` (the other arguments are
    accepted for compatibility; ember has one compiler)."""
    if model is None:
        return lambda m: jit(m, disable=disable)
    return jit(model, disable=disable)

__version__ = "0.1.0"

pi, e, inf, nan = _math.pi, _math.e, _math.inf, _math.nan  # PyTorch's torch.pi, torch.inf...


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


# The high-level faces and deployment load on first use (``ember.keras``, ``ember.onnx``...),
# so ``import ember`` stays quick for scripts that only need tensors.
_LAZY = ("keras", "learner", "train", "onnx", "quantize", "runtime")


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'ember' has no attribute '{name}'")
