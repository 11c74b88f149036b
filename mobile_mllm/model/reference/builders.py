"""Component builders of the ``reference`` family: every architectural number keyword-only.

Component builders turn numbers into modules; the variant builders that fix those numbers
live in ``presets.py`` (torch-free, so the CLI can list presets at parse time).
:func:`build_reference` assembles the three contract modules from a :class:`ReferenceConfig`.

Weights are left uninitialised by :func:`build_reference` (they are always either loaded or
written by ``checkpoint.random_weights``), which keeps building a 3B model cheap; build under
``torch.device("meta")`` to count parameters without allocating (:func:`count_parameters`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from mobile_mllm.model.reference.config import DecoderArchitecture, ReferenceConfig
from mobile_mllm.model.reference.modules import (
    Projector,
    StaticCacheDecoder,
    TokenDownsampler,
    TokenEmbedding,
    VisionEncoder,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ReferenceModules",
    "build_reference",
    "count_parameters",
    "hf_decoder",
    "siglip_tower",
]

_ATTN_IMPLEMENTATION = "sdpa"


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def _skip_init() -> Iterator[None]:
    """Skip transformers' and torch's random initialisation (weights are loaded right after)."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        yield


# --------------------------------------------------------------------------- component builders


def siglip_tower(
    *,
    image_size: int,
    patch_size: int,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    intermediate_size: int,
    layer_norm_eps: float = 1e-6,
) -> nn.Module:
    """A transformers ``SiglipVisionModel`` without the pooling head (we use every patch token).

    Args:
        image_size (int): tile side in pixels.
        patch_size (int): patch side in pixels.
        hidden_size (int): tower width.
        num_layers (int): transformer blocks.
        num_heads (int): attention heads.
        intermediate_size (int): MLP width.
        layer_norm_eps (float): LayerNorm epsilon. Default 1e-6.

    Returns:
        nn.Module: ``SiglipVisionModel`` (eval mode).
    """
    from transformers import SiglipVisionConfig, SiglipVisionModel

    config = SiglipVisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        layer_norm_eps=layer_norm_eps,
        vision_use_head=False,
    )
    config._attn_implementation = _ATTN_IMPLEMENTATION
    return SiglipVisionModel(config).eval()


def hf_decoder(
    *,
    architecture: DecoderArchitecture,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    num_kv_heads: int,
    intermediate_size: int,
    vocab_size: int,
    rope_theta: float = 10000.0,
    rms_norm_eps: float = 1e-6,
    tie_word_embeddings: bool = False,
    max_position_embeddings: int = 4096,
) -> nn.Module:
    """A transformers ``LlamaForCausalLM`` or ``Qwen2ForCausalLM`` (the reference for parity tests).

    Args:
        architecture (DecoderArchitecture): llama or qwen2.
        hidden_size (int): model width.
        num_layers (int): decoder blocks.
        num_heads (int): query heads.
        num_kv_heads (int): key/value heads (GQA when < num_heads).
        intermediate_size (int): gated-MLP width.
        vocab_size (int): embedding rows.
        rope_theta (float): rotary base. Default 10000.0.
        rms_norm_eps (float): RMSNorm epsilon. Default 1e-6.
        tie_word_embeddings (bool): share embedding and output head. Default False.
        max_position_embeddings (int): longest context. Default 4096.

    Returns:
        nn.Module: the causal LM (eval mode).
    """
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    classes = {
        DecoderArchitecture.LLAMA: (LlamaConfig, LlamaForCausalLM),
        DecoderArchitecture.QWEN2: (Qwen2Config, Qwen2ForCausalLM),
    }
    config_cls, model_cls = classes[DecoderArchitecture(architecture)]
    config = config_cls(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        rms_norm_eps=rms_norm_eps,
        tie_word_embeddings=tie_word_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    config._attn_implementation = _ATTN_IMPLEMENTATION
    model = model_cls(config).eval()
    if tie_word_embeddings:
        model.tie_weights()  # transformers ties inside init_weights, which _skip_init skips
    return model


@dataclass
class ReferenceModules:
    """The built modules: the three contract modules plus the HF decoder they share weights with."""

    vision_encoder: VisionEncoder
    token_embedding: TokenEmbedding
    text_decoder: StaticCacheDecoder
    hf_decoder: nn.Module
    """The transformers causal LM; its forward is the parity reference and its state dict the checkpoint's."""


def build_reference(
    cfg: ReferenceConfig,
    *,
    max_context_len: int,
    dtype: torch.dtype = torch.float32,
    init: bool = False,
) -> ReferenceModules:
    """Build the contract modules of ``cfg`` (eval mode, no grad needed).

    Args:
        cfg (ReferenceConfig): the architecture.
        max_context_len (int): KV-cache positions of ``text_decoder``.
        dtype (torch.dtype): parameter and cache dtype. Default float32.
        init (bool): run HF's random initialisation (slow for big presets; tests that do not
            load a checkpoint use it). Default False: parameters are uninitialised memory.

    Returns:
        ReferenceModules: the modules; the HF decoder shares its parameters with them.
    """
    tower_cfg, dec = cfg.tower, cfg.decoder
    with _default_dtype(dtype), (contextlib.nullcontext() if init else _skip_init()):
        tower = siglip_tower(
            image_size=tower_cfg.image_size,
            patch_size=tower_cfg.patch_size,
            hidden_size=tower_cfg.hidden_size,
            num_layers=tower_cfg.num_layers,
            num_heads=tower_cfg.num_heads,
            intermediate_size=tower_cfg.intermediate_size,
            layer_norm_eps=tower_cfg.layer_norm_eps,
        )
        downsampler = TokenDownsampler(
            grid_side=tower_cfg.patches_per_side,
            in_dim=tower_cfg.hidden_size,
            out_dim=cfg.downsampler_dim,
            eps=tower_cfg.layer_norm_eps,
        )
        projector = Projector(in_dim=cfg.downsampler_dim, hidden_dim=cfg.projector_dim, out_dim=dec.hidden_size)
        hf = hf_decoder(
            architecture=dec.architecture,
            hidden_size=dec.hidden_size,
            num_layers=dec.num_layers,
            num_heads=dec.num_heads,
            num_kv_heads=dec.num_kv_heads,
            intermediate_size=dec.intermediate_size,
            vocab_size=dec.vocab_size,
            rope_theta=dec.rope_theta,
            rms_norm_eps=dec.rms_norm_eps,
            tie_word_embeddings=dec.tie_word_embeddings,
            max_position_embeddings=dec.max_position_embeddings,
        )
        text_decoder = StaticCacheDecoder(
            hf, max_context_len=max_context_len, num_kv_heads=dec.num_kv_heads, head_dim=dec.head_dim
        )
    vision_encoder = VisionEncoder(tower=tower, downsampler=downsampler, projector=projector).eval()
    token_embedding = TokenEmbedding(hf.model.embed_tokens).eval()
    return ReferenceModules(
        vision_encoder=vision_encoder,
        token_embedding=token_embedding,
        text_decoder=text_decoder.eval(),
        hf_decoder=hf,
    )


def count_parameters(cfg: ReferenceConfig) -> dict[str, int]:
    """Parameter counts of a config, computed on the meta device (nothing is allocated).

    Returns:
        dict[str, int]: ``vision_tower``, ``downsampler``, ``projector``, ``decoder`` (embedding
        and output head counted once each, or once in all when tied) and ``total``.
    """
    with torch.device("meta"):
        mods = build_reference(cfg, max_context_len=1, dtype=torch.float32)

    def numel(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())  # parameters() deduplicates tied weights

    counts = {
        "vision_tower": numel(mods.vision_encoder.tower),
        "downsampler": numel(mods.vision_encoder.downsampler),
        "projector": numel(mods.vision_encoder.projector),
        "decoder": numel(mods.hf_decoder),
    }
    counts["total"] = sum(counts.values())
    return counts
