"""Read a model directory's ``tokenizer.json`` (HF ``tokenizers`` format), failing with the path at fault.

Every family's loader reads its tokenizer through :func:`read_tokenizer_file`; which special
tokens must be in it is the family's business (its ``checkpoint.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm.errors import ModelLoadError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["TOKENIZER_FILE", "read_tokenizer_file"]

TOKENIZER_FILE = "tokenizer.json"


def read_tokenizer_file(directory: Path, hint: str = "") -> Tokenizer:
    """``directory/tokenizer.json`` as a ``tokenizers.Tokenizer``.

    Args:
        directory (Path): the model directory.
        hint (str): what to do when the file is missing, appended to the message. Default "".

    Raises:
        ModelLoadError: the file is missing or not a tokenizers file.
    """
    from tokenizers import Tokenizer

    file = Path(directory) / TOKENIZER_FILE
    if not file.is_file():
        raise ModelLoadError(f"{directory}: missing {TOKENIZER_FILE}{f' ({hint})' if hint else ''}")
    try:
        return Tokenizer.from_file(str(file))
    except Exception as e:  # tokenizers raises a bare Exception on malformed files
        raise ModelLoadError(f"{file} is not a valid tokenizers file: {e}") from e
