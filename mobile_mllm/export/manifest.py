"""``manifest.json``: everything a device needs to preprocess, prompt and run the program.

Written by the exporter, read by the host runtime and the Android app; every key is spelled in
:mod:`mobile_mllm.contract` and typed in the package's JSON Schema
(:mod:`mobile_mllm.manifest_schema`), which both the writer and :func:`read_manifest` check.
Later steps read precision, grid policy, tile and chunk sizes from here; they never re-infer
them from file names.

Deliberately not here: what the values mean to the runtime (``runtime/pte.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.config import to_dict
from mobile_mllm.errors import ContractError
from mobile_mllm.manifest_schema import check_manifest

if TYPE_CHECKING:
    from mobile_mllm.export.config import ExportJob
    from mobile_mllm.model.adapter import MultimodalModel

__all__ = ["build_manifest", "has_static_programs", "is_program_dir", "read_manifest", "upgrade_manifest"]


def build_manifest(
    *,
    model: MultimodalModel,
    job: ExportJob,
    constants: dict[str, Any],
    precision: dict[str, Any],
    program: dict[str, Any],
    additions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest of an exported program, checked against the schema.

    Args:
        model (MultimodalModel): the loaded (float) model.
        job (ExportJob): the resolved export settings (stored under ``export``).
        constants (dict): the program's constant methods (``max_seq_len`` and
            ``max_context_len`` are copied from them, so the two cannot disagree).
        precision (dict): module -> precision summary.
        program (dict): file name, size, sha256, methods, constant methods.
        additions (dict | None): the backend's extra keys (each must be in the schema). Default None.

    Raises:
        ContractError: the result breaks the schema (a bug in the writer or a backend's additions).
    """
    num_params = {
        contract.VISION_ENCODER: sum(p.numel() for p in model.vision_encoder.parameters()),
        contract.TOKEN_EMBEDDING: sum(p.numel() for p in model.token_embedding.parameters()),
        contract.TEXT_DECODER: sum(p.numel() for p in model.text_decoder.parameters()),
    }
    manifest = {
        contract.M_FORMAT: contract.MANIFEST_FORMAT,
        contract.M_VERSION: contract.MANIFEST_VERSION,
        contract.M_MODEL: {
            contract.M_MODEL_FAMILY: model.family,
            contract.M_MODEL_VARIANT: getattr(model.extra.get("config"), "variant", None),
            contract.M_MODEL_SOURCE: str(model.source) if model.source is not None else job.model,
            contract.M_MODEL_NUM_PARAMETERS: num_params,
            contract.M_MODEL_VOCAB_SIZE: model.vocab_size,
        },
        contract.M_VISION: to_dict(model.vision),
        contract.M_PROMPT: to_dict(model.prompt),
        contract.M_SPECIAL_TOKENS: dict(model.special_ids),
        contract.M_EOS_IDS: list(model.eos_ids),
        contract.M_BOS_ID: model.bos_id,
        contract.M_MAX_SEQ_LEN: constants[contract.GET_MAX_SEQ_LEN],
        contract.M_MAX_CONTEXT_LEN: constants.get(contract.GET_MAX_CONTEXT_LEN, job.target.max_context_len),
        contract.M_PREFILL_CHUNK: job.target.prefill_chunk,
        contract.M_TILE_BATCH: job.target.tile_batch,
        contract.M_TOKENS_PER_TILE: model.vision.tokens_per_tile,
        contract.M_HIDDEN_SIZE: model.hidden_size,
        contract.M_PRECISION: precision,
        contract.M_PROGRAM: program,
        contract.M_EXPORT: to_dict(job),
        **(additions or {}),
    }
    check_manifest(manifest, "the exporter")
    return manifest


def upgrade_manifest(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 manifest in version 2's terms (``max_chunk`` became ``max_seq_len``); others unchanged.

    Example:
        >>> upgrade_manifest({"version": 1, "max_seq_len": 2048, "max_chunk": 128})
        {'version': 2, 'max_seq_len': 128}
    """
    if data.get(contract.M_VERSION) != 1:
        return data
    out = {k: v for k, v in data.items() if k != contract.M_V1_MAX_CHUNK}
    out[contract.M_VERSION] = 2
    if contract.M_V1_MAX_CHUNK in data:
        out[contract.M_MAX_SEQ_LEN] = data[contract.M_V1_MAX_CHUNK]
    return out


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read ``manifest.json`` of an exported directory, upgrade a version-1 one, and check it against the schema.

    Raises:
        ContractError: missing or unreadable file, another format, a newer version, or any
            schema violation (each named by its key).
    """
    path = Path(directory) / contract.MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ContractError(f"{path} not found; is {directory} an exported program directory?") from e
    except (OSError, ValueError) as e:
        raise ContractError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or data.get(contract.M_FORMAT) != contract.MANIFEST_FORMAT:
        raise ContractError(f"{path}: format is not {contract.MANIFEST_FORMAT!r}")
    version = data.get(contract.M_VERSION)
    if not isinstance(version, int) or version > contract.MANIFEST_VERSION:
        raise ContractError(
            f"{path}: manifest version {version!r} is newer than this toolkit reads ({contract.MANIFEST_VERSION}); "
            "upgrade mobile-mllm or re-export"
        )
    data = upgrade_manifest(data)
    check_manifest(data, str(path), advice="Re-export the model with mobile-mllm export")
    return data


def has_static_programs(directory: str | Path) -> bool:
    """Whether ``directory`` holds a MediaTek static-shape export (its manifest has ``static_programs``).

    Only looks: a missing or unreadable manifest is False here (:func:`read_manifest` says why when it matters).
    """
    path = Path(directory) / contract.MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and contract.M_STATIC in data


def is_program_dir(directory: str | Path) -> bool:
    """Whether ``directory`` is an export: ``model.pte``, or static-shape programs (:func:`has_static_programs`)."""
    return (Path(directory) / contract.PROGRAM_FILE).is_file() or has_static_programs(directory)
