"""A tiny random SmolVLM through ``mobile-mllm export`` (fp32 and w4, verified) and back through Session, against transformers.

Slow (two tiny exports). The fp32 program must answer with HF ``generate``'s greedy tokens; the
w4 program must pass the exporter's verification (method parity and greedy agreement with the
eager quantized model, itself equal to HF in float: ``test_smolvlm_parity.py``); both manifests
carry SmolVLM's preprocessing and prompt layout, and the vision encoder lowers with no compute op
left outside XNNPACK (its LayerNorms and attention are rewritten at load: ``checkpoint.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytestmark = pytest.mark.slow

QUESTION = "What is in the picture?"
DATA_MOVEMENT = {"aten.view_copy.default", "aten.expand_copy.default", "aten.slice_copy.Tensor", "aten.select_copy.int"}
"""Ops that only reshape, slice or copy tensors (no arithmetic on values)."""
SCALARS = {"sym_size.int", "mul", "add", "le", "ge", "_local_scalar_dense.default", "_assert_scalar.default"}
"""Arithmetic and checks on sizes and on ``start_pos`` (Python scalars, not tensors)."""
KV_CACHE_OPS = {"auto_functionalized_v2", "llama.custom_sdpa.default"}
"""ExecuTorch's KV-cache custom ops (``llama.update_cache``, functionalized, and ``llama.custom_sdpa``), run on
their own optimized CPU kernels by design (``export/decoder.py``)."""


@pytest.fixture(scope="module")
def model_dir(smolvlm_model_dir: Path) -> Path:
    """The shared tiny SmolVLM checkpoint (tests/conftest.py)."""
    return smolvlm_model_dir


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "wide.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (90, 200, 3), dtype=np.uint8)).save(path)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobile_mllm.cli", *args], capture_output=True, text=True, timeout=1200, check=False
    )


def _hf_greedy(model_dir: Path, image: Path, n: int) -> list[int]:
    from transformers import AutoTokenizer, Idefics3Processor, SmolVLMForConditionalGeneration
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

    settings = json.loads((model_dir / "preprocessor_config.json").read_text())
    settings = {k: v for k, v in settings.items() if k not in ("image_processor_type", "processor_class")}
    processor = Idefics3Processor(
        image_processor=SmolVLMImageProcessorPil(**settings), tokenizer=AutoTokenizer.from_pretrained(model_dir),
        image_seq_len=json.loads((model_dir / "processor_config.json").read_text())["image_seq_len"],
        chat_template=(model_dir / "chat_template.jinja").read_text(),
    )
    content = [{"type": "image"}, {"type": "text", "text": QUESTION}]
    text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    inputs = processor(text=text, images=[Image.open(image)], return_tensors="pt")
    model = SmolVLMForConditionalGeneration.from_pretrained(model_dir).eval()
    eos = [processor.tokenizer.convert_tokens_to_ids(t) for t in ("<end_of_utterance>", "<|im_end|>")]
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=n, do_sample=False, eos_token_id=eos, pad_token_id=0)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def test_fp32_export_verifies_and_answers_with_hf_greedy_tokens(model_dir: Path, image_file: Path, tmp_path: Path) -> None:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    out = tmp_path / "fp32"
    r = _cli("export", str(model_dir), "-o", str(out), "--recipe", "fp32", "--max-context-len", "256", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    greedy = report["verification"]["greedy"]
    assert greedy["num_agreeing_prefix"] == greedy["num_tokens"] == 16
    vision = report["delegated"]["vision_encoder"]
    assert vision["delegate_calls"] > 0
    # Outside XNNPACK only data movement between delegates (views, the norms' 1/C column broadcast over the
    # batch), size arithmetic and ExecuTorch's KV-cache ops: no LayerNorm/RMSNorm, position lookup or SDPA guards.
    assert set(vision["non_delegated_by_op"]) <= DATA_MOVEMENT | SCALARS, vision
    decoder = report["delegated"]["text_decoder"]
    assert decoder["delegate_calls"] > 0
    assert set(decoder["non_delegated_by_op"]) <= DATA_MOVEMENT | SCALARS | KV_CACHE_OPS, decoder
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["vision"]["policy"] == "smolvlm" and manifest["vision"]["longest_edge_px"] == 256
    assert manifest["prompt"]["tile_start"] == "<fake_token_around_image><row_{row}_col_{col}>"
    n = 10
    answer = Session.from_dir(out, generation=GenerationConfig(max_new_tokens=n)).ask(QUESTION, image_file)
    assert list(answer.tokens) == _hf_greedy(model_dir, image_file, n)
    assert answer.stats.num_tiles == 9  # 200x90 -> 4 x 2 tiles of 64 px + the global image


def test_w4_export_passes_verification(model_dir: Path, image_file: Path, tmp_path: Path) -> None:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    out = tmp_path / "w4"
    r = _cli("export", str(model_dir), "-o", str(out), "--recipe", "w4", "--max-context-len", "256", "--json")
    assert r.returncode == 0, r.stderr  # exit 0: the verifier (method parity, greedy tokens) passed
    report = json.loads(r.stdout)
    verification = report["verification"]
    assert verification["by_method"]["vision_encoder"]["median_rel_err_vs_quantized"] <= verification["tolerance_vs_quantized"]
    assert verification["greedy"]["num_tokens"] == 16
    assert report["quantization"]["num_unexpected_fp32"] == 0
    answer = Session.from_dir(out, generation=GenerationConfig(max_new_tokens=10)).ask(QUESTION, image_file)
    assert answer.stats.num_tiles == 9 and answer.tokens
