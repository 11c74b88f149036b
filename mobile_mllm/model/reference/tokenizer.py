"""The bundled byte-level BPE tokenizer of the ``reference`` family.

A real (if small) HF ``tokenizers`` tokenizer, trained once on ``assets/corpus.txt`` (short
English text written for this project, with the words synthetic VQA needs: colours, shapes,
numbers, positions, yes/no, option letters) and shipped as ``assets/tokenizer.json``. Every
special token of :data:`~mobile_mllm.model.reference.prompt.SPECIAL_TOKENS` is one id
(0..n-1), never split. Byte-level, so any text round-trips. Loading never retrains;
:func:`train_tokenizer` exists to regenerate the asset (a test checks it reproduces it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer

from mobile_mllm.model.reference.presets import TINY_VOCAB_SIZE
from mobile_mllm.model.reference.prompt import SPECIAL_TOKENS

logger = logging.getLogger(__name__)

__all__ = ["BUNDLED_TOKENIZER", "CORPUS", "bundled_tokenizer", "train_tokenizer"]

_ASSETS = resources.files("mobile_mllm.model.reference") / "assets"
BUNDLED_TOKENIZER = Path(str(_ASSETS / "tokenizer.json"))
"""The shipped tokenizer file."""
CORPUS = Path(str(_ASSETS / "corpus.txt"))
"""The text it was trained on."""
TARGET_VOCAB_SIZE = TINY_VOCAB_SIZE
"""Vocabulary size asked of the trainer (the tiny preset's; a small corpus may yield fewer merges)."""


def train_tokenizer(
    corpus: Sequence[Path] = (CORPUS,),
    *,
    vocab_size: int = TARGET_VOCAB_SIZE,
    special_tokens: Sequence[str] = SPECIAL_TOKENS,
) -> Tokenizer:
    """Train a byte-level BPE tokenizer with the family's special tokens.

    Args:
        corpus (Sequence[Path]): text files to learn merges from. Default the bundled corpus.
        vocab_size (int): upper bound on the vocabulary (specials + 256 bytes + merges). Default 2048.
        special_tokens (Sequence[str]): never split, ids in this order from 0. Default this
            family's; the smolvlm family's test models pass theirs.

    Returns:
        Tokenizer: special tokens have ids ``0 .. len(SPECIAL_TOKENS)-1``.
    """
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([str(p) for p in corpus], trainer)
    logger.info("trained byte-level BPE on %d file(s): vocab %d", len(corpus), tok.get_vocab_size())
    return tok


def bundled_tokenizer() -> Tokenizer:
    """The shipped tokenizer (``assets/tokenizer.json``), loaded without retraining."""
    return Tokenizer.from_file(str(BUNDLED_TOKENIZER))
