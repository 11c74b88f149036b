"""The contract methods over a loaded :class:`~mobile_mllm.model.adapter.MultimodalModel` (PyTorch eager).

:class:`EagerMethods` is what the session runs on before anything is exported, and the
reference an exported program is compared with. It enforces the same limits a program has
(tile batch, prefill chunk, KV-cache length), so a session that works here does not first fail
on the phone. Deliberately not here: the loop (``session.py``), sampling, tokenization.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mobile_mllm.errors import ConfigError, ContractError
from mobile_mllm.runtime.methods import check_cache_fits

if TYPE_CHECKING:
    import torch

    from mobile_mllm.model.adapter import MultimodalModel

logger = logging.getLogger(__name__)

__all__ = ["EagerMethods"]


def _dtype_of(module: torch.nn.Module) -> torch.dtype:
    import torch

    for p in module.parameters():
        return p.dtype
    return torch.float32


class EagerMethods:
    """:class:`~mobile_mllm.runtime.methods.ModelMethods` over the model's three eager modules.

    Owns nothing but references to the modules; the KV cache lives in ``text_decoder``'s
    buffers, so two ``EagerMethods`` over one model share (and overwrite) one cache.

    Args:
        model (MultimodalModel): the loaded model (eval mode).
        tile_batch (int): largest number of tiles per ``vision_encoder`` call, as the NPU
            graph's static batch. Default 4.
        prefill_chunk (int): largest number of positions per ``text_decoder`` call. Default 128.

    Raises:
        ConfigError: ``tile_batch`` or ``prefill_chunk`` is not positive.
    """

    def __init__(self, model: MultimodalModel, *, tile_batch: int = 4, prefill_chunk: int = 128) -> None:
        if tile_batch < 1:
            raise ConfigError(f"tile_batch must be >= 1, got {tile_batch}")
        if prefill_chunk < 1:
            raise ConfigError(f"prefill_chunk must be >= 1, got {prefill_chunk}")
        self.model = model
        self.max_context_len = model.max_context_len
        self.max_tile_batch = tile_batch
        self.prefill_chunk = prefill_chunk
        self._vision_dtype = _dtype_of(model.vision_encoder)
        self._decoder_dtype = _dtype_of(model.text_decoder)

    def vision_encoder(self, tiles: torch.Tensor) -> torch.Tensor:
        """Tiles ``[B, 3, S, S]`` -> embeddings ``[B, N, D]`` (in the decoder's dtype), ``B <= max_tile_batch``."""
        import torch

        if tiles.dim() != 4 or tiles.shape[0] > self.max_tile_batch:
            raise ContractError(
                f"vision_encoder takes [B, 3, S, S] with B <= {self.max_tile_batch} tiles, got {tuple(tiles.shape)}"
            )
        with torch.inference_mode():
            return self.model.vision_encoder(tiles.to(self._vision_dtype)).to(self._decoder_dtype)

    def token_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[1, T]`` int64 -> embeddings ``[1, T, D]``."""
        import torch

        with torch.inference_mode():
            return self.model.token_embedding(tokens.to(torch.long))

    def text_decoder(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[1, T, D]`` at ``start_pos..`` -> float32 logits ``[1, V]`` of the last position."""
        import torch

        length = embeds.shape[1]
        start = int(start_pos.reshape(-1)[0])
        if length > self.prefill_chunk:
            raise ContractError(f"text_decoder takes at most {self.prefill_chunk} positions per call, got {length}")
        check_cache_fits(start, length, self.max_context_len)
        with torch.inference_mode():
            pos = torch.tensor([start], dtype=torch.long)
            logits = self.model.text_decoder(embeds.to(self._decoder_dtype), pos)
        return logits.reshape(1, -1).float()
