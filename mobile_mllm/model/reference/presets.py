"""Variant builders of the ``reference`` family: presets that fix every architectural number.

A recipe or ``init-model --preset`` names a preset instead of thirty numbers. Torch-free (the
CLI lists :data:`PRESETS` at parse time); ``builders.build_reference`` turns a config into
modules and ``builders.count_parameters`` counts one without allocating.
"""

from __future__ import annotations

from collections.abc import Callable

from mobile_mllm.errors import UnsupportedModelError
from mobile_mllm.model.reference.config import DecoderArchitecture, DecoderConfig, ReferenceConfig, TowerConfig

__all__ = [
    "PRESETS",
    "PRESET_STORAGE_DTYPES",
    "TINY_VOCAB_SIZE",
    "preset_config",
    "reference_bluelm_v_3b",
    "reference_mid",
    "reference_synth_small",
    "reference_tiny",
]

TINY_VOCAB_SIZE = 2048
"""Vocabulary of the bundled tokenizer (and of the tiny preset's embedding)."""


def reference_tiny() -> ReferenceConfig:
    """A ~1M-parameter model for tests: builds in well under a second.

    SigLIP: 64 px tiles, patch 8 -> 8x8 patches -> 16 tokens per tile, width 64, 2 layers.
    Decoder: Llama, width 128, 2 layers, 4 query / 2 KV heads (GQA), vocab 2048 (the bundled
    tokenizer's).
    """
    return ReferenceConfig(
        variant="tiny",
        tower=TowerConfig(image_size=64, patch_size=8, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128),
        downsampler_dim=64,
        projector_dim=128,
        decoder=DecoderConfig(
            architecture=DecoderArchitecture.LLAMA,
            hidden_size=128,
            num_layers=2,
            num_heads=4,
            num_kv_heads=2,
            intermediate_size=256,
            vocab_size=TINY_VOCAB_SIZE,
            max_position_embeddings=4096,
        ),
    )


def reference_mid() -> ReferenceConfig:
    """About 0.52B parameters: a Qwen2-0.5B-shaped decoder with a small SigLIP, for speed benchmarks.

    SigLIP: 384 px tiles, patch 16 -> 24x24 patches -> 144 tokens per tile, width 512,
    8 layers, 8 heads, MLP 2048 (~26M). Decoder: Qwen2, width 896, 24 layers, 14 query / 2 KV
    heads, MLP 4864, vocab 151936, tied embeddings, rope_theta 1e6 (~494M, as Qwen2-0.5B).
    The bundled tokenizer only uses the first 2048 rows of the vocabulary, which is fine for
    random-weight speed numbers. ``count_parameters(reference_mid())["total"]`` = 522,258,048 (decoder 494,032,768).
    """
    return ReferenceConfig(
        variant="mid",
        tower=TowerConfig(
            image_size=384, patch_size=16, hidden_size=512, num_layers=8, num_heads=8, intermediate_size=2048
        ),
        downsampler_dim=512,
        projector_dim=896,
        decoder=DecoderConfig(
            architecture=DecoderArchitecture.QWEN2,
            hidden_size=896,
            num_layers=24,
            num_heads=14,
            num_kv_heads=2,
            intermediate_size=4864,
            vocab_size=151936,
            rope_theta=1_000_000.0,
            tie_word_embeddings=True,
            max_position_embeddings=32768,
        ),
    )


def reference_bluelm_v_3b() -> ReferenceConfig:
    """BlueLM-V-3B's shape (weights never released): SigLIP-so400m at 384 + a 2.7B decoder.

    SigLIP-so400m: 384 px tiles, patch 14 -> 27x27 = 729 patches (padded to 28x28) -> 196
    tokens per tile, width 1152, 27 layers, 16 heads, MLP 4304 (413M without the pooling head).
    Downsampler 4*1152 -> 1152, projector 1152 -> 2560 -> 2560.
    Decoder (our choice; the paper gives only "2.7B"): Llama, width 2560, 32 layers, 20 query
    heads of 128, 4 KV heads (GQA), MLP 6912, vocab 100096 (BlueLM's), untied -> 2,714,667,520.
    ``count_parameters(reference_bluelm_v_3b())["total"]`` = 3,142,481,392 (about 6.3 GB in bf16).
    """
    return ReferenceConfig(
        variant="bluelm-v-3b",
        tower=TowerConfig(
            image_size=384, patch_size=14, hidden_size=1152, num_layers=27, num_heads=16, intermediate_size=4304
        ),
        downsampler_dim=1152,
        projector_dim=2560,
        decoder=DecoderConfig(
            architecture=DecoderArchitecture.LLAMA,
            hidden_size=2560,
            num_layers=32,
            num_heads=20,
            num_kv_heads=4,
            intermediate_size=6912,
            vocab_size=100096,
            rope_theta=500_000.0,
            max_position_embeddings=8192,
        ),
    )


def reference_synth_small() -> ReferenceConfig:
    """About 7.6M parameters: the architecture of the trained built-in model (``builtin:synth-small``).

    Sized so that reading small text needs the dynamic-resolution tiles: 96 px tiles, patch 8
    -> 12x12 patches -> 36 tokens per tile, so a 3x3 grid sees the image on a 288 px canvas
    while the thumbnail (or a 1x1 grid) squeezes it into 96 px. SigLIP: width 192, 6 layers,
    3 heads, MLP 768. Decoder: Llama, width 256, 5 layers, 8 query / 4 KV heads, MLP 768, vocab
    2048 (the bundled tokenizer's), tied embeddings, context 2048 (the runtime's default KV cache). Trained by
    ``mobile-mllm train-reference`` (``mobile_mllm.train``).
    """
    return ReferenceConfig(
        variant="synth-small",
        tower=TowerConfig(image_size=96, patch_size=8, hidden_size=192, num_layers=6, num_heads=3, intermediate_size=768),
        downsampler_dim=256,
        projector_dim=512,
        decoder=DecoderConfig(
            architecture=DecoderArchitecture.LLAMA,
            hidden_size=256,
            num_layers=5,
            num_heads=8,
            num_kv_heads=4,
            intermediate_size=768,
            vocab_size=TINY_VOCAB_SIZE,
            tie_word_embeddings=True,
            max_position_embeddings=2048,
        ),
    )


PRESETS: dict[str, Callable[[], ReferenceConfig]] = {
    "tiny": reference_tiny,
    "mid": reference_mid,
    "bluelm-v-3b": reference_bluelm_v_3b,
    "synth-small": reference_synth_small,
}
"""Preset name -> variant builder (the names ``init-model --preset`` accepts)."""

PRESET_STORAGE_DTYPES: dict[str, str] = {
    "tiny": "float32", "mid": "float32", "bluelm-v-3b": "bfloat16", "synth-small": "float32"
}
"""Default dtype ``init-model`` stores each preset in: bf16 keeps bluelm-v-3b at ~6.3 GB instead of 12.6 GB."""


def preset_config(name: str) -> ReferenceConfig:
    """The config of a preset, looked up by exact name.

    Raises:
        UnsupportedModelError: for an unknown name, listing the known presets.
    """
    try:
        return PRESETS[name]()
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise UnsupportedModelError(f"no reference preset {name!r}; known: {known}") from None
