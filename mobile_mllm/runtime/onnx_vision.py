"""The ``vision_encoder`` method run by ONNX Runtime from ``vision.onnx``, beside a ``.pte``'s other methods.

:func:`with_vision_engine` is what the host runtime calls after loading a program directory: when
the manifest's ``vision_engine`` is ``onnxruntime`` it wraps the program's methods so that images
go through :class:`OnnxVisionEncoder` and everything else through the ``.pte``; otherwise it
returns the methods unchanged. The session loop sees one
:class:`~mobile_mllm.runtime.methods.ModelMethods` either way.

Deliberately not here: making ``vision.onnx`` (``export/onnx_vision.py``), checking it
(``runtime/parity.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.errors import ContractError, MissingDependencyError

if TYPE_CHECKING:
    import torch

    from mobile_mllm.runtime.methods import ModelMethods

logger = logging.getLogger(__name__)

__all__ = [
    "OnnxVisionEncoder",
    "OnnxVisionMethods",
    "pte_has_vision_encoder",
    "vision_engine",
    "vision_program_file",
    "with_vision_engine",
]


class OnnxVisionEncoder:
    """``vision.onnx`` in an ONNX Runtime CPU session: tiles ``[B, 3, S, S]`` -> embeddings ``[B, N, D]``.

    Args:
        path (str | Path): the ``.onnx`` file.
        max_tile_batch (int): the largest batch accepted (the export's ``tile_batch``).
        threads (int): ONNX Runtime's intra-op threads. Default 0: ONNX Runtime's choice (physical cores).

    Raises:
        ContractError: the file is missing, unreadable, or lacks the contract's input/output names.
        MissingDependencyError: onnxruntime is not installed.
    """

    def __init__(self, path: str | Path, *, max_tile_batch: int, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise MissingDependencyError(f"running vision.onnx needs onnxruntime (pip install 'onnxruntime>=1.32'): {e}") from e
        self.path = Path(path)
        if not self.path.is_file():
            raise ContractError(f"{self.path} not found, but the manifest says images are encoded by onnxruntime; re-export")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.log_severity_level = 3  # warnings about unused initializers etc. say nothing to the user
        try:
            self._session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own (non-exported) exception types
            raise ContractError(f"cannot load {self.path} with onnxruntime ({e}); re-export it") from e
        inputs = [i.name for i in self._session.get_inputs()]
        outputs = [o.name for o in self._session.get_outputs()]
        if inputs != [contract.ONNX_VISION_INPUT] or contract.ONNX_VISION_OUTPUT not in outputs:
            raise ContractError(
                f"{self.path} has inputs {inputs} and outputs {outputs}, expected {contract.ONNX_VISION_INPUT!r} -> "
                f"{contract.ONNX_VISION_OUTPUT!r}; re-export it with mobile-mllm export --vision-engine onnxruntime"
            )
        self.max_tile_batch = max_tile_batch

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        """Tiles ``[B, 3, S, S]`` float32, ``1 <= B <= max_tile_batch`` -> ``[B, N, D]`` float32."""
        import torch

        if tiles.dim() != 4 or not 1 <= tiles.shape[0] <= self.max_tile_batch:
            raise ContractError(
                f"vision_encoder takes [B, 3, S, S] with 1 <= B <= {self.max_tile_batch} tiles, got {tuple(tiles.shape)}"
            )
        x = tiles.detach().to(torch.float32).contiguous().numpy()
        (out,) = self._session.run([contract.ONNX_VISION_OUTPUT], {contract.ONNX_VISION_INPUT: x})
        return torch.from_numpy(out)


class OnnxVisionMethods:
    """:class:`~mobile_mllm.runtime.methods.ModelMethods`: images through ONNX Runtime, text through ``methods``.

    The limits (``max_context_len``, ``max_seq_len``, ``prefill_chunk``, ``max_tile_batch``) are
    the wrapped program's, read and written through to it.
    """

    _LIMITS = ("max_context_len", "max_seq_len", "prefill_chunk", "max_tile_batch")

    def __init__(self, methods: ModelMethods, vision: OnnxVisionEncoder) -> None:
        object.__setattr__(self, "_methods", methods)
        object.__setattr__(self, "_vision", vision)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._methods, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._methods, name, value)

    def vision_encoder(self, tiles: torch.Tensor) -> torch.Tensor:
        """Tiles ``[B, 3, S, S]`` -> ``[B, N, D]`` by ``vision.onnx``."""
        return self._vision(tiles)

    def token_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[1, T]`` -> ``[1, T, D]`` by the program."""
        return self._methods.token_embedding(tokens)

    def text_decoder(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        """Embeddings at ``start_pos..`` -> last-position logits, by the program."""
        return self._methods.text_decoder(embeds, start_pos)


def vision_engine(manifest: dict[str, Any]) -> str:
    """The manifest's image engine (``contract.ENGINE_*``); a manifest without the key predates it: executorch.

    Raises:
        ContractError: an engine this toolkit does not know.
    """
    engine = manifest.get(contract.M_VISION_ENGINE, contract.ENGINE_EXECUTORCH)
    if engine not in (contract.ENGINE_EXECUTORCH, contract.ENGINE_ONNXRUNTIME):
        raise ContractError(
            f"manifest {contract.M_VISION_ENGINE} is {engine!r}, expected {contract.ENGINE_EXECUTORCH!r} or "
            f"{contract.ENGINE_ONNXRUNTIME!r}; upgrade mobile-mllm or re-export"
        )
    return engine


def vision_program_file(manifest: dict[str, Any]) -> str | None:
    """The file beside ``model.pte`` that encodes images (``vision.onnx``), or None when the ``.pte`` does.

    What a device needs pushed besides the program (``device/push.py``) and what the host runtime opens.

    Raises:
        ContractError: an engine this toolkit does not know.
    """
    if vision_engine(manifest) != contract.ENGINE_ONNXRUNTIME:
        return None
    return str(manifest.get(contract.M_VISION_PROGRAM, {}).get(contract.M_VISION_PROGRAM_FILE, contract.VISION_ONNX_FILE))


def pte_has_vision_encoder(manifest: dict[str, Any]) -> bool:
    """Whether the manifest's ``model.pte`` has its own ``vision_encoder`` (false after ``--no-pte-vision-encoder``).

    Runners that run only the ``.pte`` (ExecuTorch's stock runner, the native Android runner) need it to encode images.
    """
    return contract.VISION_ENCODER in manifest.get(contract.M_PROGRAM, {}).get(contract.M_PROGRAM_METHODS, [])


def with_vision_engine(methods: ModelMethods, directory: str | Path, manifest: dict[str, Any]) -> ModelMethods:
    """``methods`` with images encoded by the engine the manifest names (unchanged for executorch).

    Args:
        methods (ModelMethods): the program's methods (``PteMethods``).
        directory (str | Path): the export directory (``vision.onnx`` is looked up in it).
        manifest (dict): its manifest (``read_manifest``).

    Raises:
        ContractError: ``vision.onnx`` is missing or unusable, or the program has no
            ``vision_encoder`` although the manifest says it encodes images.
    """
    file = vision_program_file(manifest)
    if file is None:
        if not getattr(methods, "has_vision_encoder", True):
            raise ContractError(
                f"{Path(directory) / contract.PROGRAM_FILE} has no {contract.VISION_ENCODER} and the manifest's "
                f"{contract.M_VISION_ENGINE} is {contract.ENGINE_EXECUTORCH!r}: nothing can encode images; re-export"
            )
        return methods
    path = Path(directory) / file
    logger.info("images encoded by onnxruntime from %s", path)
    return OnnxVisionMethods(methods, OnnxVisionEncoder(path, max_tile_batch=methods.max_tile_batch))
