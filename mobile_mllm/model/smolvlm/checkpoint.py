"""Load a SmolVLM/Idefics3 HF directory into the three contract modules.

The HF model is loaded with transformers' own class (``SmolVLMForConditionalGeneration`` or
``Idefics3ForConditionalGeneration``, by ``model_type``); our modules share its weights:
``vision_encoder`` = its vision transformer + pixel shuffle + connector (:mod:`.modules`),
``token_embedding`` = its text model's embedding, ``text_decoder`` = its Llama layers over a
static KV cache (the reference family's ``StaticCacheDecoder``). The tower's LayerNorms and SDPA
attention and the decoder's RMSNorms are swapped in place for forms XNNPACK delegates whole (the
internvl family's ``use_delegable_ops``: same parameters, same function), so the loaded HF object
is no longer a pristine reference: the parity tests load their own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import torch

from mobile_mllm.errors import ModelLoadError
from mobile_mllm.model.adapter import MultimodalModel
from mobile_mllm.model.delegable import use_delegable_ops
from mobile_mllm.model.reference.modules import StaticCacheDecoder, TokenEmbedding
from mobile_mllm.model.smolvlm import FAMILY
from mobile_mllm.model.smolvlm.files import MODEL_TYPES, read_config, read_vision_config
from mobile_mllm.model.smolvlm.modules import SmolVLMVisionEncoder
from mobile_mllm.model.smolvlm.prompt import FAKE_TOKEN, GLOBAL_IMAGE, IMAGE, SMOLVLM_PROMPT
from mobile_mllm.model.tokenizer_file import read_tokenizer_file

logger = logging.getLogger(__name__)

__all__ = ["load_smolvlm"]


def _hf_class(model_type: str) -> type:
    import transformers

    return getattr(transformers, MODEL_TYPES[model_type])


def load_smolvlm(path: Path, *, dtype: torch.dtype, max_context_len: int) -> MultimodalModel:
    """Load a SmolVLM/Idefics3 directory (config, safetensors, tokenizer.json, preprocessor_config.json).

    Raises:
        ModelLoadError: a file is missing or unreadable, or the tokenizer lacks a prompt token.
        UnsupportedModelError: a preprocessing setting we do not reproduce, or a non-Llama decoder.
    """
    path = Path(path)
    config = read_config(path)
    vision = read_vision_config(path)
    tokenizer = read_tokenizer_file(path, "a SmolVLM directory holds the HF tokenizer.json")
    special_ids: dict[str, int] = {}
    for token in (*SMOLVLM_PROMPT.eos, FAKE_TOKEN, GLOBAL_IMAGE, IMAGE):
        tid = tokenizer.token_to_id(token)
        if tid is None:
            raise ModelLoadError(
                f"{path}/tokenizer.json has no token {token!r}; a SmolVLM tokenizer defines the image and stop tokens"
            )
        special_ids[token] = tid
    try:
        hf = _hf_class(config["model_type"]).from_pretrained(path, dtype=dtype, attn_implementation="sdpa").eval()
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: transformers cannot load the checkpoint ({e})") from e
    inner = hf.model
    replaced = use_delegable_ops(inner.vision_model)
    replaced += use_delegable_ops(inner.text_model, eager_attention=False)  # RMSNorms; attention is rebuilt by the exporter
    vision_encoder = SmolVLMVisionEncoder(
        vision_model=inner.vision_model,
        projection=inner.connector.modality_projection.proj,
        scale_factor=int(hf.config.scale_factor),
    ).eval()
    text = hf.config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    text_decoder = StaticCacheDecoder(
        SimpleNamespace(model=inner.text_model, lm_head=hf.lm_head),
        max_context_len=max_context_len,
        num_kv_heads=text.num_key_value_heads,
        head_dim=head_dim,
    ).eval()
    logger.debug(
        "%s: %s, %d decoder layers, %d image tokens per tile, %d norms as matmuls",
        path, type(hf).__name__, text.num_hidden_layers, vision.tokens_per_tile, replaced,
    )
    return MultimodalModel(
        family=FAMILY,
        vision_encoder=vision_encoder,
        token_embedding=TokenEmbedding(inner.text_model.embed_tokens).eval(),
        text_decoder=text_decoder,
        tokenizer=tokenizer,
        vision=vision,
        prompt=SMOLVLM_PROMPT,
        max_context_len=max_context_len,
        eos_ids=tuple(special_ids[t] for t in SMOLVLM_PROMPT.eos),
        bos_id=None,
        special_ids=special_ids,
        hidden_size=text.hidden_size,
        vocab_size=text.vocab_size,
        source=path,
        extra={"hf_config": hf.config},
    )
