"""The contract methods over an exported ExecuTorch program (``model.pte``), loaded on the host.

:class:`PteMethods` implements :class:`~mobile_mllm.runtime.methods.ModelMethods` with
``executorch.runtime``, so the session loop runs the exported program exactly as it runs the
eager model; :func:`open_program_dir` opens an export directory (program, tokenizer, manifest)
as a session backend. This is the only module that knows ExecuTorch's import-order rule: the
LLM custom ops (``llama::update_cache``, ``llama::custom_sdpa``) and the quantized kernels
(``embedding_byte``/``embedding_4bit``) must be registered *before* a program is loaded, else
loading fails with ``kernel 'llama::update_cache.out' not found``.

Deliberately not here: the loop (``session.py``), exporting (``mobile_mllm.export``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.errors import ContractError, MissingDependencyError
from mobile_mllm.runtime.methods import check_cache_fits

if TYPE_CHECKING:
    import torch

    from mobile_mllm.runtime.methods import Backend, RuntimeConfig

logger = logging.getLogger(__name__)

__all__ = ["PteMethods", "load_executorch_kernels", "native_log_to_debug", "open_program_dir"]


def load_executorch_kernels() -> Any:
    """Register ExecuTorch's LLM custom ops and quantized kernels, then return the ``Runtime``.

    Raises:
        MissingDependencyError: executorch is not installed.
    """
    try:
        # Order matters: kernels first, then the runtime that resolves them at load time.
        from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401
        from executorch.kernels import quantized  # noqa: F401
        from executorch.runtime import Runtime
    except ImportError as e:
        raise MissingDependencyError(f"running a .pte needs executorch (pip install executorch==1.5.1): {e}") from e
    return Runtime.get()


@contextlib.contextmanager
def native_log_to_debug() -> Iterator[None]:
    """Send what ExecuTorch's C++ runtime prints on stderr (fd 2) to this module's DEBUG log.

    Loading a program makes the runtime print CPU-probing lines (``[cpuinfo_utils.cpp:…]``)
    that say nothing about the user's job; they stay available with ``-vv``. When the block
    raises (a corrupt or incompatible program), the captured lines are logged as warnings,
    since they are then the runtime's own diagnosis.
    """
    sys.stderr.flush()
    saved_fd, saved_stream = os.dup(2), sys.stderr
    level = logging.DEBUG
    python_side = io.StringIO()  # the pybindings may print through sys.stderr rather than fd 2
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        sys.stderr = python_side
        try:
            yield
        except BaseException:
            level = logging.WARNING  # a failed load: what the runtime printed is the diagnosis
            raise
        finally:
            sys.stderr = saved_stream
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            sink.seek(0)
            text = sink.read().decode(errors="replace") + python_side.getvalue()
            for line in text.splitlines():
                logger.log(level, "executorch: %s", line)


class PteMethods:
    """:class:`~mobile_mllm.runtime.methods.ModelMethods` over a loaded ``.pte`` program.

    The limits come from the program itself (its constant methods) and the manifest:
    ``max_context_len`` is the KV cache (``get_max_context_len``), ``max_seq_len`` the longest
    ``text_decoder`` call (``get_max_seq_len``), ``max_tile_batch`` the manifest's tile batch;
    ``prefill_chunk`` starts at ``max_seq_len`` and the caller may lower it.

    Each contract method is loaded from its own ``Program`` instance, i.e. with its own
    memory-planned arenas, as ExecuTorch's C++ ``Module`` (the stock LLM/multimodal runners,
    the phone) does by default. Why: ExecuTorch's Python runtime gives all host-only methods of
    *one* loaded program a single shared set of arenas, and the KV cache is a mutable buffer
    planned into ``text_decoder``'s arena, so a ``token_embedding`` call between two decode
    steps overwrote part of the cache (measured on builtin:synth-small's fp32 program: decode
    logits 3e-2 away from the eager model, a ``vision_encoder`` call 1.2e-1) while every method
    alone was exact. The file is memory-mapped, so the extra instances cost no weight memory.

    Args:
        path (str | Path): the ``.pte`` file.
        tile_batch (int): the largest ``vision_encoder`` batch the program was exported for.

    A program may lack ``vision_encoder`` (exported with ``--no-pte-vision-encoder``: ``vision.onnx``
    beside it encodes images, ``runtime/onnx_vision.py``); ``has_vision_encoder`` says so, and
    calling the method then raises a :class:`ContractError` saying where images go instead.

    Raises:
        ContractError: the program lacks ``token_embedding``, ``text_decoder`` or the required constant method.
    """

    has_vision_encoder: bool = True
    """Whether the program has its own ``vision_encoder`` method."""

    def __init__(self, path: str | Path, *, tile_batch: int, enable_etdump: bool = False) -> None:
        self.path = Path(path)
        self.enable_etdump = enable_etdump
        if not self.path.is_file():
            raise ContractError(f"program not found: {self.path}")
        with native_log_to_debug():
            self._load()
        self.max_tile_batch = tile_batch

    def _load_program(self) -> Any:
        try:
            return load_executorch_kernels().load_program(str(self.path), enable_etdump=self.enable_etdump)
        except RuntimeError as e:
            raise ContractError(
                f"cannot load program {self.path} ({e}): the file is corrupt, truncated or was written by an "
                "incompatible ExecuTorch version; re-export it with mobile-mllm export (executorch 1.5.1)"
            ) from e

    def _load(self) -> None:
        self._program = self._load_program()
        names = set(self._program.method_names)
        required = [m for m in contract.MODEL_METHODS if m != contract.VISION_ENCODER]  # see has_vision_encoder
        missing = [m for m in (*required, *contract.REQUIRED_CONSTANT_METHODS) if m not in names]
        if missing:
            raise ContractError(f"{self.path} lacks method(s) {', '.join(missing)}; re-export it with mobile-mllm export")
        self.has_vision_encoder = contract.VISION_ENCODER in names
        # one Program (own arenas) per method: see the class docstring; kept referenced for as long as its
        # method is, rather than relying on the binding to keep a dropped Program's arenas alive
        self._method_programs = {name: self._load_program() for name in contract.MODEL_METHODS if name in names}
        self._methods = {name: program.load_method(name) for name, program in self._method_programs.items()}
        self.constants = {
            name: self._constant(name) for name in contract.CONSTANT_METHODS if name in names
        }
        self.max_seq_len = int(self.constants[contract.GET_MAX_SEQ_LEN])
        self.max_context_len = int(self.constants.get(contract.GET_MAX_CONTEXT_LEN, self.max_seq_len))
        self.prefill_chunk = self.max_seq_len

    def write_etdump(self, path: str | Path) -> list[Path]:
        """Write each method's ETDump (one Program per method) to ``<path>.<method>``; the files written."""
        written = []
        for name, program in self._method_programs.items():
            target = Path(f"{path}.{name}")
            program.write_etdump_result_to_file(str(target), str(target) + ".debug")
            written.append(target)
        return written

    def _constant(self, name: str) -> Any:
        values = self._program.load_method(name).execute([])
        if len(values) == 1:
            value = values[0]
            return value.item() if hasattr(value, "item") and getattr(value, "numel", lambda: 2)() == 1 else value
        return [v.item() if hasattr(v, "item") else v for v in values]

    def _run(self, name: str, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self._methods[name].execute([x.contiguous() for x in inputs])[0].clone()

    def vision_encoder(self, tiles: torch.Tensor) -> torch.Tensor:
        """Tiles ``[B, 3, S, S]`` float32 -> ``[B, N, D]``, ``1 <= B <= max_tile_batch``."""
        import torch

        if tiles.dim() != 4 or not 1 <= tiles.shape[0] <= self.max_tile_batch:
            raise ContractError(
                f"vision_encoder takes [B, 3, S, S] with 1 <= B <= {self.max_tile_batch} tiles, got {tuple(tiles.shape)}"
            )
        if not self.has_vision_encoder:
            raise ContractError(
                f"{self.path} has no {contract.VISION_ENCODER} (exported with --no-pte-vision-encoder): its images are "
                f"encoded by {contract.VISION_ONNX_FILE} beside it, so open the export directory (mobile-mllm run DIR, "
                "Session.from_dir) rather than the .pte alone, or re-export with --pte-vision-encoder"
            )
        return self._run(contract.VISION_ENCODER, [tiles.to(torch.float32)])

    def token_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[1, T]`` -> ``[1, T, D]``."""
        import torch

        return self._run(contract.TOKEN_EMBEDDING, [tokens.to(torch.long).reshape(1, -1)])

    def text_decoder(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[1, T, D]`` at ``start_pos..`` -> float32 logits ``[1, V]`` of the last position."""
        import torch

        length = embeds.shape[1]
        start = int(start_pos.reshape(-1)[0])
        if not 1 <= length <= self.max_seq_len:
            raise ContractError(f"text_decoder takes 1 to {self.max_seq_len} positions per call, got {length}")
        check_cache_fits(start, length, self.max_context_len)
        pos = torch.tensor([start], dtype=torch.long)
        return self._run(contract.TEXT_DECODER, [embeds.to(torch.float32), pos]).reshape(1, -1).float()


def open_program_dir(path: str | Path, runtime: RuntimeConfig | None = None, *, enable_etdump: bool = False) -> Backend:
    """Open an export directory (``model.pte``, ``tokenizer.json``, ``manifest.json``) as a session backend.

    The program's static sizes win over ``runtime`` (a program cannot grow its KV cache); a
    ``runtime`` asking for more is logged.

    Args:
        path (str | Path): the directory ``mobile-mllm export`` wrote.
        runtime (RuntimeConfig | None): the sizes the caller asked for. Default None.
        enable_etdump (bool): record ExecuTorch's per-operator profile (``PteMethods.write_etdump``). Default False.

    Raises:
        ContractError: missing files, or a manifest/program that does not follow the contract.
    """
    from tokenizers import Tokenizer

    from mobile_mllm.config import from_dict
    from mobile_mllm.export.manifest import read_manifest
    from mobile_mllm.model.adapter import PromptFormat
    from mobile_mllm.runtime.methods import Backend
    from mobile_mllm.runtime.onnx_vision import with_vision_engine
    from mobile_mllm.runtime.stats import now_ms
    from mobile_mllm.vision.config import VisionConfig

    directory = Path(path)
    start = now_ms()
    manifest = read_manifest(directory)
    tokenizer_file = directory / contract.TOKENIZER_FILE
    if not tokenizer_file.is_file():
        raise ContractError(f"{tokenizer_file} not found; re-export the model")
    methods = PteMethods(directory / contract.PROGRAM_FILE, tile_batch=int(manifest[contract.M_TILE_BATCH]),
                         enable_etdump=enable_etdump)
    if runtime is not None and (
        runtime.max_context_len > methods.max_context_len or runtime.tile_batch > methods.max_tile_batch
    ):
        logger.info(
            "program limits win: max_context_len %d, tile_batch %d, max_seq_len %d (asked %d, %d, prefill_chunk %d)",
            methods.max_context_len, methods.max_tile_batch, methods.max_seq_len,
            runtime.max_context_len, runtime.tile_batch, runtime.prefill_chunk,
        )
    if runtime is not None and runtime.prefill_chunk < methods.prefill_chunk:
        methods.prefill_chunk = runtime.prefill_chunk
    elif int(manifest[contract.M_PREFILL_CHUNK]) < methods.prefill_chunk:
        methods.prefill_chunk = int(manifest[contract.M_PREFILL_CHUNK])
    end = now_ms()
    logger.info("loaded %s in %.0f ms", directory / contract.PROGRAM_FILE, end - start)
    return Backend(
        methods=with_vision_engine(methods, directory, manifest),
        tokenizer=Tokenizer.from_file(str(tokenizer_file)),
        prompt=from_dict(PromptFormat, manifest[contract.M_PROMPT], source=str(directory / contract.MANIFEST_FILE)),
        vision=from_dict(VisionConfig, manifest[contract.M_VISION], source=str(directory / contract.MANIFEST_FILE)),
        eos_ids=tuple(int(i) for i in manifest[contract.M_EOS_IDS]),
        model_load_start_ms=start,
        model_load_end_ms=end,
    )
