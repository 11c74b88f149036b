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

# Constant methods (metadata baked into the program), with ExecuTorch's meanings
# (extension/llm/runner/constants.h, llm_runner_helper.cpp::get_llm_metadata). These are the only
# places the toolkit says "max_seq_len": everywhere else the KV-cache length is max_context_len.
GET_MAX_SEQ_LEN = "get_max_seq_len"  # required: most positions ONE text_decoder call takes (= max(prefill_chunk, tokens_per_tile))
GET_MAX_CONTEXT_LEN = "get_max_context_len"  # KV-cache positions: prompt, image tokens and answers together
GET_BOS_ID = "get_bos_id"  # token prepended to a prompt (absent: none)
GET_EOS_IDS = "get_eos_ids"  # tokens that end an answer (a list; the C++ runner ignores optimum's get_eos_id)
GET_VOCAB_SIZE = "get_vocab_size"  # logits per position
USE_KV_CACHE = "use_kv_cache"  # text_decoder keeps earlier positions (start_pos addresses the cache)
ENABLE_DYNAMIC_SHAPE = "enable_dynamic_shape"  # text_decoder takes 1..get_max_seq_len positions, not exactly that many
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
VISION_ONNX_FILE = "vision.onnx"  # the image encoder as an ONNX Runtime program, when the manifest's vision_engine says so

# vision.onnx: the same function as the vision_encoder method, under these input/output names.
ONNX_VISION_INPUT = "tiles"  # float32 [B, 3, S, S], B dynamic (1..tile_batch)
ONNX_VISION_OUTPUT = "embeddings"  # float32 [B, N, D]
# Engines that can encode images (values of the manifest's vision_engine).
ENGINE_EXECUTORCH = "executorch"  # model.pte's vision_encoder method
ENGINE_ONNXRUNTIME = "onnxruntime"  # vision.onnx beside model.pte

# manifest.json: bump MANIFEST_VERSION on any incompatible change; readers refuse newer majors.
# The JSON Schema (manifest.schema.json, checked by manifest_schema.py) spells the same keys and
# their types; a test keeps the two in step.
# Version 2 (this toolkit): max_seq_len has ExecuTorch's meaning (get_max_seq_len, the longest
# text_decoder call; version 1 called that max_chunk and used max_seq_len for the KV cache, which
# is max_context_len in both). Version-1 manifests are read and upgraded (manifest.read_manifest).
MANIFEST_FORMAT = "mobile-mllm-manifest"
MANIFEST_VERSION = 2
M_FORMAT = "format"  # == MANIFEST_FORMAT
M_VERSION = "version"  # == MANIFEST_VERSION
M_MODEL = "model"  # family, variant, source directory, parameter counts, vocabulary size
M_VISION = "vision"  # VisionConfig as a dict: policy, tile size, alpha, limits, mean/std, thumbnail
M_PROMPT = "prompt"  # PromptFormat as a dict: chat template, image layout tokens and their ids
M_SPECIAL_TOKENS = "special_tokens"  # name -> id
M_EOS_IDS = "eos_ids"  # == get_eos_ids
M_BOS_ID = "bos_id"  # == get_bos_id, or null
M_MAX_SEQ_LEN = "max_seq_len"  # == get_max_seq_len
M_MAX_CONTEXT_LEN = "max_context_len"  # == get_max_context_len
M_PREFILL_CHUNK = "prefill_chunk"  # positions per text_decoder call while prefilling
M_TILE_BATCH = "tile_batch"  # largest vision_encoder batch
M_TOKENS_PER_TILE = "tokens_per_tile"
M_HIDDEN_SIZE = "hidden_size"
M_PRECISION = "precision"  # module -> precision name, and per-layer detail in export_report.json
M_PROGRAM = "program"  # file name, size, sha256, methods, constant methods
M_EXPORT = "export"  # the resolved ExportJob
M_VISION_ENGINE = "vision_engine"  # ENGINE_EXECUTORCH or ENGINE_ONNXRUNTIME: which program encodes images (absent: executorch)
M_VISION_PROGRAM = "vision_program"  # with onnxruntime: file (== VISION_ONNX_FILE), quantization, input and output names
M_STATIC = "static_programs"  # MediaTek NPU export: fixed-shape graphs the runner drives (runtime/static.py)
MANIFEST_KEYS: tuple[str, ...] = (
    M_FORMAT, M_VERSION, M_MODEL, M_VISION, M_PROMPT, M_SPECIAL_TOKENS, M_EOS_IDS, M_BOS_ID, M_MAX_SEQ_LEN,
    M_MAX_CONTEXT_LEN, M_PREFILL_CHUNK, M_TILE_BATCH, M_TOKENS_PER_TILE, M_HIDDEN_SIZE, M_PRECISION, M_PROGRAM,
)
"""The keys every manifest has (``export`` is optional: older or hand-made manifests may lack it)."""
OPTIONAL_MANIFEST_KEYS: tuple[str, ...] = (M_EXPORT, M_VISION_ENGINE, M_VISION_PROGRAM, M_STATIC)
"""Keys a manifest may have besides ``MANIFEST_KEYS`` (a reader takes absent ``vision_engine`` as executorch)."""
M_VISION_PROGRAM_FILE = "file"  # == VISION_ONNX_FILE
M_VISION_PROGRAM_QUANTIZATION = "quantization"  # how its weights were quantized (OnnxQuantization's value)
M_VISION_PROGRAM_INPUT = "input"  # == ONNX_VISION_INPUT
M_VISION_PROGRAM_OUTPUT = "output"  # == ONNX_VISION_OUTPUT
M_VISION_PROGRAM_PTE_VISION = "pte_vision_encoder"  # false: model.pte was exported without its own vision_encoder (absent: true)
# nested keys
M_MODEL_FAMILY = "family"
M_MODEL_VARIANT = "variant"
M_MODEL_SOURCE = "source"
M_MODEL_NUM_PARAMETERS = "num_parameters"  # method -> parameter count
M_MODEL_VOCAB_SIZE = "vocab_size"
M_PRECISION_MODULES = "modules"  # method -> precision name (w4, w8, fp32, mixed ...)
M_PRECISION_BY_METHOD = "by_method"  # method -> {precision: layer count}
M_PRECISION_GROUP_SIZE = "group_size"
M_PROGRAM_FILE = "file"  # == PROGRAM_FILE
M_PROGRAM_SIZE_BYTES = "size_bytes"
M_PROGRAM_SHA256 = "sha256"
M_PROGRAM_METHODS = "methods"  # the program's methods, in order
M_PROGRAM_CONSTANT_METHODS = "constant_methods"  # name -> value, as baked into the program
# static_programs (export/static_decoder.py gives the graphs' inputs and outputs)
M_STATIC_SIMULATED = "simulated"  # true: torch.export graphs (.pt2) run on the host; false: NeuroPilot .pte files
M_STATIC_SOC = "soc"  # the MediaTek SoC they are (or would be) compiled for
M_STATIC_PROMPT_LEN = "prompt_len"  # positions per prompt-graph call (generate graphs take 1)
M_STATIC_SHARDS = "shards"  # each decoder shard's [first, last) layer indices, in order
M_STATIC_KV_HEADS = "num_kv_heads"  # the cache inputs are [1, num_kv_heads, max_context_len, head_dim], k then v per layer
M_STATIC_HEAD_DIM = "head_dim"
M_STATIC_MASK_VALUE = "mask_value"  # what the runner's additive mask puts where a query must not look
M_STATIC_TABLES = "tables"  # safetensors file of the runner's tables (STATIC_TABLE_*)
M_STATIC_FILES = "files"  # {STATIC_VISION: {tile batch: file}, STATIC_PROMPT: [file per shard], STATIC_GENERATE: [...]}
M_STATIC_ACTIVATIONS = "activations"  # activation precision of the quantized layers ("int16" or "fp32")
STATIC_VISION = "vision"
STATIC_PROMPT = "prompt"
STATIC_GENERATE = "generate"
STATIC_TABLE_EMBEDDING = "token_embedding"  # [V, D] float32: the CPU lookup
STATIC_TABLE_ROPE_COS = "rope_cos"  # [max_context_len, head_dim] float32, rotate-half convention
STATIC_TABLE_ROPE_SIN = "rope_sin"
STATIC_TABLES_FILE = "tables.safetensors"
M_V1_MAX_CHUNK = "max_chunk"  # version 1 only: what version 2 calls max_seq_len

# The stats line printed by every runner (host and phone), as ExecuTorch's C++ runners do.
STATS_LINE_PREFIX = "PyTorchObserver "
