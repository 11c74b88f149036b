"""Fixtures of the export tests: programs of the tiny model (tests/conftest.py), exported once per run.

Exporting the tiny preset takes a minute or two on two busy cores, so every recipe is exported
(and verified) once per session and shared by all tests that read it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# Small static sizes keep lowering and memory planning quick.
MAX_CONTEXT_LEN = 192
PREFILL_CHUNK = 32
TILE_BATCH = 4


@pytest.fixture(scope="session")
def export_sizes() -> tuple[int, int, int]:
    """(max_context_len, prefill_chunk, tile_batch) the shared programs are exported with."""
    return MAX_CONTEXT_LEN, PREFILL_CHUNK, TILE_BATCH


@pytest.fixture(scope="session")
def exported(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], object]:
    """``exported(recipe) -> ExportResult`` of the tiny model, verified; each recipe exported at most once."""
    from mobile_mllm.export.program import ExportJob, TargetConfig, export_program
    from mobile_mllm.quant.recipe import preset
    from mobile_mllm.runtime.parity import verify_export

    cache: dict[str, object] = {}

    def get(recipe: str) -> object:
        if recipe not in cache:
            job = ExportJob(
                model=str(tiny_dir),
                output=str(tmp_path_factory.mktemp(f"export_{recipe}")),
                quant=preset(recipe),
                target=TargetConfig(max_context_len=MAX_CONTEXT_LEN, prefill_chunk=PREFILL_CHUNK, tile_batch=TILE_BATCH),
                verify_tokens=8,
            )
            cache[recipe] = export_program(job, verifier=verify_export)
        return cache[recipe]

    return get
