"""``manifest.json``: everything a device needs to preprocess, prompt and run the program.

Written by the exporter, read by the host runtime and the Android app; every key is spelled in
:mod:`mobile_mllm.contract` (``MANIFEST_KEYS``). Later steps read precision, grid policy, tile
and chunk sizes from here; they never re-infer them from file names.

Deliberately not here: what the values mean to the runtime (``runtime/pte.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.config import to_dict
from mobile_mllm.errors import ContractError

if TYPE_CHECKING:
    from mobile_mllm.export.program import ExportJob
    from mobile_mllm.model.adapter import MultimodalModel

__all__ = ["build_manifest", "read_manifest"]


def build_manifest(
    *,
    model: MultimodalModel,
    job: ExportJob,
    max_chunk: int,
    precision: dict[str, Any],
    program: dict[str, Any],
) -> dict[str, Any]:
    """The manifest of an exported program (all of ``contract.MANIFEST_KEYS``, plus the export settings).

    Args:
        model (MultimodalModel): the loaded (float) model.
        job (ExportJob): the resolved export settings (stored under ``export``).
        max_chunk (int): the most positions ``text_decoder`` accepts per call.
        precision (dict): module -> precision summary.
        program (dict): file name, size, sha256, methods.
    """
    num_params = {
        "vision_encoder": sum(p.numel() for p in model.vision_encoder.parameters()),
        "token_embedding": sum(p.numel() for p in model.token_embedding.parameters()),
        "text_decoder": sum(p.numel() for p in model.text_decoder.parameters()),
    }
    manifest = {
        "format": contract.MANIFEST_FORMAT,
        "version": contract.MANIFEST_VERSION,
        "model": {
            "family": model.family,
            "variant": getattr(model.extra.get("config"), "variant", None),
            "source": str(model.source) if model.source is not None else job.model,
            "num_parameters": num_params,
            "vocab_size": model.vocab_size,
        },
        "vision": to_dict(model.vision),
        "prompt": to_dict(model.prompt),
        "special_tokens": dict(model.special_ids),
        "eos_ids": list(model.eos_ids),
        "bos_id": model.bos_id,
        "max_seq_len": job.target.max_context,
        "max_context_len": job.target.max_context,
        "prefill_chunk": job.target.prefill_chunk,
        "max_chunk": max_chunk,
        "tile_batch": job.target.tile_batch,
        "tokens_per_tile": model.vision.tokens_per_tile,
        "hidden_size": model.hidden_size,
        "precision": precision,
        "program": program,
        "export": to_dict(job),
    }
    missing = [k for k in contract.MANIFEST_KEYS if k not in manifest]
    if missing:  # internal invariant: the contract and this writer agree
        raise ContractError(f"manifest writer misses contract keys {missing}")
    return manifest


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and check ``manifest.json`` of an exported directory.

    Raises:
        ContractError: missing or unreadable file, another format, a newer version, or missing keys.
    """
    path = Path(directory) / contract.MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ContractError(f"{path} not found; is {directory} an exported program directory?") from e
    except (OSError, ValueError) as e:
        raise ContractError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or data.get("format") != contract.MANIFEST_FORMAT:
        raise ContractError(f"{path}: format is not {contract.MANIFEST_FORMAT!r}")
    version = data.get("version")
    if not isinstance(version, int) or version > contract.MANIFEST_VERSION:
        raise ContractError(
            f"{path}: manifest version {version!r} is newer than this toolkit reads ({contract.MANIFEST_VERSION}); "
            "upgrade mobile-mllm or re-export"
        )
    missing = [k for k in contract.MANIFEST_KEYS if k not in data]
    if missing:
        raise ContractError(f"{path}: missing keys {', '.join(missing)}; re-export the model")
    return data
