"""MediaTek NPU (NeuroPilot) target: static-shape programs, PT2E A16W4/A16W8, simulated on the host without the SDK.

ExecuTorch's ``executorch.backends.mediatek`` imports the NeuroPilot Express SDK wheels
(``mtk_converter``, ``mtk_neuron``) at package import, so without them even its quantizer
fails to import. The export itself (``export/static_program.py``) does not fit the one-``.pte``
stage driver: the NPU needs fixed shapes, so vision is two graphs (tile batch ``tile_batch``
and 1), the decoder shards of layers with a prompt and a generate graph each and the KV cache
as inputs/outputs, plus a CPU lookup table; it hands that whole flow to the driver as
``export``. With ``--simulate`` it needs no SDK (quantized ``torch.export`` graphs the host
runs); without it, :func:`check` stops before any slow stage unless the SDK is importable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from mobile_mllm.errors import ExportError, MissingDependencyError
from mobile_mllm.export.backend import ExportBackend

if TYPE_CHECKING:
    from mobile_mllm.export.config import TargetConfig
    from mobile_mllm.model.adapter import MultimodalModel

__all__ = ["BACKEND", "check", "edge_passes", "export", "partitioners", "require_sdk"]

_INSTALL = (
    "the MediaTek target needs the NeuroPilot Express SDK wheels (mtk_converter, mtk_neuron; "
    "Python 3.10, x86-64 Linux), which are not on PyPI: download them from MediaTek's NeuroPilot "
    "portal, pip install both, then retry; or add --simulate to run the NPU recipe on this host, "
    "or export with --target cpu"
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
    """Fail before any slow stage when the SDK is missing and the export is not simulated (see :func:`require_sdk`)."""
    if not cfg.simulate:
        require_sdk()


def edge_passes(method: str, cfg: TargetConfig) -> list[Any]:
    """No graph passes of its own."""
    del method, cfg
    return []


def partitioners(method: str, cfg: TargetConfig) -> list[Any]:
    """Not used by the stage driver (:func:`export` lowers each program itself); kept for the protocol.

    Raises:
        MissingDependencyError: without the SDK (the usual case).
        ExportError: with it: the MediaTek programs are lowered by :func:`export`, not method by method.
    """
    require_sdk()
    raise ExportError(f"method {method}: the MediaTek target lowers whole static-shape programs in its own export")


def _whole_export_only(model: MultimodalModel, cfg: TargetConfig) -> NoReturn:
    del model, cfg
    raise ExportError("the MediaTek target's programs are prepared by its own export (export/static_program.py)")


def export(job: Any, **kwargs: Any) -> Any:
    """The whole MediaTek export (``export/static_program.py::export_static``)."""
    from mobile_mllm.export.static_program import export_static

    return export_static(job, **kwargs)


BACKEND = ExportBackend(
    name="mediatek",
    prepare=_whole_export_only,
    method_inputs=_whole_export_only,
    partitioners=partitioners,
    constant_methods=_whole_export_only,
    edge_passes=edge_passes,
    check=check,
    export=export,
)
"""The ``mediatek`` target: static-shape NPU programs (or their host simulation) through its own export."""
