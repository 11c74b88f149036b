"""Tiny InternVL-hf checkpoint directories for the family's tests, written with transformers' own classes.

A directory holds what a downloaded ``OpenGVLab/InternVL3-*-hf`` checkpoint holds, at toy size:
``InternVLConfig`` + weights (``save_pretrained``), a byte-level BPE tokenizer carrying
InternVL's special tokens (built with the ``tokenizers`` library), the published InternVL3-hf
chat template, and the image processor (``GotOcr2ImageProcessorPil``: the PIL backend, as the
original InternVL code resizes with PIL; torchvision, HF's other backend, is not installed).
:func:`hf_processor` rebuilds HF's ``InternVLProcessor`` from such a directory: it is the
reference our preprocessing and prompt layout are compared with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>")
CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "{{ '<IMG_CONTEXT>\n' }}{% elif content['type'] == 'video' %}{{ '<video>\n' }}{% elif content['type'] == 'text' %}"
    "{{ content['text'] }}{% endif %}{% endfor %}{% endif %}{{'<|im_end|>\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
)
"""The chat template of the InternVL3-hf checkpoints (chat_template.jinja)."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def make_tokenizer() -> Any:
    """A byte-level BPE tokenizer (printable ASCII, no merges) with InternVL's special tokens, as HF wraps it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_level = pre_tokenizers.ByteLevel.alphabet()
    vocab = {c: i for i, c in enumerate(sorted(byte_level))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        },
    )


def make_image_processor(*, tile_px: int, max_patches: int) -> Any:
    """InternVL's image processor settings (crop to patches, ImageNet mean/std, bicubic)."""
    from transformers import GotOcr2ImageProcessorPil

    return GotOcr2ImageProcessorPil(
        size={"height": tile_px, "width": tile_px},
        crop_to_patches=True,
        min_patches=1,
        max_patches=max_patches,
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        resample=3,
    )


def write_processor_files(out: Path, *, tile_px: int, max_patches: int, tokens_per_tile: int) -> Any:
    """Write tokenizer, image processor, chat template and processor_config.json; return the tokenizer."""
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = make_tokenizer()
    tokenizer.save_pretrained(out)
    make_image_processor(tile_px=tile_px, max_patches=max_patches).save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHAT_TEMPLATE, encoding="utf-8")
    (out / "processor_config.json").write_text(
        json.dumps({"image_seq_length": tokens_per_tile, "processor_class": "InternVLProcessor"}), encoding="utf-8"
    )
    return tokenizer


def tiny_config(tokenizer: Any) -> Any:
    """A toy ``InternVLConfig``: 2-layer InternViT (width 32, 28-px tiles of 7-px patches), 2-layer Qwen2 (width 64, GQA 4/2)."""
    from mobile_mllm.model.internvl.builders import internvl_config

    return internvl_config(
        vision_hidden_size=32, vision_layers=2, vision_heads=4, vision_intermediate_size=64, tile_px=28, patch_px=7,
        vision_attention_bias=True, text_hidden_size=64, text_layers=2, text_heads=4, text_kv_heads=2,
        text_intermediate_size=128, vocab_size=len(tokenizer), rope_theta=10000.0, max_position_embeddings=4096,
        tie_word_embeddings=True, image_token_id=tokenizer.context_image_token_id,
    )


def randomize(model: Any, *, seed: int, std: float = 0.2) -> None:
    """Seeded normal weights everywhere (HF's init leaves CLS, position embeddings and biases at zero)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=generator) * std
            p.copy_(1.0 + noise if "norm" in name else noise)  # norm scales near 1, as trained ones are


def write_tiny_internvl(out: Path, *, seed: int = 0, max_patches: int = 6) -> Path:
    """A complete tiny InternVL-hf directory (28-px tiles of 4x4 patches -> 4 tokens per tile)."""
    from transformers import InternVLForConditionalGeneration

    tokenizer = write_processor_files(out, tile_px=28, max_patches=max_patches, tokens_per_tile=4)
    model = InternVLForConditionalGeneration(tiny_config(tokenizer)).eval()
    randomize(model, seed=seed)
    model.save_pretrained(out)
    return out


def hf_processor(directory: Path) -> Any:
    """HF's ``InternVLProcessor`` over a directory's image processor, tokenizer and chat template.

    Built from its parts: ``ProcessorMixin`` insists on a video processor, whose base class needs
    torchvision (not installed); images never touch it, so it is passed as None.
    """
    from transformers import AutoTokenizer, GotOcr2ImageProcessorPil, InternVLProcessor
    from transformers.processing_utils import ProcessorMixin

    image_processor = GotOcr2ImageProcessorPil.from_pretrained(directory)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    seq = json.loads((directory / "processor_config.json").read_text(encoding="utf-8"))["image_seq_length"]
    check = ProcessorMixin.check_argument_for_proper_class
    try:
        ProcessorMixin.check_argument_for_proper_class = (  # type: ignore[method-assign]
            lambda self, name, arg: None if arg is None else check(self, name, arg)
        )
        return InternVLProcessor(
            image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
            image_seq_length=seq, chat_template=CHAT_TEMPLATE,
        )
    finally:
        ProcessorMixin.check_argument_for_proper_class = check  # type: ignore[method-assign]


def hf_inputs(processor: Any, image: Any, question: str) -> Any:
    """HF's model inputs for one image and a question: chat template, then the processor."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return processor(images=[image], text=text, return_tensors="pt")
