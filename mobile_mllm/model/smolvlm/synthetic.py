"""Write a random-weight SmolVLM directory in the HF layout: for tests and benchmarks, never a real checkpoint.

No model hub: the architecture comes from :data:`VARIANTS` (``tiny`` for tests; ``256m`` and
``500m`` with the numbers of the published SmolVLM-256M/500M-Instruct ``config.json`` files),
the weights from transformers' own initialisation under a seed, and the directory holds what a
downloaded checkpoint holds: ``config.json`` + ``model.safetensors`` (``save_pretrained``), a
byte-level BPE ``tokenizer.json`` with SmolVLM's special tokens and SmolLM2's pre-tokenizer (each
digit split off before GPT-2's regex, so every consumer of the directory meets the real checkpoints'
tokenizer layout), the chat template, and the
image processor's and processor's settings. transformers' ``SmolVLMProcessor`` loads it, which
is what the parity tests compare our preprocessing and prompts with.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_mllm.model.smolvlm.files import CONFIG_FILE, PREPROCESSOR_FILE, tokens_per_tile
from mobile_mllm.model.smolvlm.prompt import (
    END_OF_UTTERANCE,
    FAKE_TOKEN,
    GLOBAL_IMAGE,
    IM_END,
    IM_START,
    IMAGE,
    row_col_token,
)

logger = logging.getLogger(__name__)

__all__ = ["CHAT_TEMPLATE", "VARIANTS", "SmolVLMVariant", "smolvlm_tokenizer", "special_tokens", "write_random_smolvlm"]

CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
"""SmolVLM-Instruct's chat template (as published with the checkpoints)."""

MAX_GRID_SIDE = 6
"""Row/column tokens the test tokenizer defines (``<row_1_col_1>`` .. ``<row_6_col_6>``; SmolVLM's has the same)."""


@dataclass(frozen=True)
class SmolVLMVariant:
    """The architectural numbers of one SmolVLM size (vision tower, connector, decoder, processor)."""

    vision_hidden: int
    vision_layers: int
    vision_heads: int
    vision_intermediate: int
    image_size: int
    patch_size: int
    scale_factor: int
    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    text_intermediate: int
    vocab_size: int | None
    """None: the tokenizer's size (tiny); else the published vocabulary (the test tokenizer uses its first ids)."""
    longest_edge_px: int
    rope_theta: float = 100000.0
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 8192
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02
    """Std of transformers' random init; the tiny variant's is larger so greedy tokens are not near-ties."""


VARIANTS: dict[str, SmolVLMVariant] = {
    "tiny": SmolVLMVariant(
        vision_hidden=32, vision_layers=2, vision_heads=2, vision_intermediate=64, image_size=64, patch_size=8,
        scale_factor=2, text_hidden=64, text_layers=2, text_heads=4, text_kv_heads=2, text_intermediate=128,
        vocab_size=None, longest_edge_px=256, max_position_embeddings=4096, initializer_range=0.2,
    ),
    # SmolVLM-256M-Instruct: SigLIP base patch16/512 (93M) + SmolLM2-135M, scale_factor 4, 64 tokens per 512-px tile.
    "256m": SmolVLMVariant(
        vision_hidden=768, vision_layers=12, vision_heads=12, vision_intermediate=3072, image_size=512, patch_size=16,
        scale_factor=4, text_hidden=576, text_layers=30, text_heads=9, text_kv_heads=3, text_intermediate=1536,
        vocab_size=49280, longest_edge_px=2048,
    ),
    # SmolVLM-500M-Instruct: the same tower + SmolLM2-360M.
    "500m": SmolVLMVariant(
        vision_hidden=768, vision_layers=12, vision_heads=12, vision_intermediate=3072, image_size=512, patch_size=16,
        scale_factor=4, text_hidden=960, text_layers=32, text_heads=15, text_kv_heads=5, text_intermediate=2560,
        vocab_size=49280, longest_edge_px=2048,
    ),
}
"""Sizes by name. 256m/500m follow the published config.json files (written from them; no hub here)."""


def special_tokens() -> list[str]:
    """SmolVLM's special tokens, in the order the test tokenizer numbers them."""
    rows = [row_col_token(r, c) for r in range(1, MAX_GRID_SIDE + 1) for c in range(1, MAX_GRID_SIDE + 1)]
    return ["<|endoftext|>", IM_START, IM_END, END_OF_UTTERANCE, FAKE_TOKEN, IMAGE, GLOBAL_IMAGE, *rows]


def smolvlm_tokenizer() -> Any:  # tokenizers.Tokenizer (imported lazily)
    """The test tokenizer: a small byte-level BPE with SmolVLM's special tokens behind SmolLM2's pre-tokenizer.

    SmolLM2 (SmolVLM's decoder) publishes ``Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False,
    use_regex=True)]``: every numeric character is a pre-token of its own, then GPT-2's regex splits the rest. The
    merges are learnt with ByteLevel alone (the reference family's trainer); those joining digits are then never used.

    Returns:
        tokenizers.Tokenizer: special tokens first, in :func:`special_tokens` order.
    """
    from tokenizers import pre_tokenizers

    from mobile_mllm.model.reference.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(vocab_size=600, special_tokens=special_tokens())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    return tokenizer


def _hf_config(v: SmolVLMVariant, vocab_size: int, image_token_id: int, model_type: str) -> Any:
    from transformers import LlamaConfig

    if model_type == "idefics3":
        from transformers import Idefics3Config as Config, Idefics3VisionConfig as VisionConfig
    else:
        from transformers import SmolVLMConfig as Config, SmolVLMVisionConfig as VisionConfig
    vision = VisionConfig(
        hidden_size=v.vision_hidden, num_hidden_layers=v.vision_layers, num_attention_heads=v.vision_heads,
        intermediate_size=v.vision_intermediate, image_size=v.image_size, patch_size=v.patch_size,
        initializer_range=v.initializer_range,
    )
    text = LlamaConfig(
        vocab_size=vocab_size, hidden_size=v.text_hidden, num_hidden_layers=v.text_layers,
        num_attention_heads=v.text_heads, num_key_value_heads=v.text_kv_heads, intermediate_size=v.text_intermediate,
        rms_norm_eps=v.rms_norm_eps, max_position_embeddings=v.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": v.rope_theta}, tie_word_embeddings=v.tie_word_embeddings,
        pad_token_id=None, bos_token_id=None, eos_token_id=None, initializer_range=v.initializer_range,
    )
    return Config(
        vision_config=vision.to_dict(), text_config=text.to_dict(), scale_factor=v.scale_factor,
        image_token_id=image_token_id, tie_word_embeddings=v.tie_word_embeddings,
        initializer_range=v.initializer_range,
    )


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_random_smolvlm(out: Path, *, variant: str = "tiny", seed: int = 0, model_type: str = "smolvlm") -> Path:
    """Write a random-weight SmolVLM (or Idefics3) directory.

    Args:
        out (Path): the directory to create (must not exist or be empty).
        variant (str): a key of :data:`VARIANTS`. Default "tiny".
        seed (int): torch seed of the weights. Default 0.
        model_type (str): "smolvlm" (``SmolVLMForConditionalGeneration``) or "idefics3". Default "smolvlm".

    Returns:
        Path: ``out``.
    """
    import torch
    from transformers import Idefics3ForConditionalGeneration, SmolVLMForConditionalGeneration

    v = VARIANTS[variant]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = smolvlm_tokenizer()
    vocab_size = v.vocab_size or tokenizer.get_vocab_size()
    config = _hf_config(v, vocab_size, tokenizer.token_to_id(IMAGE), model_type)
    torch.manual_seed(seed)
    cls = Idefics3ForConditionalGeneration if model_type == "idefics3" else SmolVLMForConditionalGeneration
    model = cls(config).eval()
    model.save_pretrained(out)
    tokenizer.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": IM_START, "eos_token": END_OF_UTTERANCE,
        "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "add_bos_token": False, "add_eos_token": False,
        "model_max_length": v.max_position_embeddings,
    })
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    processor = "Idefics3Processor" if model_type == "idefics3" else "SmolVLMProcessor"
    _write_json(out / PREPROCESSOR_FILE, {
        "image_processor_type": "Idefics3ImageProcessor" if model_type == "idefics3" else "SmolVLMImageProcessor",
        "processor_class": processor, "do_convert_rgb": True, "do_resize": True,
        "size": {"longest_edge": v.longest_edge_px}, "resample": 1, "do_image_splitting": True,
        "max_image_size": {"longest_edge": v.image_size}, "do_rescale": True, "rescale_factor": 1 / 255,
        "do_normalize": True, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_pad": True,
    })
    _write_json(out / "processor_config.json", {
        "processor_class": processor,
        "image_seq_len": tokens_per_tile(json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))),
    })
    logger.info("wrote a random %s %s to %s (%d parameters)", variant, type(model).__name__, out,
                sum(p.numel() for p in model.parameters()))
    return out
