"""The one place where program method names, constant-method keys and manifest keys are spelled.

The names follow ExecuTorch's multimodal runner contract (``extension/llm/runner/constants.h``):
the stock ``MultimodalRunner`` looks methods up by these exact strings, and reads each
constant method with a default, failing only on the required ``get_max_seq_len``. Export
writes through this module, the runtime reads through it, and a test checks the Android
app's copies against it. Nothing here imports torch or executorch.
"""

from __future__ import annotations

# Methods of the .pte program.
VISION_ENCODER = "vision_encoder"  # tiles [B, 3, S, S] float -> embeddings [B, N, D]
TOKEN_EMBEDDING = "token_embedding"  # tokens [1, T] int64 -> embeddings [1, T, D]
TEXT_DECODER = "text_decoder"  # (embeddings [1, T, D], start_pos [1] int64) -> logits
MODEL_METHODS: tuple[str, ...] = (VISION_ENCODER, TOKEN_EMBEDDING, TEXT_DECODER)

# Constant methods (metadata baked into the program).
GET_MAX_SEQ_LEN = "get_max_seq_len"  # required by the stock runner
GET_MAX_CONTEXT_LEN = "get_max_context_len"
GET_BOS_ID = "get_bos_id"
GET_EOS_IDS = "get_eos_ids"
GET_VOCAB_SIZE = "get_vocab_size"
USE_KV_CACHE = "use_kv_cache"
ENABLE_DYNAMIC_SHAPE = "enable_dynamic_shape"
REQUIRED_CONSTANT_METHODS: tuple[str, ...] = (GET_MAX_SEQ_LEN,)
CONSTANT_METHODS: tuple[str, ...] = (
    GET_MAX_SEQ_LEN,
    GET_MAX_CONTEXT_LEN,
    GET_BOS_ID,
    GET_EOS_IDS,
    GET_VOCAB_SIZE,
    USE_KV_CACHE,
    ENABLE_DYNAMIC_SHAPE,
)

# Files of an exported model directory.
PROGRAM_FILE = "model.pte"
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
EXPORT_REPORT_FILE = "export_report.json"

# manifest.json: bump MANIFEST_VERSION on any incompatible change; readers refuse newer majors.
MANIFEST_FORMAT = "mobile-mllm-manifest"
MANIFEST_VERSION = 1
MANIFEST_KEYS: tuple[str, ...] = (
    "format",  # == MANIFEST_FORMAT
    "version",  # == MANIFEST_VERSION
    "model",  # family, variant, source directory, parameter counts
    "vision",  # VisionConfig as a dict: policy, tile size, alpha, limits, mean/std, thumbnail
    "prompt",  # PromptFormat as a dict: chat template, image layout tokens and their ids
    "special_tokens",  # name -> id
    "eos_ids",
    "bos_id",
    "max_seq_len",
    "max_context_len",
    "prefill_chunk",
    "tile_batch",
    "tokens_per_tile",
    "hidden_size",
    "precision",  # module -> precision name, and per-layer detail in export_report.json
    "program",  # file name, size, sha256, methods
)

# The stats line printed by every runner (host and phone), as ExecuTorch's C++ runners do.
STATS_LINE_PREFIX = "PyTorchObserver "
