"""MediaTek NPU (NeuroPilot) target: guarded, because its SDK is proprietary and not on PyPI.

ExecuTorch's ``executorch.backends.mediatek`` imports the NeuroPilot Express SDK wheels
(``mtk_converter``, ``mtk_neuron``) at package import, so without them even its quantizer
fails to import. This module says what to install instead of failing deep inside ExecuTorch.
It does not pretend to export: MediaTek's LLM flow needs static shapes (a 128-token prompt
method and a 1-token generate method sharing weights, the KV cache as inputs/outputs, PT2E
quantization calibrated on prompts), which this toolkit does not implement yet. Each of those
is one function of :class:`~mobile_mllm.export.backend.ExportBackend` (``prepare`` returns the
two decoder methods, ``method_inputs`` static shapes with the cache tensors, ``quantize`` the
PT2E flow with ``NeuropilotQuantizer``), so implementing it changes only this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from mobile_mllm.errors import ExportError, MissingDependencyError
from mobile_mllm.export.backend import ExportBackend

if TYPE_CHECKING:
    from mobile_mllm.export.config import TargetConfig
    from mobile_mllm.model.adapter import MultimodalModel

__all__ = ["BACKEND", "check", "edge_passes", "partitioners", "require_sdk"]

_INSTALL = (
    "the MediaTek target needs the NeuroPilot Express SDK wheels (mtk_converter, mtk_neuron; "
    "Python 3.10, x86-64 Linux), which are not on PyPI: download them from MediaTek's NeuroPilot "
    "portal, pip install both, then retry; or export with --target cpu"
)


def require_sdk() -> None:
    """Import ExecuTorch's MediaTek backend, or raise with what to install.

    Raises:
        MissingDependencyError: the NeuroPilot SDK (or the backend) is not installed.
    """
    try:
        import executorch.backends.mediatek  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(f"{_INSTALL} ({e})") from e


def check(cfg: TargetConfig) -> None:
    """Fail before any slow stage when the SDK is missing (see :func:`require_sdk`)."""
    del cfg
    require_sdk()


def edge_passes(method: str, cfg: TargetConfig) -> list[Any]:
    """No graph passes of its own (lowering stops in :func:`partitioners` anyway)."""
    del method, cfg
    return []


def partitioners(method: str, cfg: TargetConfig) -> list[Any]:
    """NeuroPilot partitioners for ``method``.

    Raises:
        MissingDependencyError: without the SDK (the usual case).
        ExportError: with the SDK, because the static-shape LLM flow is not implemented.
    """
    require_sdk()
    _not_implemented("lower", method)


def _not_implemented(stage: str, module: str) -> NoReturn:
    raise ExportError(
        f"stage {stage}, module {module}: the MediaTek target needs static-shape prompt/generate "
        "methods and PT2E calibration, which mobile-mllm does not implement yet; use --target cpu"
    )


def _unimplemented_model_step(model: MultimodalModel, cfg: TargetConfig) -> NoReturn:
    del model, cfg
    require_sdk()
    _not_implemented("prepare", "all")


BACKEND = ExportBackend(
    name="mediatek",
    prepare=_unimplemented_model_step,
    method_inputs=_unimplemented_model_step,
    partitioners=partitioners,
    constant_methods=_unimplemented_model_step,
    edge_passes=edge_passes,
    check=check,
)
"""The ``mediatek`` target: fails in ``check`` without the SDK, and in ``prepare`` with it."""
