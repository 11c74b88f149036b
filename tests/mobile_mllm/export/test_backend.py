"""The export seam: a backend defined here, in a few dozen lines, exports and runs without touching export_program.

The backend is the opposite of XNNPACK in every choice the protocol leaves to it: fp32 (no
quantization), no delegation (every op on ExecuTorch's portable kernels), static shapes (one
tile, one position per call; ``enable_dynamic_shape`` false). Its program must still open in
the host runtime and answer exactly like the eager float model (the independent reference).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mobile_mllm import contract
from mobile_mllm.export.backend import ExportBackend, MethodInputs
from mobile_mllm.export.program import ExportJob, TargetConfig, export_program
from mobile_mllm.quant.recipe import preset

CONTEXT = 96


def _prepare(model: Any, cfg: TargetConfig) -> dict[str, torch.nn.Module]:
    from mobile_mllm.export.decoder import build_kv_decoder
    from mobile_mllm.model.registry import decoder_parts

    decoder = build_kv_decoder(decoder_parts(dataclasses.replace(model, text_decoder=copy.deepcopy(model.text_decoder))),
                               cfg.max_context_len)
    return {
        contract.VISION_ENCODER: copy.deepcopy(model.vision_encoder).eval(),
        contract.TOKEN_EMBEDDING: copy.deepcopy(model.token_embedding).eval(),
        contract.TEXT_DECODER: decoder.eval(),
    }


def _static_inputs(model: Any, cfg: TargetConfig) -> dict[str, MethodInputs]:
    size = model.vision.tile_size
    return {  # no dynamic_shapes: one tile, one token, one position per call
        contract.VISION_ENCODER: MethodInputs((torch.zeros(1, 3, size, size),)),
        contract.TOKEN_EMBEDDING: MethodInputs((torch.zeros(1, 1, dtype=torch.long),)),
        contract.TEXT_DECODER: MethodInputs((torch.zeros(1, 1, model.hidden_size), torch.tensor([0]))),
    }


def _constants(model: Any, cfg: TargetConfig) -> dict[str, Any]:
    return {
        contract.GET_MAX_SEQ_LEN: 1,
        contract.GET_MAX_CONTEXT_LEN: cfg.max_context_len,
        contract.GET_EOS_IDS: list(model.eos_ids),
        contract.GET_VOCAB_SIZE: model.vocab_size,
        contract.USE_KV_CACHE: True,
        contract.ENABLE_DYNAMIC_SHAPE: False,
    }


def _readme(model: Any, modules: Any, cfg: TargetConfig) -> dict[str, Any]:
    return {"PORTABLE.txt": lambda path: path.write_text(f"{len(modules)} methods, no delegates\n")}


PORTABLE_STATIC = ExportBackend(
    name="portable-static",
    prepare=_prepare,
    method_inputs=_static_inputs,
    partitioners=lambda method, cfg: [],
    constant_methods=_constants,
    extra_files=_readme,
)


@pytest.mark.slow
def test_a_backend_defined_in_a_test_exports_and_answers_like_the_eager_model(tiny_dir: Path, tmp_path: Path) -> None:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import RuntimeConfig, Session

    job = ExportJob(
        model=str(tiny_dir), output=str(tmp_path / "out"), quant=preset("fp32"),
        target=TargetConfig(max_context_len=CONTEXT, prefill_chunk=1, tile_batch=1), verify=False,
    )
    stages: list[str] = []
    result = export_program(job, backend=PORTABLE_STATIC, on_progress=lambda stage, module: stages.append(stage))

    assert result.report["backend"] == "portable-static"
    assert all(d["delegate_calls"] == 0 for d in result.report["delegated"].values())
    assert [s for s in dict.fromkeys(stages)] == ["load", "prepare", "quantize", "export", "lower", "serialize", "write"]
    manifest = json.loads(result.manifest.read_text())
    assert (manifest[contract.M_MAX_SEQ_LEN], manifest[contract.M_MAX_CONTEXT_LEN]) == (1, CONTEXT)
    assert manifest[contract.M_PROGRAM][contract.M_PROGRAM_CONSTANT_METHODS][contract.ENABLE_DYNAMIC_SHAPE] is False
    assert (result.output / "PORTABLE.txt").read_text() == "3 methods, no delegates\n"
    assert not list(result.output.glob(".*.partial"))

    image = (np.random.default_rng(5).random((60, 70, 3)) * 255).astype(np.uint8)
    gen = GenerationConfig(max_new_tokens=6)
    program = Session.from_dir(result.output, generation=gen)
    assert (program.methods.max_seq_len, program.methods.prefill_chunk, program.methods.max_tile_batch) == (1, 1, 1)
    eager = Session.from_dir(tiny_dir, runtime=RuntimeConfig(max_context_len=CONTEXT, prefill_chunk=1, tile_batch=1),
                             generation=gen)
    a, b = program.ask("What is in the image?", image=image), eager.ask("What is in the image?", image=image)
    assert a.tokens == b.tokens
    assert a.stats.num_tiles == b.stats.num_tiles >= 1


@pytest.mark.slow
def test_manifest_additions_outside_the_schema_fail_and_leave_nothing_behind(tiny_dir: Path, tmp_path: Path) -> None:
    from mobile_mllm.errors import ContractError

    backend = dataclasses.replace(PORTABLE_STATIC, manifest_additions=lambda model, cfg: {"npu_chunks": 3})
    job = ExportJob(
        model=str(tiny_dir), output=str(tmp_path / "out"), quant=preset("fp32"),
        target=TargetConfig(max_context_len=CONTEXT, prefill_chunk=1, tile_batch=1), verify=False,
    )
    with pytest.raises(ContractError, match="npu_chunks: unknown key"):
        export_program(job, backend=backend)
    assert list((tmp_path / "out").iterdir()) == []  # no program, no extra file, no partial names
