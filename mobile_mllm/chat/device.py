"""A phone behind the demo: answers come from the on-device runner over ADB (``--backend device``).

The runner contract (``android_app/RUNNER.md``) answers one question per invocation from the
program folder pushed to the phone; it keeps no KV cache between invocations. So on a device every
question is asked about the conversation's image from the start (the stats say 0 cached tokens),
earlier turns are not replayed, and the grid is the one the manifest fixes (the runner reads the
manifest, not the demo's grid controls). What the host backends add -- follow-ups that reuse the
cache, grid experiments -- stays on the host; the device backend shows the phone's own answer and
timings for the program that ships.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_mllm.errors import ConfigError, RunnerError

__all__ = ["DeviceAnswer", "DeviceSession"]


@dataclass(frozen=True)
class _Record:
    """A runner's stats record, with the ``to_dict`` a host ``Stats`` has."""

    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.record)


@dataclass(frozen=True)
class DeviceAnswer:
    """What :meth:`DeviceSession.ask` returns: the text and the device's stats record."""

    text: str
    stats: _Record


class DeviceSession:
    """The part of :class:`~mobile_mllm.runtime.session.Session` the demo uses, answered on a phone.

    Args:
        program (Path): the exported program folder (pushed on first use, skipped when already there).
        serial (str | None): the device (None: the only one connected).
        max_new_tokens (int): longest answer.
    """

    keeps_cache = False
    """A device answers each question from scratch: no follow-up reuses a cache."""

    def __init__(self, program: Path, serial: str | None, max_new_tokens: int) -> None:
        from mobile_mllm.runtime.preflight import read_vision_config

        self.program, self.serial, self.max_new_tokens = program, serial, max_new_tokens
        self.vision = read_vision_config(program)
        self._image: Any = None

    def reset(self) -> None:
        """Nothing to forget on the host: the device keeps no conversation."""

    def ask(self, question: str, image: Any = None, *, on_token: Any = None, token_budget: int | None = None) -> DeviceAnswer:
        """Answer on the device about ``image`` (or the last image asked about).

        Raises:
            ConfigError: an image that is not a file (the runner reads files pushed to the phone).
            DeviceError: the device is gone, refused us, or the runner failed.
        """
        from mobile_mllm.device.run import RunnerConfig, answer_on_device

        del token_budget  # the runner tiles as the manifest says
        if image is not None:
            if not isinstance(image, (str, Path)) or not Path(image).is_file():
                raise ConfigError("the device backend needs an image file (upload or pick one)")
            self._image = Path(image)
        result = answer_on_device(self.serial, self.program, self._image, question,
                                  RunnerConfig(max_new_tokens=self.max_new_tokens), on_text=on_token)
        if not result.records:
            raise RunnerError(f"the runner on {self.serial or 'the device'} printed no stats line: {result.stderr_tail}")
        record = result.records[-1]
        return DeviceAnswer(text=str(record.get("text", "")), stats=_Record(record))
