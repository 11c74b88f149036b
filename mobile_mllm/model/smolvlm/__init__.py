"""The ``smolvlm`` family: SmolVLM and Idefics3 checkpoints from a local HF directory.

SigLIP vision tower (NaViT-style position ids, fixed here for whole tiles) -> pixel shuffle
(``scale_factor``) -> linear connector -> Llama decoder; SmolVLM's own image splitting
(``vision.policy = smolvlm``) and prompt layout (:data:`SMOLVLM_PROMPT`). Submodules import
torch and transformers; this package's ``__init__`` does not.
"""

from mobile_mllm.model.smolvlm.prompt import SMOLVLM_PROMPT

FAMILY = "smolvlm"
"""Registry key of the family (== folder name)."""

__all__ = ["FAMILY", "SMOLVLM_PROMPT"]
