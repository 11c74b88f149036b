"""``mobile-mllm export`` of a tiny InternVL-hf checkpoint (fp32 and w4): verified, fully delegated, and the
fp32 program answers with transformers' greedy tokens through ``mobile-mllm run``.

Real subprocesses, as a user runs them; each program is exported once per module (about a
minute each on two cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from internvl_models import hf_inputs, hf_processor

from mobile_mllm import contract

pytestmark = pytest.mark.slow

QUESTION = "What is in the picture?"
NEW_TOKENS = 8
DATA_MOVEMENT = {"aten.view_copy.default", "aten.expand_copy.default", "aten.slice_copy.Tensor", "aten.select_copy.int"}
"""Ops that only reshape, slice or copy tensors (no arithmetic on values): what may stay outside XNNPACK."""
SCALARS = {"sym_size.int", "mul", "add", "le", "ge", "_local_scalar_dense.default", "_assert_scalar.default"}
"""Arithmetic and checks on sizes and on ``start_pos`` (Python scalars, not tensors)."""
KV_CACHE_OPS = {"auto_functionalized_v2", "llama.custom_sdpa.default"}
"""ExecuTorch's KV-cache custom ops (``llama.update_cache``, functionalized, and ``llama.custom_sdpa``), which
run on their own optimized CPU kernels by design (``export/decoder.py``)."""


def _cli(*args: str, timeout: int = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobile_mllm.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def exports(tiny_internvl_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """recipe -> (program directory, export report) for fp32 and w4."""
    out: dict[str, tuple[Path, dict]] = {}
    for recipe in ("fp32", "w4"):
        directory = tmp_path_factory.mktemp(f"internvl_{recipe}") / "program"
        r = _cli("export", str(tiny_internvl_dir), "-o", str(directory), "--recipe", recipe, "--max-context-len", "192",
                 "--prefill-chunk", "32", "--tile-batch", "4", "--verify-tokens", "8", "--json")
        assert r.returncode == 0, r.stderr[-4000:]
        out[recipe] = (directory, json.loads(r.stdout))
    return out


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "wide.png"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (50, 90, 3), dtype=np.uint8), "RGB").save(path)
    return path


@pytest.mark.parametrize("recipe", ["fp32", "w4"])
def test_export_verifies_and_the_towers_are_fully_delegated(exports, recipe: str) -> None:
    directory, report = exports[recipe]
    verification = report["verification"]
    assert verification is not None and verification["greedy"]  # the verifier raises when a bound is exceeded
    vision = report["delegated"][contract.VISION_ENCODER]
    assert vision["delegate_calls"] >= 1
    # every compute op is inside XNNPACK; only reshapes/copies of the dynamic tile batch stay outside
    assert set(vision["non_delegated_by_op"]) <= DATA_MOVEMENT | SCALARS, vision
    decoder = report["delegated"][contract.TEXT_DECODER]
    assert decoder["delegate_calls"] >= 1
    assert set(decoder["non_delegated_by_op"]) <= DATA_MOVEMENT | SCALARS | KV_CACHE_OPS, decoder
    manifest = json.loads((directory / contract.MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest[contract.M_MODEL][contract.M_MODEL_FAMILY] == "internvl"
    assert manifest[contract.M_VISION]["policy"] == "internvl" and manifest[contract.M_VISION]["tokens_per_tile"] == 4
    if recipe == "fp32":
        assert verification["max_rel_err_vs_float"] < 1e-4


def test_fp32_program_answers_with_hf_greedy_tokens(exports, hf_model, tiny_internvl_dir: Path, image_file: Path) -> None:
    from PIL import Image

    from mobile_mllm.model import load_model

    model = load_model(tiny_internvl_dir, max_context_len=192)
    inputs = hf_inputs(hf_processor(tiny_internvl_dir), Image.open(image_file).convert("RGB"), QUESTION)
    with torch.no_grad():
        out = hf_model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False,
                                               eos_token_id=list(model.eos_ids), pad_token_id=model.eos_ids[-1])
    expected = out[0, inputs["input_ids"].shape[1]:].tolist()
    directory, _ = exports["fp32"]
    r = _cli("run", str(directory), "--image", str(image_file), "--prompt", QUESTION, "--max-new-tokens",
             str(NEW_TOKENS), "--json", timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["turns"][0]["tokens"] == expected
