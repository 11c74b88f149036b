"""Load an InternVL-hf checkpoint directory into the contract modules.

Weights are read by transformers' own ``InternVLForConditionalGeneration.from_pretrained`` (its
key mapping and weight tying, no second copy of them here); a key the checkpoint lacks or one
the model does not use is an error naming it, not a silently random weight. The three contract
modules then share the HF model's parameters:

- ``vision_encoder``: :class:`~mobile_mllm.model.internvl.modules.InternVLVisionEncoder`;
- ``token_embedding``: the language model's ``embed_tokens``;
- ``text_decoder``: the reference family's ``StaticCacheDecoder`` over the language model's
  layers, final norm, rotary embedding and the top-level ``lm_head``.

The vision tower and projector get :func:`~mobile_mllm.model.internvl.modules.use_delegable_ops`
(layer norms and attention in ops XNNPACK lowers), the language model its RMSNorms, so ``extra["hf_model"]``, which shares
those modules, is no longer HF's exact graph: parity tests load their own copy.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from mobile_mllm.errors import ModelLoadError, UnsupportedModelError
from mobile_mllm.model.adapter import MultimodalModel
from mobile_mllm.model.internvl.files import CONFIG_FILE, read_json, read_vision_config
from mobile_mllm.model.delegable import use_delegable_ops
from mobile_mllm.model.internvl.modules import InternVLVisionEncoder
from mobile_mllm.model.internvl.prompt import FAMILY, INTERNVL_PROMPT
from mobile_mllm.model.reference.modules import StaticCacheDecoder, TokenEmbedding

logger = logging.getLogger(__name__)

__all__ = ["load_internvl"]


def _read_tokenizer(path: Path, vocab_size: int) -> tuple[Any, dict[str, int]]:
    """tokenizer.json and the ids of the prompt format's special tokens."""
    from mobile_mllm.model.tokenizer_file import TOKENIZER_FILE, read_tokenizer_file

    tokenizer = read_tokenizer_file(path, hint="save the checkpoint's tokenizer as a fast tokenizer")
    file = path / TOKENIZER_FILE
    fmt = INTERNVL_PROMPT
    special_ids: dict[str, int] = {}
    for token in (fmt.image_placeholder, fmt.image_start, fmt.image_end, *fmt.eos):
        token_id = tokenizer.token_to_id(token)
        if token_id is None or token_id >= vocab_size:
            raise ModelLoadError(
                f"{file}: special token {token!r} is {'missing' if token_id is None else f'id {token_id} >= vocab_size {vocab_size}'}; "
                "an InternVL-hf tokenizer defines <img>, </img>, <IMG_CONTEXT>, <|im_end|> and <|endoftext|>"
            )
        special_ids[token] = token_id
    return tokenizer, special_ids


def _from_pretrained(path: Path, dtype: torch.dtype) -> Any:
    """transformers' model with every checkpoint key used and every weight present (else ModelLoadError)."""
    from transformers import InternVLForConditionalGeneration

    try:
        hf, info = InternVLForConditionalGeneration.from_pretrained(
            str(path), dtype=dtype, attn_implementation="sdpa", output_loading_info=True
        )
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelLoadError(f"{path}: transformers could not load the InternVL checkpoint: {e}") from e
    problems = {k: list(v) for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if problems:
        detail = "; ".join(f"{k.replace('_', ' ')}: {v[:5]}{' ...' if len(v) > 5 else ''}" for k, v in problems.items())
        raise ModelLoadError(f"{path}: the weights do not match {CONFIG_FILE} ({detail}); is the checkpoint complete?")
    return hf.eval().requires_grad_(False)


def load_internvl(path: Path, *, dtype: torch.dtype = torch.float32, max_context_len: int = 2048) -> MultimodalModel:
    """Load an InternVL-hf directory.

    Args:
        path (Path): the checkpoint directory (config, preprocessor config, tokenizer.json, weights).
        dtype (torch.dtype): parameter, activation and KV-cache dtype. Default float32.
        max_context_len (int): KV-cache positions of ``text_decoder``. Default 2048.

    Returns:
        MultimodalModel: eval-mode modules sharing the HF model's weights; ``extra["hf_model"]``
        is the transformers model they were taken from.

    Raises:
        ModelLoadError: a missing or malformed file, weights that do not match the config, or a
            max_context_len beyond the decoder's max_position_embeddings.
        UnsupportedModelError: a preprocessing setting or decoder type the toolkit cannot reproduce.
    """
    path = Path(path)
    config = read_json(path / CONFIG_FILE)
    text = config.get("text_config") or {}
    max_positions = int(text.get("max_position_embeddings", 32768))
    if not 0 < max_context_len <= max_positions:
        raise ModelLoadError(
            f"max_context_len {max_context_len} must be in 1..{max_positions} "
            f"(text_config.max_position_embeddings in {path / CONFIG_FILE})"
        )
    if text.get("model_type", "qwen2") not in ("qwen2", "llama"):  # checked before the (slow) weight load
        raise UnsupportedModelError(
            f"{path / CONFIG_FILE}: text_config.model_type {text.get('model_type')!r} is not supported; "
            "the internvl family runs Qwen2 or Llama decoders (InternVL3-1B/2B-hf)"
        )
    vision = read_vision_config(path)
    hf = _from_pretrained(path, dtype)
    vocab_size = hf.config.text_config.vocab_size
    tokenizer, special_ids = _read_tokenizer(path, vocab_size)
    language_model = hf.model.language_model
    text_cfg = hf.config.text_config
    head_dim = getattr(text_cfg, "head_dim", None) or text_cfg.hidden_size // text_cfg.num_attention_heads
    use_delegable_ops(language_model, eager_attention=False)  # its RMSNorms, before the decoder takes them
    # StaticCacheDecoder takes a causal LM's ``.model`` (layers, norm, rotary_emb) and ``.lm_head``;
    # InternVL keeps the head on the top-level model, beside the multimodal one.
    causal_lm = SimpleNamespace(model=language_model, lm_head=hf.lm_head)
    text_decoder = StaticCacheDecoder(
        causal_lm, max_context_len=max_context_len, num_kv_heads=text_cfg.num_key_value_heads, head_dim=head_dim
    ).eval()
    vision_tower_cfg = hf.config.vision_config
    vision_encoder = InternVLVisionEncoder(
        tower=hf.model.vision_tower,
        projector=hf.model.multi_modal_projector,
        grid_side=vision_tower_cfg.image_size[0] // vision_tower_cfg.patch_size[0],
    ).eval()
    use_delegable_ops(vision_encoder.tower)
    use_delegable_ops(vision_encoder.projector)
    token_embedding = TokenEmbedding(language_model.embed_tokens).eval()
    logger.info(
        "loaded %s (internvl, %s): vision %d layers, decoder %s x%d, %d tokens/tile, KV cache %d",
        path, str(dtype).removeprefix("torch."), vision_tower_cfg.num_hidden_layers, text_cfg.model_type,
        text_cfg.num_hidden_layers, vision.tokens_per_tile, max_context_len,
    )
    return MultimodalModel(
        family=FAMILY,
        vision_encoder=vision_encoder,
        token_embedding=token_embedding,
        text_decoder=text_decoder,
        tokenizer=tokenizer,
        vision=vision,
        prompt=INTERNVL_PROMPT,
        max_context_len=max_context_len,
        eos_ids=tuple(special_ids[t] for t in INTERNVL_PROMPT.eos),
        bos_id=None,
        special_ids=special_ids,
        hidden_size=text_cfg.hidden_size,
        vocab_size=vocab_size,
        source=path,
        extra={"hf_model": hf},
    )
