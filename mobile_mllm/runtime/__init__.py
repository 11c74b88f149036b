"""Running a model on the host: the session loop over eager modules or an exported program.

``Session`` (``session.py``) is the one loop, over the :class:`ModelMethods` protocol
(``methods.py``) that ``EagerMethods`` (``eager.py``) and ``PteMethods`` (``pte.py``) implement;
``layout.py`` orders a prompt's positions, ``sampling.py`` picks tokens, ``stats.py`` records a
run. Importing this package loads no torch (the backends import it when they run).
"""

from mobile_mllm.runtime.eager import EagerMethods
from mobile_mllm.runtime.layout import Segment, TileRef, TokenRun, count_positions, first_turn, image_block, next_turn
from mobile_mllm.runtime.methods import Backend, ModelMethods, RuntimeConfig
from mobile_mllm.runtime.onnx_vision import OnnxVisionEncoder, OnnxVisionMethods, with_vision_engine
from mobile_mllm.runtime.sampling import GenerationConfig, logits_to_probs, sample
from mobile_mllm.runtime.session import Answer, Session, open_backend
from mobile_mllm.runtime.stats import Stats, derive_rates

__all__ = [
    "Answer",
    "Backend",
    "EagerMethods",
    "GenerationConfig",
    "ModelMethods",
    "OnnxVisionEncoder",
    "OnnxVisionMethods",
    "RuntimeConfig",
    "Segment",
    "Session",
    "Stats",
    "TileRef",
    "TokenRun",
    "count_positions",
    "derive_rates",
    "first_turn",
    "image_block",
    "logits_to_probs",
    "next_turn",
    "open_backend",
    "sample",
    "with_vision_engine",
]
