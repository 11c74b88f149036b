package org.mobilemllm.core

/**
 * The app's copies of the names in mobile_mllm/contract.py (program methods, constant methods,
 * files, manifest keys, the stats line prefix). tests/android_app/test_kotlin_core.py checks
 * every value here against contract.py, so the two cannot drift.
 */
object Contract {
    const val VISION_ENCODER = "vision_encoder"
    const val TOKEN_EMBEDDING = "token_embedding"
    const val TEXT_DECODER = "text_decoder"
    const val GET_MAX_SEQ_LEN = "get_max_seq_len"
    const val GET_MAX_CONTEXT_LEN = "get_max_context_len"
    const val PROGRAM_FILE = "model.pte"
    const val MANIFEST_FILE = "manifest.json"
    const val TOKENIZER_FILE = "tokenizer.json"
    const val MANIFEST_FORMAT = "mobile-mllm-manifest"
    const val MANIFEST_VERSION = 2
    const val M_FORMAT = "format"
    const val M_VERSION = "version"
    const val M_VISION = "vision"
    const val M_PROMPT = "prompt"
    const val M_SPECIAL_TOKENS = "special_tokens"
    const val M_EOS_IDS = "eos_ids"
    const val M_BOS_ID = "bos_id"
    const val M_MAX_SEQ_LEN = "max_seq_len"
    const val M_MAX_CONTEXT_LEN = "max_context_len"
    const val M_PREFILL_CHUNK = "prefill_chunk"
    const val M_TILE_BATCH = "tile_batch"
    const val M_TOKENS_PER_TILE = "tokens_per_tile"
    const val M_HIDDEN_SIZE = "hidden_size"
    const val M_VISION_ENGINE = "vision_engine"
    const val M_V1_MAX_CHUNK = "max_chunk"
    const val ENGINE_EXECUTORCH = "executorch"
    const val STATS_LINE_PREFIX = "PyTorchObserver "
}
