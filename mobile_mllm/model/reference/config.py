"""Architecture settings of the ``reference`` family, as frozen dataclasses.

:class:`ReferenceConfig` is what ``config.json`` holds (plus the ``mobile_mllm_family`` and
``model_type`` keys used for detection). It describes the network only; how images become
tiles is the :class:`~mobile_mllm.vision.processor.VisionConfig` stored next to it in
``preprocessor_config.json``, and :func:`default_vision_config` derives the parts of that which
the architecture fixes (tile size, tokens per tile). Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

from mobile_mllm.errors import ConfigError
from mobile_mllm.vision.config import VisionConfig

__all__ = [
    "CONFIG_FILE",
    "FAMILY",
    "MODEL_TYPE",
    "DecoderArchitecture",
    "DecoderConfig",
    "ReferenceConfig",
    "TowerConfig",
    "default_vision_config",
]

FAMILY = "reference"
"""Registry key, folder name and the value of ``mobile_mllm_family`` in config.json."""
CONFIG_FILE = "config.json"
"""The architecture file of a model directory."""
MODEL_TYPE = "mobile_mllm_reference"
"""The ``model_type`` written to config.json (HF-style detection without our own key)."""


class DecoderArchitecture(str, enum.Enum):
    """Which transformers causal LM class the decoder is built from."""

    LLAMA = "llama"
    QWEN2 = "qwen2"


@dataclass(frozen=True)
class TowerConfig:
    """SigLIP vision tower (transformers ``SiglipVisionModel`` without the pooling head)."""

    image_size: int
    """Side of one square tile in pixels (the tower's input size)."""
    patch_size: int
    """Side of one patch; the tower sees (image_size // patch_size)**2 patches (a remainder is cropped)."""
    hidden_size: int
    """Width of the tower (Dv)."""
    num_layers: int
    """Number of transformer blocks."""
    num_heads: int
    """Attention heads per block."""
    intermediate_size: int
    """Width of each block's MLP."""
    layer_norm_eps: float = 1e-6
    """Epsilon of the tower's LayerNorms."""

    def __post_init__(self) -> None:
        if not 0 < self.patch_size <= self.image_size:
            raise ConfigError(
                f"tower.patch_size {self.patch_size} must be in 1..tower.image_size ({self.image_size})"
            )
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"tower.hidden_size {self.hidden_size} is not divisible by tower.num_heads {self.num_heads}")

    @property
    def patches_per_side(self) -> int:
        """Patch grid side before the downsampler (27 for so400m at 384)."""
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class DecoderConfig:
    """Llama- or Qwen2-architecture decoder (transformers ``LlamaForCausalLM`` / ``Qwen2ForCausalLM``)."""

    architecture: DecoderArchitecture
    """llama or qwen2 (qwen2 has q/k/v biases)."""
    hidden_size: int
    """Width of the decoder (D); image embeddings are projected to it."""
    num_layers: int
    """Number of decoder blocks."""
    num_heads: int
    """Query heads per block."""
    num_kv_heads: int
    """Key/value heads per block (grouped-query attention when fewer than num_heads)."""
    intermediate_size: int
    """Width of each block's gated MLP."""
    vocab_size: int
    """Rows of the embedding and of the output head (may exceed the tokenizer's vocabulary)."""
    rope_theta: float = 10000.0
    """Base of the rotary position embedding."""
    rms_norm_eps: float = 1e-6
    """Epsilon of the RMSNorms."""
    tie_word_embeddings: bool = False
    """Whether the output head shares the embedding matrix (stored once in the checkpoint)."""
    max_position_embeddings: int = 4096
    """Longest context the rotary embedding is configured for; bounds the KV-cache length."""

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"decoder.hidden_size {self.hidden_size} is not divisible by decoder.num_heads {self.num_heads}"
            )
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"decoder.num_heads {self.num_heads} is not a multiple of decoder.num_kv_heads {self.num_kv_heads}"
            )

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class ReferenceConfig:
    """A BlueLM-V-style model: SigLIP tower -> 2x2 token downsampler -> MLP projector -> decoder."""

    variant: str
    """Preset name this config came from ("tiny", "mid", "bluelm-v-3b") or "custom"."""
    tower: TowerConfig
    """The SigLIP vision tower."""
    downsampler_dim: int
    """Output width of the downsampler's Linear (input is 4 * tower.hidden_size)."""
    projector_dim: int
    """Hidden width of the 2-layer GELU projector (its output is decoder.hidden_size)."""
    decoder: DecoderConfig
    """The language model."""
    question_template: str = "{question}"
    """The model's prompt style (``PromptFormat.question_template``): how ``Session`` words a
    user's question for it. Absent from older config.json files: the question as typed."""

    @property
    def tokens_per_tile(self) -> int:
        """Image tokens per tile after the downsampler: ceil(patches_per_side / 2) ** 2."""
        return math.ceil(self.tower.patches_per_side / 2) ** 2


def default_vision_config(cfg: ReferenceConfig, **overrides: object) -> VisionConfig:
    """The preprocessing a model of this architecture needs: tile size and tokens per tile fixed by ``cfg``.

    SigLIP is trained with mean = std = 0.5, which is VisionConfig's default; everything else
    (policy, limits, thumbnail) keeps VisionConfig's defaults unless overridden.

    Args:
        cfg (ReferenceConfig): the architecture.
        **overrides: other VisionConfig fields (``max_side=4``, ...).

    Returns:
        VisionConfig: with ``tile_size = cfg.tower.image_size`` and ``tokens_per_tile = cfg.tokens_per_tile``.
    """
    base = VisionConfig(tile_size=cfg.tower.image_size, tokens_per_tile=cfg.tokens_per_tile)
    return dataclasses.replace(base, **overrides) if overrides else base
