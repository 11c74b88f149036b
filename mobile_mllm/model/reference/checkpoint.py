"""Read and write ``reference`` model directories (HF-style layout).

A model directory holds::

    config.json                 ReferenceConfig + {"mobile_mllm_family": "reference", "model_type": ..., "torch_dtype": ...}
    model.safetensors           weights under the prefixes of convert_weights.COMPONENTS
    tokenizer.json              an HF tokenizers file with the family's special tokens
    preprocessor_config.json    the VisionConfig (tile size, policy, mean/std, tokens per tile)

:func:`load_reference` turns such a directory (ours or a user's own) into a
:class:`~mobile_mllm.model.adapter.MultimodalModel`; :func:`save_reference` writes one from
built modules; :func:`write_random_reference` writes random weights for a config without
building the model (one tensor in memory at a time, so the 3B preset needs ~1 GB beyond the
6 GB file). Every failure names the file, key or value at fault. The config readers live in
``files.py`` (no torch) and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mobile_mllm.config import to_dict
from mobile_mllm.errors import ModelLoadError
from mobile_mllm.model.adapter import FAMILY_KEY, MultimodalModel
from mobile_mllm.model.reference.builders import ReferenceModules, build_reference
from mobile_mllm.model.reference.config import CONFIG_FILE, FAMILY, MODEL_TYPE, ReferenceConfig, default_vision_config
from mobile_mllm.model.reference.convert_weights import COMPONENTS, split_key
from mobile_mllm.model.reference.files import (
    PREPROCESSOR_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    read_reference_config,
    read_vision_config,
)
from mobile_mllm.model.reference.prompt import REFERENCE_PROMPT, SPECIAL_TOKENS
from mobile_mllm.model.safetensors_stream import TensorSpec, write_safetensors
from mobile_mllm.vision.config import VisionConfig

logger = logging.getLogger(__name__)

__all__ = [
    "CONFIG_FILE",
    "PREPROCESSOR_FILE",
    "TOKENIZER_FILE",
    "WEIGHTS_FILE",
    "load_reference",
    "read_reference_config",
    "read_vision_config",
    "save_reference",
    "write_random_reference",
]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
INIT_STD = 0.02
"""Standard deviation of random Linear/Embedding/Conv weights (transformers' initializer_range)."""


# --------------------------------------------------------------------------- reading


def _read_tokenizer(path: Path, cfg: ReferenceConfig) -> tuple[Any, dict[str, int]]:
    from mobile_mllm.model.tokenizer_file import read_tokenizer_file

    file = path / TOKENIZER_FILE
    tokenizer = read_tokenizer_file(path)
    special_ids: dict[str, int] = {}
    for token in SPECIAL_TOKENS:
        token_id = tokenizer.token_to_id(token)
        if token_id is None:
            raise ModelLoadError(f"{file}: special token {token!r} is missing; expected all of {list(SPECIAL_TOKENS)}")
        special_ids[token] = token_id
    if tokenizer.get_vocab_size() > cfg.decoder.vocab_size:
        raise ModelLoadError(
            f"{file}: tokenizer vocabulary {tokenizer.get_vocab_size()} exceeds decoder.vocab_size "
            f"{cfg.decoder.vocab_size} in {CONFIG_FILE}"
        )
    return tokenizer, special_ids


def _component_modules(mods: ReferenceModules) -> dict[str, nn.Module]:
    return {
        "vision_tower": mods.vision_encoder.tower,
        "downsampler": mods.vision_encoder.downsampler,
        "multi_modal_projector": mods.vision_encoder.projector,
        "language_model": mods.hf_decoder,
    }


def _expected_keys(module: nn.Module) -> list[str]:
    # state_dict(keep_vars) lists a tied parameter under both names; the checkpoint stores it once.
    seen: set[int] = set()
    keys: list[str] = []
    for name, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            keys.append(name)
    return keys


def _load_weights(file: Path, mods: ReferenceModules, dtype: torch.dtype) -> None:
    from safetensors import SafetensorError, safe_open

    if not file.is_file():
        raise ModelLoadError(f"{file.parent}: missing {WEIGHTS_FILE}")
    components = _component_modules(mods)
    by_component: dict[str, dict[str, torch.Tensor]] = {name: {} for name in components}
    try:
        with safe_open(str(file), framework="pt") as fh:
            for key in fh.keys():
                prefix, rest = split_key(key, source=str(file))
                by_component[prefix][rest] = fh.get_tensor(key).to(dtype)
    except SafetensorError as e:
        raise ModelLoadError(f"{file} is not a readable safetensors file: {e}") from e
    for prefix, module in components.items():
        state = by_component[prefix]
        expected = _expected_keys(module)
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in set(module.state_dict())]
        if missing or unexpected:
            raise ModelLoadError(
                f"{file}: {COMPONENTS[prefix]} weights do not match {CONFIG_FILE}: "
                f"missing {[f'{prefix}.{k}' for k in missing[:5]]}{' ...' if len(missing) > 5 else ''}, "
                f"unmapped {[f'{prefix}.{k}' for k in unexpected[:5]]}{' ...' if len(unexpected) > 5 else ''}"
            )
        shapes = module.state_dict()
        for k, v in state.items():
            if tuple(v.shape) != tuple(shapes[k].shape):
                raise ModelLoadError(
                    f"{file}: {prefix}.{k} has shape {tuple(v.shape)}, {CONFIG_FILE} implies {tuple(shapes[k].shape)}"
                )
        module.load_state_dict(state, strict=False, assign=True)
    if mods.hf_decoder.config.tie_word_embeddings:
        mods.hf_decoder.tie_weights()


def load_reference(path: Path, *, dtype: torch.dtype = torch.float32, max_context_len: int = 2048) -> MultimodalModel:
    """Load a reference-family model directory.

    Args:
        path (Path): the directory (see the module docstring for its files).
        dtype (torch.dtype): parameter, activation and KV-cache dtype. Default float32.
        max_context_len (int): KV-cache positions of ``text_decoder``. Default 2048.

    Returns:
        MultimodalModel: eval-mode modules; ``extra`` holds ``config`` (ReferenceConfig),
        ``hf_decoder`` (the transformers causal LM sharing the weights) and ``modules``.

    Raises:
        ModelLoadError: a missing file, a malformed config, an unmapped or missing weight key,
            or a max_context_len beyond the decoder's max_position_embeddings.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelLoadError(f"model directory not found: {path}")
    cfg = read_reference_config(path)
    if not 0 < max_context_len <= cfg.decoder.max_position_embeddings:
        raise ModelLoadError(
            f"max_context_len {max_context_len} must be in 1..{cfg.decoder.max_position_embeddings} "
            f"(decoder.max_position_embeddings in {path / CONFIG_FILE})"
        )
    vision = read_vision_config(path, cfg)
    tokenizer, special_ids = _read_tokenizer(path, cfg)
    mods = build_reference(cfg, max_context_len=max_context_len, dtype=dtype)
    _load_weights(path / WEIGHTS_FILE, mods, dtype)
    for module in (mods.vision_encoder, mods.token_embedding, mods.text_decoder, mods.hf_decoder):
        module.eval().requires_grad_(False)
    logger.info(
        "loaded %s (%s, %s): decoder %s x%d, %d tokens/tile, KV cache %d",
        path, cfg.variant, str(dtype).removeprefix("torch."), cfg.decoder.architecture.value,
        cfg.decoder.num_layers, cfg.tokens_per_tile, max_context_len,
    )
    return _assemble(mods, cfg, vision, tokenizer, special_ids, max_context_len=max_context_len, source=path)


def _assemble(
    mods: ReferenceModules,
    cfg: ReferenceConfig,
    vision: VisionConfig,
    tokenizer: Any,
    special_ids: dict[str, int],
    *,
    max_context_len: int,
    source: Path | None,
) -> MultimodalModel:
    return MultimodalModel(
        family=FAMILY,
        vision_encoder=mods.vision_encoder,
        token_embedding=mods.token_embedding,
        text_decoder=mods.text_decoder,
        tokenizer=tokenizer,
        vision=vision,
        prompt=dataclasses.replace(REFERENCE_PROMPT, question_template=cfg.question_template),
        max_context_len=max_context_len,
        eos_ids=tuple(special_ids[t] for t in REFERENCE_PROMPT.eos),
        bos_id=special_ids[REFERENCE_PROMPT.bos] if REFERENCE_PROMPT.bos else None,
        special_ids=special_ids,
        hidden_size=cfg.decoder.hidden_size,
        vocab_size=cfg.decoder.vocab_size,
        source=source,
        extra={"config": cfg, "hf_decoder": mods.hf_decoder, "modules": mods},
    )


# --------------------------------------------------------------------------- writing


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_directory(
    out: Path,
    cfg: ReferenceConfig,
    vision: VisionConfig,
    tokenizer_json: str,
    specs: list[TensorSpec],
    produce: Callable[[TensorSpec], torch.Tensor],
    dtype: torch.dtype,
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    dtype_name = str(dtype).removeprefix("torch.")
    write_safetensors(out / WEIGHTS_FILE, specs, produce, metadata={"format": "pt", FAMILY_KEY: FAMILY})
    config = {FAMILY_KEY: FAMILY, "model_type": MODEL_TYPE, "torch_dtype": dtype_name, **to_dict(cfg)}
    _write_text(out / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    _write_text(out / PREPROCESSOR_FILE, json.dumps(to_dict(vision), indent=2) + "\n")
    _write_text(out / TOKENIZER_FILE, tokenizer_json)
    logger.info("wrote %s: %s, %d tensors, %s", out, cfg.variant, len(specs), dtype_name)
    return out


def _checkpoint_tensors(mods: ReferenceModules) -> Iterator[tuple[str, nn.Module, str, torch.Tensor]]:
    """(checkpoint key, owning module, parameter name, tensor) for every stored tensor, file order."""
    for prefix, component in _component_modules(mods).items():
        state = component.state_dict(keep_vars=True)
        for name in _expected_keys(component):
            owner_name, _, param_name = name.rpartition(".")
            yield f"{prefix}.{name}", component.get_submodule(owner_name), param_name, state[name]


def save_reference(model: MultimodalModel, out: Path) -> Path:
    """Write a loaded or built reference model as a model directory (the weights in their current dtype).

    Args:
        model (MultimodalModel): a reference-family model (``extra["modules"]`` and ``extra["config"]`` set).
        out (Path): the directory (created; existing files of the layout are replaced).

    Returns:
        Path: ``out``.
    """
    mods: ReferenceModules = model.extra["modules"]
    cfg: ReferenceConfig = model.extra["config"]
    tensors = {key: t.detach() for key, _, _, t in _checkpoint_tensors(mods)}
    specs = [TensorSpec(k, tuple(t.shape), t.dtype) for k, t in tensors.items()]
    dtype = next(iter(tensors.values())).dtype
    return _write_directory(
        Path(out), cfg, model.vision, model.tokenizer.to_str(), specs, lambda s: tensors[s.name], dtype
    )


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("RMSNorm")


def write_random_reference(
    cfg: ReferenceConfig,
    out: Path,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    vision: VisionConfig | None = None,
    tokenizer_file: Path | None = None,
) -> Path:
    """Write a random-weight model directory for ``cfg`` without building the model in memory.

    Shapes come from a meta-device build; each tensor is then drawn (normal(0, 0.02) for
    Linear/Embedding/Conv weights, ones for norm weights, zeros for biases) from one generator
    seeded with ``seed``, in file order, cast to ``dtype`` and streamed to disk. The same
    (cfg, seed, dtype) always gives the same bytes.

    Args:
        cfg (ReferenceConfig): the architecture.
        out (Path): the directory (created).
        seed (int): random seed. Default 0.
        dtype (torch.dtype): stored dtype (bf16/fp16 halve the file). Default float32.
        vision (VisionConfig | None): preprocessing; default :func:`default_vision_config`.
        tokenizer_file (Path | None): tokenizer to copy; default the bundled one.

    Returns:
        Path: ``out``.
    """
    from mobile_mllm.model.reference.tokenizer import BUNDLED_TOKENIZER

    vision = vision or default_vision_config(cfg)
    tokenizer_json = Path(tokenizer_file or BUNDLED_TOKENIZER).read_text(encoding="utf-8")
    with torch.device("meta"):
        mods = build_reference(cfg, max_context_len=1, dtype=torch.float32)
    fills: dict[str, Callable[[tuple[int, ...], torch.Generator], torch.Tensor]] = {}
    specs: list[TensorSpec] = []
    for key, owner, param_name, tensor in _checkpoint_tensors(mods):
        specs.append(TensorSpec(key, tuple(tensor.shape), dtype))
        if param_name == "bias":
            fills[key] = lambda shape, gen: torch.zeros(shape)
        elif _is_norm(owner):
            fills[key] = lambda shape, gen: torch.ones(shape)
        else:
            fills[key] = lambda shape, gen: torch.empty(shape).normal_(0.0, INIT_STD, generator=gen)
    generator = torch.Generator().manual_seed(seed)
    return _write_directory(
        Path(out), cfg, vision, tokenizer_json, specs, lambda s: fills[s.name](s.shape, generator).to(dtype), dtype
    )
