"""Checkpoint keys <-> the ``reference`` family's modules, as data.

A ``model.safetensors`` of this family stores each component under one prefix, in the
LLaVA-style layout users of transformers expect::

    vision_tower.*            SiglipVisionModel            (vision_encoder.tower)
    downsampler.*             TokenDownsampler             (vision_encoder.downsampler)
    multi_modal_projector.*   Projector                    (vision_encoder.projector)
    language_model.*          Llama/Qwen2ForCausalLM       (text_decoder and token_embedding share it)

The part after the prefix is the component's own ``state_dict`` key, so a user's SigLIP or
Qwen2 weights drop in by renaming the prefix. A key under no known prefix is an error naming
the key. Deliberately not here: reading or writing files (``checkpoint.py``).
"""

from __future__ import annotations

from mobile_mllm.errors import ModelLoadError

__all__ = ["COMPONENTS", "split_key"]

COMPONENTS: dict[str, str] = {
    "vision_tower": "SigLIP vision tower",
    "downsampler": "2x2 token downsampler",
    "multi_modal_projector": "MLP projector",
    "language_model": "decoder (transformers causal LM)",
}
"""Checkpoint prefix -> what it holds (the order is the order of the file)."""


def split_key(key: str, *, source: str = "model.safetensors") -> tuple[str, str]:
    """Split a checkpoint key into (component prefix, the component's own state-dict key).

    Raises:
        ModelLoadError: for a key under no known prefix, naming the key and the known prefixes.

    Example:
        >>> split_key("language_model.model.layers.0.self_attn.q_proj.weight")
        ('language_model', 'model.layers.0.self_attn.q_proj.weight')
    """
    prefix, _, rest = key.partition(".")
    if prefix not in COMPONENTS or not rest:
        known = ", ".join(f"{p}.*" for p in COMPONENTS)
        raise ModelLoadError(
            f"{source}: unmapped weight key {key!r}; the reference family expects keys under {known} "
            "(check that the checkpoint was written by `mobile-mllm init-model` or converted to this layout)"
        )
    return prefix, rest
