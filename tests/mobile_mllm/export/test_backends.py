"""Backends are looked up by exact name; the MediaTek one says what to install."""

from __future__ import annotations

import pytest

from mobile_mllm.errors import ConfigError, MissingDependencyError
from mobile_mllm.export.backends import BACKENDS, get_backend
from mobile_mllm.export.program import TargetConfig


def test_unknown_target_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no export target 'gpu'; known: cpu, mediatek"):
        get_backend("gpu")


def test_cpu_target_gives_dynamic_quant_then_general_xnnpack_partitioners() -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    for method in ("vision_encoder", "text_decoder"):
        parts = get_backend("cpu").partitioners(method, TargetConfig())
        assert len(parts) == 2 and all(isinstance(p, XnnpackPartitioner) for p in parts)
    assert get_backend("cpu").partitioners("token_embedding", TargetConfig()) == []  # XNNPACK has no lookup kernel


def test_mediatek_without_neuropilot_sdk_says_what_to_install() -> None:
    backend = get_backend("mediatek")
    with pytest.raises(MissingDependencyError, match="NeuroPilot Express SDK.*mtk_converter.*--target cpu"):
        backend.partitioners("vision_encoder", TargetConfig())


def test_every_registered_backend_exposes_partitioners() -> None:
    for name in BACKENDS:
        assert callable(get_backend(name).partitioners)
