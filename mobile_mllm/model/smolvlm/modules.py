"""The ``vision_encoder`` of the ``smolvlm`` family: SigLIP tower, pixel shuffle, linear connector.

The HF vision transformer computes position ids per image from a patch mask with
``bucketize`` (NaViT-style, for padded images of any size). Our tiles are always whole
``image_size`` squares, so every patch is real and those ids are ``0 .. N-1`` in order: the
adapter adds the position table itself (row i is position i), which ``torch.export`` traces as
a static graph with no lookup (the HF path has data-dependent shapes from the mask sums and a
``bucketize`` that XNNPACK does not take). The HF
modules' own weights are used as they are; ``tests/mobile_mllm/model/smolvlm`` checks the
output against ``get_image_features``.

Deliberately not here: the decoder (the reference family's ``StaticCacheDecoder`` over the HF
Llama layers), loading (``checkpoint.py``).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SmolVLMVisionEncoder", "pixel_shuffle"]


def pixel_shuffle(x: torch.Tensor, side: int, scale: int) -> torch.Tensor:
    """Merge each ``scale x scale`` block of a square token grid into one token (space to channel).

    The output token of block (I, J) concatenates the block's tokens row by row
    (``x[I*scale + r, J*scale + c]`` for r, then c), as SmolVLM's connector does; output tokens
    are row-major.

    Args:
        x (torch.Tensor): ``[B, side**2, C]`` tokens, row-major.
        side (int): tokens per row and column (a multiple of ``scale``).
        scale (int): block side (SmolVLM's ``scale_factor``).

    Returns:
        torch.Tensor: ``[B, (side // scale)**2, scale**2 * C]``.

    Example:
        >>> t = torch.arange(16.0).reshape(1, 16, 1)  # 4x4 grid, values 0..15
        >>> pixel_shuffle(t, 4, 2)[0].tolist()
        [[0.0, 1.0, 4.0, 5.0], [2.0, 3.0, 6.0, 7.0], [8.0, 9.0, 12.0, 13.0], [10.0, 11.0, 14.0, 15.0]]
    """
    batch, _, channels = x.shape
    blocks = side // scale
    grid = x.reshape(batch, blocks, scale, blocks, scale, channels).permute(0, 1, 3, 2, 4, 5)
    return grid.reshape(batch, blocks * blocks, scale * scale * channels)


class SmolVLMVisionEncoder(nn.Module):
    """``vision_encoder`` contract method: tiles ``[B, 3, S, S]`` -> ``[B, (S/patch/scale)**2, D]``.

    Args:
        vision_model (nn.Module): the HF ``SmolVLMVisionTransformer`` / ``Idefics3VisionTransformer``
            (kept whole, so an exporter can switch its attention implementation).
        projection (nn.Linear): the connector's ``modality_projection.proj``.
        scale_factor (int): the connector's pixel-shuffle block side.
    """

    def __init__(self, *, vision_model: nn.Module, projection: nn.Linear, scale_factor: int) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.projection = projection
        self.scale_factor = scale_factor
        embeddings = vision_model.embeddings
        self.side = embeddings.num_patches_per_side
        # The table as a plain parameter (shared with the HF model, not copied): quantization rules
        # target Embedding modules, and a weight-only quantized table could not be added to the patches.
        self.position_table = embeddings.position_embedding.weight

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        """``tiles [B, 3, S, S]`` normalised -> image embeddings in the decoder's width."""
        embeddings = self.vision_model.embeddings
        patches = embeddings.patch_embedding(tiles).flatten(2).transpose(1, 2)
        hidden = patches + self.position_table  # ids 0..N-1 in order: the table itself, no lookup op
        hidden = self.vision_model.encoder(inputs_embeds=hidden, attention_mask=None).last_hidden_state
        hidden = self.vision_model.post_layernorm(hidden)
        return self.projection(pixel_shuffle(hidden, self.side, self.scale_factor))
