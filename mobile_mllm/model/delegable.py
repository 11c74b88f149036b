"""HF modules rewritten in operators XNNPACK delegates, for every Hugging Face family's adapter.

HF operators that do not lower to XNNPACK would run outside the delegate (on ExecuTorch's
portable kernels) between delegated pieces; :func:`use_delegable_ops` rewrites them in place,
with the same parameters and the same function:

- ``nn.LayerNorm`` (XNNPACK has no layer-norm kernel) -> :class:`MatmulLayerNorm`: mean and
  variance as a matmul with a ``1/C`` column, then ``rsqrt``, ``mul``, ``add``; likewise the
  decoder's RMSNorms (``mean`` over the last dimension does not lower) -> :class:`MatmulRMSNorm`;
- SDPA attention, which ``torch.export`` decomposes into ``_safe_softmax`` (``eq``/``any``/
  ``logical_not``/``where``/``full_like`` on the scores) -> HF's own eager attention
  (``matmul``, ``softmax``, ``matmul``), selected through the tower config's attention
  implementation.

The families call :func:`use_delegable_ops` when they load a checkpoint (``internvl``, ``smolvlm``),
so the export report shows the towers and decoders delegated but for data movement.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MatmulLayerNorm", "MatmulRMSNorm", "use_delegable_ops"]


def _average_column(channels: int) -> torch.Tensor:
    """``[C, 1]`` of ``1/C``: ``x @ it`` is the mean over the last dimension as one matmul XNNPACK runs."""
    return torch.full((channels, 1), 1.0 / channels)


class MatmulLayerNorm(nn.Module):
    """``nn.LayerNorm`` over the last dimension, written in ops XNNPACK delegates (same parameters, shared).

    Args:
        norm (nn.LayerNorm): the norm to replace (its ``weight``/``bias`` are reused, not copied).
    """

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        (channels,) = norm.normalized_shape
        self.weight = norm.weight
        self.bias = norm.bias
        self.eps = norm.eps
        self.register_buffer("average", _average_column(channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last dimension."""
        centred = x - torch.matmul(x, self.average)
        variance = torch.matmul(centred * centred, self.average)
        return centred * torch.rsqrt(variance + self.eps) * self.weight + self.bias


class MatmulRMSNorm(nn.Module):
    """An HF ``*RMSNorm`` (``weight * x / sqrt(mean(x**2) + eps)``, computed in float32) in ops XNNPACK delegates.

    Args:
        norm (nn.Module): the norm to replace: a ``weight`` of ``C`` and a ``variance_epsilon``
            (Qwen2/Llama RMSNorm); the weight is reused, not copied.
    """

    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.weight = norm.weight
        self.eps = float(norm.variance_epsilon)
        self.register_buffer("average", _average_column(norm.weight.shape[0]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``weight * x * rsqrt(mean(x**2) + eps)`` over the last dimension, in float32, back to ``x``'s dtype."""
        h = x.to(torch.float32)
        h = h * torch.rsqrt(torch.matmul(h * h, self.average) + self.eps)
        return self.weight * h.to(x.dtype)


def _delegable(module: nn.Module) -> nn.Module | None:
    """The replacement of one norm module, or None when it lowers as it is."""
    if isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1 and module.elementwise_affine:
        return MatmulLayerNorm(module)
    if type(module).__name__.endswith("RMSNorm") and hasattr(module, "variance_epsilon") and hasattr(module, "weight"):
        return MatmulRMSNorm(module)
    return None


def use_delegable_ops(module: nn.Module, *, eager_attention: bool = True) -> int:
    """Swap every LayerNorm/RMSNorm under ``module`` for its matmul form; optionally pick eager attention.

    Args:
        module (nn.Module): an HF model or part of one (its ``config``, if any, gets the attention choice).
        eager_attention (bool): switch HF attention to its eager form (matmul, softmax, matmul).
            Default True. The decoder's attention is rebuilt by the exporter over ExecuTorch's
            KV-cache ops, so only its norms need the rewrite.

    Returns:
        int: the number of norms replaced.
    """
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            swap = _delegable(child)
            if swap is not None:
                setattr(parent, name, swap)
                replaced += 1
    config = getattr(module, "config", None)
    if eager_attention and config is not None:  # HF attention reads the implementation from its config at every call
        config._attn_implementation = "eager"
    return replaced
