"""``nn.MultiheadAttention`` with PyTorch's parameters, initialisation and mask rules."""
from __future__ import annotations

from ... import ops
from .. import init
from ..functional.attention import _canonical_masks, _mha, _mha_entry
from ..parameter import Parameter
from .linear import Linear
from .module import Module

__all__ = ["MultiheadAttention"]


class NonDynamicallyQuantizableLinear(Linear):
    """A Linear under PyTorch's name for ``MultiheadAttention.out_proj`` (same parameters)."""


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al.): ``concat(head_1..head_H) @ W_o`` with
    ``head_i = softmax(q W_q^i (k W_k^i)^T / sqrt(d)) v W_v^i``.

    Parameters as in PyTorch: ``in_proj_weight`` ``(3E, E)`` (q, k, v stacked) or, when
    ``kdim``/``vdim`` differ from ``embed_dim``, ``q_proj_weight`` ``(E, E)``,
    ``k_proj_weight`` ``(E, kdim)``, ``v_proj_weight`` ``(E, vdim)``; ``in_proj_bias``
    ``(3E,)``; ``out_proj`` (a Linear); ``bias_k``/``bias_v`` ``(1, 1, E)`` with
    ``add_bias_kv``. Inputs are ``(L, N, E)``, ``(N, L, E)`` with ``batch_first``, or
    unbatched ``(L, E)``.

    Example::

        mha = nn.MultiheadAttention(64, 4, batch_first=True)
        out, weights = mha(x, x, x, key_padding_mask=pad)   # pad: (N, S) bool, True = ignore
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater "
                             f"than 0, got embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible "
                             f"by num_heads ({num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: dropout must be in [0, 1], got {dropout}")
        kw = {"dtype": dtype, "device": device}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        empty = ops.creation.empty
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(empty(1, 1, embed_dim, **kw))
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # PyTorch's: xavier-uniform projections, zero biases, xavier-normal bias_k/v; out_proj
        # keeps Linear's default weight init
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """Returns ``(attn_output, attn_weights)``; weights are None unless ``need_weights``.

        ``key_padding_mask`` ``(N, S)`` and ``attn_mask`` ``(L, S)`` or
        ``(N*num_heads, L, S)``: bool (``True`` = not attended) or float (added to the
        scores). ``is_causal`` is a hint that ``attn_mask`` is the causal mask.
        """
        op = type(self).__name__
        batched, q, k, v, kpm = _mha_entry(
            op, query, key, value, self.embed_dim, key_padding_mask, attn_mask,
            self.batch_first, self.kdim, self.vdim)
        kpm, mask, causal = _canonical_masks(op, q, kpm, attn_mask, is_causal, need_weights)
        out, w = _mha(q, k, v, self.num_heads, self.in_proj_weight, self.in_proj_bias,
                      self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
                      self.out_proj.weight, self.out_proj.bias, self.training, kpm,
                      need_weights, mask, self.q_proj_weight, self.k_proj_weight,
                      self.v_proj_weight, average_attn_weights, causal, self.batch_first, op)
        if not batched:
            out = out.squeeze(0 if self.batch_first else 1)
            if w is not None:
                w = w.squeeze(0)
        return out, w
