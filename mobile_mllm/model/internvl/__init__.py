"""The ``internvl`` family: Hugging Face ``InternVLForConditionalGeneration`` checkpoints (InternVL3-1B/2B-hf).

InternViT tower -> drop the CLS token -> pixel shuffle 2x2 (the paper's token downsampler) ->
LayerNorm + 2-layer GELU projector -> Qwen2 (or Llama) decoder. Preprocessing is InternVL's
own: 448-px tiles, closest-aspect-ratio grid of at most ``max_patches`` tiles, the image
stretched to the canvas, a thumbnail after the local tiles, ImageNet mean/std; the prompt is
the checkpoint's chat template with ``<img><IMG_CONTEXT> x N</img>`` for the image.

Submodules import torch or transformers; this package's ``__init__`` does not.
"""

from mobile_mllm.model.internvl.prompt import FAMILY, INTERNVL_PROMPT

__all__ = ["FAMILY", "INTERNVL_PROMPT"]
