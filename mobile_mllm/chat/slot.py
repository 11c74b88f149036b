"""One model instance shared by every user of the demo: a Session behind a lock.

A phone runs one model at a time, and so does the demo: loading a copy per browser tab would
multiply memory. Users take turns through :attr:`ModelSlot.lock` (Gradio's queue orders them);
the slot remembers whose conversation its KV cache holds (:attr:`owner`), so a follow-up from
the same user reuses the cache and one from another user is replayed first.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm import contract
from mobile_mllm.chat.config import DemoBackend, DemoConfig, GridSettings
from mobile_mllm.errors import ConfigError

if TYPE_CHECKING:
    from mobile_mllm.runtime.session import Session
    from mobile_mllm.vision.config import VisionConfig

logger = logging.getLogger(__name__)

__all__ = ["ModelSlot", "is_program_dir"]


def is_program_dir(ref: str) -> bool:
    """Whether ``ref`` is an exported program folder (it holds ``model.pte``)."""
    return (Path(ref) / contract.PROGRAM_FILE).is_file()


class ModelSlot:
    """A model reference, opened on first use, shared by all conversations.

    Args:
        ref (str): a model directory, an exported program directory or ``builtin:NAME``.
        config (DemoConfig): backend choice, answer length and context.

    Raises:
        ConfigError: the backend asked for does not match what ``ref`` holds.
    """

    def __init__(self, ref: str, config: DemoConfig) -> None:
        program = is_program_dir(ref)
        if config.backend in (DemoBackend.PTE, DemoBackend.DEVICE) and not program:
            raise ConfigError(f"--backend {config.backend.value} needs an exported program folder (with {contract.PROGRAM_FILE}); {ref} is not one")
        if config.backend is DemoBackend.EAGER and program:
            raise ConfigError(f"--backend eager needs a model directory or builtin:NAME; {ref} is an exported program")
        self.ref = ref
        self.config = config
        self.kind = "device" if config.backend is DemoBackend.DEVICE else "pte" if program else "eager"
        self.lock = threading.Lock()
        self.owner: str | None = None
        """Id of the conversation whose turns the KV cache holds (None: nobody's, e.g. after a stop)."""
        self._session: Session | None = None
        self._base_vision: VisionConfig | None = None

    @property
    def label(self) -> str:
        """What the UI calls this model: the folder name and the backend."""
        name = self.ref.rstrip("/").rsplit("/", 1)[-1] or self.ref
        return f"{name} ({self.kind})"

    def session(self) -> Session:
        """The model's session, loading it on first call (call with :attr:`lock` held).

        With ``--backend device`` it is a :class:`~mobile_mllm.chat.device.DeviceSession`, which
        answers on the phone and keeps no cache between questions.
        """
        if self._session is None and self.kind == "device":
            from mobile_mllm.chat.device import DeviceSession

            self._session = DeviceSession(Path(self.ref), self.config.serial, self.config.max_new_tokens)  # type: ignore[assignment]
            self._base_vision = self._session.vision
        if self._session is None:
            from mobile_mllm.runtime.methods import RuntimeConfig
            from mobile_mllm.runtime.sampling import GenerationConfig
            from mobile_mllm.runtime.session import Session

            logger.info("loading %s", self.ref)
            self._session = Session.from_dir(
                self.ref,
                runtime=RuntimeConfig(max_context_len=self.config.max_context_len),
                generation=GenerationConfig(max_new_tokens=self.config.max_new_tokens),
            )
            self._base_vision = self._session.vision
        return self._session

    def vision(self, settings: GridSettings) -> VisionConfig:
        """The model's vision config with a user's grid choices applied (loads the model if needed)."""
        from mobile_mllm.vision.config import with_grid_limits

        self.session()
        assert self._base_vision is not None  # set by session()
        cfg = self._base_vision
        if settings.policy is not None:
            cfg = dataclasses.replace(cfg, policy=settings.policy)
        return with_grid_limits(cfg, max_tiles=settings.max_tiles, max_side=None)  # max_tiles alone lifts the side bound, as in `grid`
