"""The ``vision_encoder`` contract module of the ``internvl`` family.

:class:`InternVLVisionEncoder` runs HF's InternViT tower (its own modules, so the numbers are
HF's), drops the CLS token, applies the 2x2 pixel shuffle and HF's projector (LayerNorm ->
Linear -> GELU -> Linear). HF's ``InternVLModel.pixel_shuffle`` is two view/permute rounds that
check divisibility with Python floats on the tensor's size; ours is
:func:`~mobile_mllm.model.reference.modules.space_to_channel_2x2` (the reference family's
downsampler), which orders each 2x2 block's channels the same way (top-left, top-right,
bottom-left, bottom-right; the parity test checks it against HF's) with the grid side fixed at
build time, so ``torch.export`` traces one static graph with a dynamic tile batch.

Two HF operators do not lower to XNNPACK and would run outside the delegate (on ExecuTorch's
portable kernels) between delegated pieces; :func:`use_delegable_ops` rewrites both in place,
with the same parameters and the same function:

- ``nn.LayerNorm`` (XNNPACK has no layer-norm kernel) -> :class:`MatmulLayerNorm`: mean and
  variance as a matmul with a ``1/C`` column, then ``rsqrt``, ``mul``, ``add``;
- SDPA attention, which ``torch.export`` decomposes into ``_safe_softmax`` (``eq``/``any``/
  ``logical_not``/``where``/``full_like`` on the scores) -> HF's own eager attention
  (``matmul``, ``softmax``, ``matmul``), selected through the tower config's attention
  implementation.

The token embedding and the static-cache decoder are the reference family's modules over the
HF language model's own layers (``checkpoint.py`` wires them).
"""

from __future__ import annotations

import torch
from torch import nn

from mobile_mllm.model.reference.modules import space_to_channel_2x2

__all__ = ["InternVLVisionEncoder", "MatmulLayerNorm", "use_delegable_ops"]


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
        self.register_buffer("average", torch.full((channels, 1), 1.0 / channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last dimension."""
        centred = x - torch.matmul(x, self.average)
        variance = torch.matmul(centred * centred, self.average)
        return centred * torch.rsqrt(variance + self.eps) * self.weight + self.bias


def use_delegable_ops(module: nn.Module) -> int:
    """Swap every ``nn.LayerNorm`` under ``module`` for :class:`MatmulLayerNorm` and pick eager attention.

    Returns:
        int: the number of norms replaced.
    """
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.LayerNorm) and len(child.normalized_shape) == 1 and child.elementwise_affine:
                setattr(parent, name, MatmulLayerNorm(child))
                replaced += 1
    config = getattr(module, "config", None)
    if config is not None:  # HF attention reads the implementation from its config at every call
        config._attn_implementation = "eager"
    return replaced


class InternVLVisionEncoder(nn.Module):
    """``vision_encoder`` contract method: tiles ``[B, 3, S, S]`` -> ``[B, (S/patch/2)**2, D]``.

    Args:
        tower (nn.Module): HF ``InternVLVisionModel`` (``last_hidden_state`` = CLS + patch tokens).
        projector (nn.Module): HF ``InternVLMultiModalProjector``.
        grid_side (int): patches per side of one tile (``image_size // patch_size``, even).
    """

    def __init__(self, *, tower: nn.Module, projector: nn.Module, grid_side: int) -> None:
        super().__init__()
        self.tower = tower
        self.projector = projector
        self.grid_side = grid_side

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        """Normalised tiles -> image embeddings in the decoder's width."""
        hidden = self.tower(pixel_values=tiles).last_hidden_state[:, 1:, :]  # CLS first (vision_feature_select_strategy "default")
        return self.projector(space_to_channel_2x2(hidden, self.grid_side))
