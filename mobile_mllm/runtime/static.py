"""The static-shape runner: the contract methods over fixed-shape NPU graphs, with the KV cache held here.

MediaTek's NPU runs graphs whose every shape is fixed (``export/static_decoder.py`` describes
the decoder shards' inputs and outputs). :class:`StaticMethods` turns them back into the
:class:`~mobile_mllm.runtime.methods.ModelMethods` the session loop runs on, so chunked prefill,
decoding, sampling and the prompt layout are the session's, exactly as for the eager model and
the CPU program:

* ``vision_encoder``: tiles in groups of ``tile_batch`` through the batch-``tile_batch`` graph,
  the rest one by one through the batch-1 graph (9 tiles: 4 + 4 + 1);
* ``token_embedding``: a row lookup in the exported table (the phone does it on the CPU);
* ``text_decoder``: 1 position through the generate graphs; 2 to ``prompt_len`` positions through
  the prompt graphs, padded to ``prompt_len`` (the padding rows are computed and thrown away;
  causality keeps them out of every real row). The RoPE rows and the mask are built here from
  the start position; each shard's new keys/values are written into the cache at their positions.

This is the one implementation of that logic: export calibrates the quantizer's observers
through it, ``mobile-mllm run``/``eval`` on a ``--simulate`` export run it, and the phone's
runner mirrors it. Deliberately not here: the graphs (``export/static_decoder.py``), loading a
``.pte`` (``pte.py``), the loop (``session.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.errors import ContractError, MissingDependencyError
from mobile_mllm.runtime.methods import check_cache_fits

if TYPE_CHECKING:
    import torch

    from mobile_mllm.runtime.methods import Backend, RuntimeConfig

logger = logging.getLogger(__name__)

__all__ = ["StaticLayout", "StaticMethods", "attention_mask", "open_static_dir", "rope_rows"]

Graph = Callable[..., Any]
"""A fixed-shape graph: an ``ExportedProgram``'s module, a PT2E-prepared module (calibration), or an eager shard."""


@dataclass(frozen=True)
class StaticLayout:
    """The fixed sizes the graphs were exported with (the manifest's ``static_programs`` section)."""

    max_context_len: int
    """KV-cache positions ``C`` (the cache inputs' length)."""
    prompt_len: int
    """Positions per prompt-graph call (128 by default); the generate graphs take 1."""
    tile_batch: int
    """Tiles per call of the big vision graph (the other takes 1)."""
    shards: tuple[tuple[int, int], ...]
    """Each decoder shard's ``[first, last)`` layers, in order."""
    num_kv_heads: int
    head_dim: int
    mask_value: float


def rope_rows(table: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """Rows ``start .. start+length-1`` of a ``[C, head_dim]`` RoPE table, zero past its end (padding positions).

    Example:
        >>> import torch
        >>> rope_rows(torch.arange(6.0).reshape(3, 2), 2, 2).tolist()
        [[4.0, 5.0], [0.0, 0.0]]
    """
    import torch

    out = torch.zeros(length, table.shape[1], dtype=table.dtype)
    end = min(start + length, table.shape[0])
    if end > start:
        out[: end - start] = table[start:end]
    return out


def attention_mask(start: int, length: int, max_context_len: int, mask_value: float) -> torch.Tensor:
    """The ``[1, 1, length, C + length]`` additive mask of a call writing positions ``start ..``.

    Query row ``i`` (position ``start + i``) sees the cache's first ``start`` columns (earlier
    calls) and the call's own columns ``0 .. i`` (causal); everything else gets ``mask_value``.
    A padded prompt chunk needs nothing more: a real row never sees a later (padding) column.

    Example:
        >>> attention_mask(1, 2, 2, -9.0)[0, 0].tolist()
        [[0.0, -9.0, 0.0, -9.0], [0.0, -9.0, 0.0, 0.0]]
    """
    import torch

    mask = torch.full((length, max_context_len + length), mask_value)
    mask[:, :start] = 0.0
    mask[:, max_context_len:] = torch.triu(torch.full((length, length), mask_value), diagonal=1)
    return mask.reshape(1, 1, length, max_context_len + length)


class StaticMethods:
    """:class:`~mobile_mllm.runtime.methods.ModelMethods` over fixed-shape graphs (see the module docstring).

    Args:
        layout (StaticLayout): the sizes the graphs were exported with.
        vision (dict[int, Graph]): tile batch -> vision graph (``layout.tile_batch`` and 1).
        prompt (Sequence[Graph]): per shard, the ``prompt_len``-position graph.
        generate (Sequence[Graph]): per shard, the 1-position graph.
        embedding (torch.Tensor): ``[V, D]`` token-embedding table.
        rope_cos (torch.Tensor): ``[C, head_dim]``.
        rope_sin (torch.Tensor): ``[C, head_dim]``.
    """

    def __init__(
        self, layout: StaticLayout, *, vision: dict[int, Graph], prompt: Sequence[Graph], generate: Sequence[Graph],
        embedding: torch.Tensor, rope_cos: torch.Tensor, rope_sin: torch.Tensor,
    ) -> None:
        import torch

        self.layout = layout
        self.max_context_len = layout.max_context_len
        self.max_tile_batch = layout.tile_batch
        self.prefill_chunk = layout.prompt_len
        self._vision, self._prompt, self._generate = vision, list(prompt), list(generate)
        self._embedding, self._cos, self._sin = embedding, rope_cos, rope_sin
        shape = (1, layout.num_kv_heads, layout.max_context_len, layout.head_dim)
        self.kv = [[torch.zeros(shape) for _ in range(2 * (b - a))] for a, b in layout.shards]
        """Per shard, the caches in the graphs' order (k, v of each layer)."""

    def vision_encoder(self, tiles: torch.Tensor) -> torch.Tensor:
        """Tiles ``[B, 3, S, S]`` -> ``[B, N, D]``: groups of ``tile_batch``, then single tiles."""
        import torch

        if tiles.dim() != 4 or not 1 <= tiles.shape[0] <= self.max_tile_batch:
            raise ContractError(
                f"vision_encoder takes [B, 3, S, S] with 1 <= B <= {self.max_tile_batch} tiles, got {tuple(tiles.shape)}"
            )
        big = self.layout.tile_batch
        outputs, i = [], 0
        with torch.no_grad():
            while i < tiles.shape[0]:
                n = big if tiles.shape[0] - i >= big else 1
                outputs.append(self._vision[n](tiles[i : i + n].float()))
                i += n
        return torch.cat(outputs)

    def token_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[1, T]`` -> ``[1, T, D]`` rows of the table."""
        import torch

        return self._embedding[tokens.to(torch.long).reshape(1, -1)]

    def text_decoder(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[1, n, D]`` at ``start_pos..`` -> float32 logits ``[1, V]`` of the last real position."""
        import torch

        n = embeds.shape[1]
        start = int(start_pos.reshape(-1)[0])
        if not 1 <= n <= self.prefill_chunk:
            raise ContractError(f"text_decoder takes 1 to {self.prefill_chunk} positions per call, got {n}")
        check_cache_fits(start, n, self.max_context_len)
        length, graphs = (1, self._generate) if n == 1 else (self.prefill_chunk, self._prompt)
        hidden = torch.zeros(1, length, embeds.shape[2])
        hidden[:, :n] = embeds.float()
        cos, sin = rope_rows(self._cos, start, length), rope_rows(self._sin, start, length)
        mask = attention_mask(start, length, self.max_context_len, self.layout.mask_value)
        with torch.no_grad():
            for graph, caches in zip(graphs, self.kv):
                out = graph(hidden, cos, sin, mask, *caches)
                hidden = out[0]
                for cache, new in zip(caches, out[1:]):
                    cache[:, :, start : start + n] = new[:, :, :n]
        return hidden[:, n - 1].reshape(1, -1).float()


def open_static_dir(path: str | Path, runtime: RuntimeConfig | None = None) -> Backend:
    """Open a ``--simulate`` MediaTek export (its ``torch.export`` graphs, tables, tokenizer, manifest) as a session backend.

    The graphs' fixed sizes win over ``runtime`` (a different size would need a re-export).

    Raises:
        ContractError: a missing file, or a manifest without a simulated static program.
    """
    import torch
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    from mobile_mllm.config import from_dict
    from mobile_mllm.export.manifest import read_manifest
    from mobile_mllm.model.adapter import PromptFormat
    from mobile_mllm.runtime.methods import Backend
    from mobile_mllm.runtime.stats import now_ms
    from mobile_mllm.vision.config import VisionConfig

    directory = Path(path)
    start = now_ms()
    manifest = read_manifest(directory)
    static = manifest.get(contract.M_STATIC)
    if static is None or not static[contract.M_STATIC_SIMULATED]:
        raise ContractError(f"{directory} holds no simulated static-shape program (export it with --simulate)")

    def need(name: str) -> Path:
        file = directory / name
        if not file.is_file():
            raise ContractError(f"{file} not found; re-export the model")
        return file

    def graph(name: str) -> Graph:
        return torch.export.load(str(need(name))).module()

    try:  # registers the quantize/dequantize ops the quantized graphs call, before loading them
        import torchao.quantization.pt2e  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(f"running simulated NPU graphs needs torchao (pip install torchao): {e}") from e
    files = static[contract.M_STATIC_FILES]
    layout = StaticLayout(
        max_context_len=int(manifest[contract.M_MAX_CONTEXT_LEN]),
        prompt_len=int(static[contract.M_STATIC_PROMPT_LEN]),
        tile_batch=int(manifest[contract.M_TILE_BATCH]),
        shards=tuple((int(s[0]), int(s[1])) for s in static[contract.M_STATIC_SHARDS]),
        num_kv_heads=int(static[contract.M_STATIC_KV_HEADS]),
        head_dim=int(static[contract.M_STATIC_HEAD_DIM]),
        mask_value=float(static[contract.M_STATIC_MASK_VALUE]),
    )
    tables = load_file(str(need(static[contract.M_STATIC_TABLES])))
    methods = StaticMethods(
        layout,
        vision={int(batch): graph(name) for batch, name in files[contract.STATIC_VISION].items()},
        prompt=[graph(name) for name in files[contract.STATIC_PROMPT]],
        generate=[graph(name) for name in files[contract.STATIC_GENERATE]],
        embedding=tables[contract.STATIC_TABLE_EMBEDDING],
        rope_cos=tables[contract.STATIC_TABLE_ROPE_COS],
        rope_sin=tables[contract.STATIC_TABLE_ROPE_SIN],
    )
    if runtime is not None and (runtime.max_context_len, runtime.tile_batch, runtime.prefill_chunk) != (
        layout.max_context_len, layout.tile_batch, layout.prompt_len
    ):
        logger.info(
            "static graphs' sizes win: max_context_len %d, tile_batch %d, prompt_len %d",
            layout.max_context_len, layout.tile_batch, layout.prompt_len,
        )
    end = now_ms()
    logger.info("loaded %d simulated NPU graphs from %s in %.0f ms", sum(
        len(v) for v in files.values()), directory, end - start)
    source = str(directory / contract.MANIFEST_FILE)
    return Backend(
        methods=methods,
        tokenizer=Tokenizer.from_file(str(need(contract.TOKENIZER_FILE))),
        prompt=from_dict(PromptFormat, manifest[contract.M_PROMPT], source=source),
        vision=from_dict(VisionConfig, manifest[contract.M_VISION], source=source),
        eos_ids=tuple(int(i) for i in manifest[contract.M_EOS_IDS]),
        model_load_start_ms=start,
        model_load_end_ms=end,
    )
