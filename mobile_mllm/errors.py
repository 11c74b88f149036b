"""Every exception the toolkit raises on purpose.

Each type derives from :class:`MobileMLLMError` *and* from the builtin it resembles, so
callers that already catch ``ValueError`` or ``ImportError`` keep working. Messages say what
failed, the offending value, what was expected, and what to do next. Only ``cli.py`` catches
these (one line on stderr, an exit code per family); anything else is a bug.
"""

from __future__ import annotations


class MobileMLLMError(Exception):
    """Base of every toolkit error."""

    exit_code: int = 1


class ConfigError(MobileMLLMError, ValueError):
    """A config file, recipe or command-line flag is invalid (unknown key, wrong type, bad combination)."""

    exit_code = 2


class ImageError(MobileMLLMError, ValueError):
    """An image cannot be loaded or is unusable (missing, truncated, not an image, too large)."""

    exit_code = 3


class UnsupportedModelError(MobileMLLMError, ValueError):
    """A model directory or family the toolkit cannot handle."""

    exit_code = 4


class ModelLoadError(UnsupportedModelError):
    """A model directory exists but is incomplete or inconsistent (missing weights, tokenizer, mismatched keys)."""


class ContextOverflowError(MobileMLLMError, ValueError):
    """A prompt (with its image tokens) does not fit the model's context."""

    exit_code = 5


class ContractError(MobileMLLMError, ValueError):
    """A ``.pte`` program or manifest lacks a method or key the runner contract requires."""

    exit_code = 6


class ExportError(MobileMLLMError, RuntimeError):
    """Exporting or lowering a program failed; the message names the stage and the module."""

    exit_code = 7


class VerificationError(ExportError):
    """An exported program disagrees with the eager model beyond the stated tolerance."""


class MissingDependencyError(MobileMLLMError, ImportError):
    """An optional dependency (a backend SDK, a peer toolkit) is not installed; the message says what to install."""

    exit_code = 8


class DeviceError(MobileMLLMError, RuntimeError):
    """Talking to a phone over ADB failed."""

    exit_code = 9


class DeviceNotFoundError(DeviceError):
    """No device matches the requested serial, or none is connected."""


class DeviceUnauthorizedError(DeviceError):
    """The device refused our ADB key (accept the prompt on the phone)."""


class TransferError(DeviceError):
    """A push or pull did not complete, or the copy on the other side does not match (size or hash)."""


class RunnerError(DeviceError):
    """The on-device runner crashed, hung or printed no stats line."""


class EvalDataError(MobileMLLMError, ValueError):
    """A benchmark file or prediction file is malformed; the message names the file and row."""

    exit_code = 10


class OutputError(MobileMLLMError, OSError):
    """An output path cannot be written (its folder is a file, or not writable); checked before slow work starts."""

    exit_code = 11
