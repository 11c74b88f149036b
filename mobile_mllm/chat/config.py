"""Settings of the demo (``mobile-mllm demo`` flags) and of one question's grid."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mobile_mllm.errors import ConfigError
from mobile_mllm.vision.config import GridPolicy

__all__ = ["DemoBackend", "DemoConfig", "GridSettings"]


class DemoBackend(str, enum.Enum):
    """What runs the model: chosen from the model folder (auto), or insisted on."""

    AUTO = "auto"
    EAGER = "eager"
    PTE = "pte"
    DEVICE = "device"


@dataclass(frozen=True)
class DemoConfig:
    """How the demo serves its models."""

    backend: DemoBackend = DemoBackend.AUTO
    """auto (a program folder runs its .pte, anything else the eager model), eager, pte, or device (the program on a phone over ADB)."""
    serial: str | None = None
    """The device of --backend device (host:port or a USB serial; None: the only one connected)."""
    host: str = "127.0.0.1"
    """Address to listen on; 127.0.0.1 keeps the demo on this machine (0.0.0.0 shares it on the network)."""
    port: int = 7860
    """Port to listen on (0: any free port)."""
    max_new_tokens: int = 64
    """Longest answer in tokens."""
    max_context_len: int = 2048
    """KV-cache positions of an eager model (a program keeps the length it was exported with)."""
    queue_size: int = 16
    """Requests waiting for the model at most; more are refused (bounds memory under many users)."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "backend", DemoBackend(self.backend))  # "pte" from Python code too
        except ValueError as e:
            raise ConfigError(f"backend must be one of {', '.join(b.value for b in DemoBackend)}, got {self.backend!r}") from e
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        for name in ("max_new_tokens", "max_context_len", "queue_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class GridSettings:
    """A user's grid choices for one image; None keeps the model's own setting."""

    policy: GridPolicy | None = None
    max_tiles: int | None = None
    """Largest number of local tiles m*n (the thumbnail is not counted)."""
    token_budget: int | None = None
    """Most image tokens (a smaller grid is chosen when the policy's needs more)."""

    def __post_init__(self) -> None:
        for name in ("max_tiles", "token_budget"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be >= 1 (or unset), got {value}")
