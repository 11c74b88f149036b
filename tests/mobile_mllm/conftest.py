"""Fixtures shared by the library's tests."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def valid_manifest() -> dict[str, Any]:
    """A complete version-2 manifest written out by hand (not by the exporter under test)."""
    return {
        "format": "mobile-mllm-manifest",
        "version": 2,
        "model": {"family": "reference", "variant": "tiny", "source": "/m", "vocab_size": 2048,
                  "num_parameters": {"vision_encoder": 10, "token_embedding": 20, "text_decoder": 30}},
        "vision": {"policy": "relaxed", "tile_size": 64, "max_side": 3, "max_tiles": None, "alpha": 0.1,
                   "thumbnail": "last", "thumbnail_for_single": False, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
                   "pad_color": [127, 127, 127], "background": [255, 255, 255], "max_pixels": 80000000,
                   "tokens_per_tile": 16, "resample": "bicubic"},
        "prompt": {"user_template": "<|user|>\n{content}<|end|>\n<|assistant|>\n", "turn_end": "<|end|>\n",
                   "system": "", "image_placeholder": "<image>", "image_start": "<img>", "image_end": "</img>",
                   "tile_sep": "<tile>", "row_sep": "", "thumbnail_marker": "<thumb>", "bos": "",
                   "eos": ["<|end|>", "<|endoftext|>"]},
        "special_tokens": {"<img>": 5, "</img>": 6},
        "eos_ids": [3, 0],
        "bos_id": None,
        "max_seq_len": 128,
        "max_context_len": 2048,
        "prefill_chunk": 128,
        "tile_batch": 4,
        "tokens_per_tile": 16,
        "hidden_size": 128,
        "precision": {"modules": {"text_decoder": "w4"}, "by_method": {"text_decoder": {"w4": 14, "w8": 1}},
                      "group_size": 32},
        "program": {"file": "model.pte", "size_bytes": 1502336, "sha256": "a" * 64,
                    "methods": ["vision_encoder", "token_embedding", "text_decoder"],
                    "constant_methods": {"get_max_seq_len": 128, "get_max_context_len": 2048, "get_eos_ids": [3, 0],
                                         "get_vocab_size": 2048, "use_kv_cache": True, "enable_dynamic_shape": True}},
        "export": {"model": "/m"},
    }
