"""The ``vision_encoder`` contract module of the ``internvl`` family.

:class:`InternVLVisionEncoder` runs HF's InternViT tower (its own modules, so the numbers are
HF's), drops the CLS token, applies the 2x2 pixel shuffle and HF's projector (LayerNorm ->
Linear -> GELU -> Linear). HF's ``InternVLModel.pixel_shuffle`` is two view/permute rounds that
check divisibility with Python floats on the tensor's size; ours is
:func:`~mobile_mllm.model.reference.modules.space_to_channel_2x2` (the reference family's
downsampler), which orders each 2x2 block's channels the same way (top-left, top-right,
bottom-left, bottom-right; the parity test checks it against HF's) with the grid side fixed at
build time, so ``torch.export`` traces one static graph with a dynamic tile batch.

The tower's LayerNorms and attention are rewritten into delegable operators at load
(:func:`mobile_mllm.model.delegable.use_delegable_ops`).

The token embedding and the static-cache decoder are the reference family's modules over the
HF language model's own layers (``checkpoint.py`` wires them).
"""

from __future__ import annotations

import torch
from torch import nn

from mobile_mllm.model.reference.modules import space_to_channel_2x2

__all__ = ["InternVLVisionEncoder"]


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
