"""What an export is asked to do: the ``[target]`` table and the whole job of an export recipe.

Its own module so that ``program.py`` (the stage driver), ``manifest.py`` and the backends can
all name these dataclasses without importing one another. Light to import: no torch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mobile_mllm import contract
from mobile_mllm.errors import ConfigError
from mobile_mllm.quant.recipe import QuantConfig
from mobile_mllm.vision.config import GridPolicy

__all__ = ["ExportJob", "OnnxQuantization", "Target", "TargetConfig", "VisionEngine"]


class Target(str, enum.Enum):
    """Where the program runs (a key of ``backends.BACKENDS``)."""

    CPU = "cpu"
    MEDIATEK = "mediatek"


class VisionEngine(str, enum.Enum):
    """Which runtime encodes images (values spelled in ``contract.py``)."""

    EXECUTORCH = contract.ENGINE_EXECUTORCH
    ONNXRUNTIME = contract.ENGINE_ONNXRUNTIME


class OnnxQuantization(str, enum.Enum):
    """How ``vision.onnx``'s weights are quantized (``export/onnx_vision.py``)."""

    DYNAMIC = "dynamic"
    FP32 = "fp32"


@dataclass(frozen=True)
class TargetConfig:
    """Static sizes and the backend of the program (the ``[target]`` table of an export recipe).

    The names are the toolkit's one name per quantity (``contract.py`` states what the program's
    constant methods mean in ExecuTorch's terms).
    """

    target: Target = Target.CPU
    """Backend: cpu (XNNPACK) or mediatek (needs the NeuroPilot SDK)."""
    max_context_len: int = 2048
    """KV-cache positions (prompt, image tokens and answers together)."""
    prefill_chunk: int = 128
    """Positions per text_decoder call while prefilling (the program also accepts one tile's tokens at once)."""
    tile_batch: int = 4
    """Largest number of tiles per vision_encoder call."""
    max_tiles: int | None = None
    """Largest number of local tiles m*n per image, thumbnail not counted (None: the model's); alone, it lifts the side bound, as in `grid`."""
    max_side: int | None = None
    """Largest number of tiles across or down per image (None: the model's, unless max_tiles alone is given)."""
    grid_policy: GridPolicy | None = None
    """Tile-grid rule written to the manifest (None: the model's own, e.g. internvl for InternVL; relaxed: BlueLM-V-3B's)."""
    vision_engine: VisionEngine = VisionEngine.EXECUTORCH
    """Which program encodes images: model.pte's vision_encoder, or vision.onnx beside it run by ONNX Runtime (cpu target only)."""
    onnx_quantization: OnnxQuantization = OnnxQuantization.DYNAMIC
    """vision.onnx's weights: dynamic (int8 weights, int8 activations quantized per call) or fp32."""

    def __post_init__(self) -> None:
        for name in ("max_context_len", "prefill_chunk", "tile_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"target.{name} must be >= 1, got {getattr(self, name)}")
        if self.prefill_chunk > self.max_context_len:
            raise ConfigError(
                f"target.prefill_chunk ({self.prefill_chunk}) must not exceed target.max_context_len "
                f"({self.max_context_len})"
            )
        for name in ("max_tiles", "max_side"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"target.{name} must be >= 1, got {value}")
        if self.vision_engine == VisionEngine.ONNXRUNTIME and self.target != Target.CPU:
            raise ConfigError(
                f"target.vision_engine onnxruntime runs on the phone's CPU, but target.target is {Target(self.target).value}; "
                "use --vision-engine executorch with this target"
            )


@dataclass(frozen=True)
class ExportJob:
    """One export: which model, which precision, which target, where to."""

    model: str = ""
    """Model directory (or builtin:NAME)."""
    output: str = ""
    """Output directory (created; existing program files in it are replaced on success)."""
    quant: QuantConfig = field(default_factory=QuantConfig)
    """Precision recipe."""
    target: TargetConfig = field(default_factory=TargetConfig)
    """Backend and static sizes."""
    verify: bool = True
    """Load the program on the host and compare it with the eager model."""
    verify_tokens: int = 16
    """Greedy tokens compared with the float model during verification."""
    seed: int = 0
    """Seed of the random verification inputs."""

    def __post_init__(self) -> None:
        if self.verify_tokens < 1:
            raise ConfigError(f"verify_tokens must be >= 1, got {self.verify_tokens}")
