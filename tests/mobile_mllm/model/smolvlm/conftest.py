"""Fixtures of the smolvlm-family tests: tiny random SmolVLM and Idefics3 directories and transformers' own processors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session", params=["smolvlm", "idefics3"])
def smolvlm_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random checkpoint directory in the HF layout (SmolVLMForConditionalGeneration / Idefics3...)."""
    from mobile_mllm.model.smolvlm.synthetic import write_random_smolvlm

    return write_random_smolvlm(tmp_path_factory.mktemp(request.param) / "model", model_type=request.param, seed=0)


@pytest.fixture(scope="session")
def hf_image_processor(smolvlm_dir: Path):
    """The family's own HF image processor (PIL backend: torchvision is not installed) from the directory's settings."""
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
    from transformers.models.smolvlm.image_processing_pil_smolvlm import SmolVLMImageProcessorPil

    settings = json.loads((smolvlm_dir / "preprocessor_config.json").read_text())
    kind = settings.pop("image_processor_type")
    settings.pop("processor_class")
    cls = SmolVLMImageProcessorPil if kind.startswith("SmolVLM") else Idefics3ImageProcessorPil
    return cls(**settings)


@pytest.fixture(scope="session")
def hf_processor(smolvlm_dir: Path, hf_image_processor):
    """transformers' Idefics3Processor over the directory's tokenizer and chat template.

    SmolVLMProcessor itself needs a video processor, which needs torchvision (not installed); its
    image-string expansion is the same function (``processing_smolvlm.get_image_prompt_string``,
    compared in the tests) and Idefics3Processor runs the whole text path.
    """
    from transformers import AutoTokenizer, Idefics3Processor

    processor = json.loads((smolvlm_dir / "processor_config.json").read_text())
    return Idefics3Processor(
        image_processor=hf_image_processor,
        tokenizer=AutoTokenizer.from_pretrained(smolvlm_dir),
        image_seq_len=processor["image_seq_len"],
        chat_template=(smolvlm_dir / "chat_template.jinja").read_text(),
    )


@pytest.fixture(scope="module")
def smolvlm(smolvlm_dir: Path):  # -> MultimodalModel
    """Our eager model of the directory (512-position KV cache)."""
    from mobile_mllm.model import load_model

    return load_model(smolvlm_dir, max_context_len=512)


@pytest.fixture(scope="module")
def hf_model(smolvlm_dir: Path):
    """The HF model loaded on its own (transformers' class, its SDPA attention and LayerNorms untouched): the reference."""
    from transformers import Idefics3ForConditionalGeneration, SmolVLMForConditionalGeneration

    model_type = json.loads((smolvlm_dir / "config.json").read_text())["model_type"]
    cls = SmolVLMForConditionalGeneration if model_type == "smolvlm" else Idefics3ForConditionalGeneration
    return cls.from_pretrained(smolvlm_dir).eval()
