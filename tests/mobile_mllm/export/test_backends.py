"""Backends are looked up by exact name and each is an ExportBackend; the MediaTek one says what to install."""

from __future__ import annotations

import pytest

from mobile_mllm.errors import ConfigError, MissingDependencyError
from mobile_mllm.export.backends import BACKENDS, get_backend
from mobile_mllm.export.program import TargetConfig


def test_unknown_target_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no export target 'gpu'; known: cpu, mediatek"):
        get_backend("gpu")


def test_cpu_target_partitioners_per_method() -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    cpu = get_backend("cpu")
    decoder = cpu.partitioners("text_decoder", TargetConfig())
    assert len(decoder) == 2 and all(isinstance(p, XnnpackPartitioner) for p in decoder)
    assert type(decoder[0]).__name__ == "XnnpackDynamicallyQuantizedPartitioner"
    vision = cpu.partitioners("vision_encoder", TargetConfig())  # one partitioner (why: xnnpack.partitioners)
    assert len(vision) == 1 and type(vision[0]) is XnnpackPartitioner
    assert cpu.partitioners("token_embedding", TargetConfig()) == []  # XNNPACK has no lookup kernel


def test_mediatek_without_neuropilot_sdk_says_what_to_install() -> None:
    backend = get_backend("mediatek")
    with pytest.raises(MissingDependencyError, match="NeuroPilot Express SDK.*mtk_converter.*--target cpu"):
        backend.partitioners("vision_encoder", TargetConfig())


def test_mediatek_check_fails_before_any_slow_stage(tmp_path) -> None:
    from mobile_mllm.export.program import ExportJob, Target, export_program

    job = ExportJob(model=str(tmp_path / "no-such-model"), output=str(tmp_path / "out"),
                    target=TargetConfig(target=Target.MEDIATEK))
    with pytest.raises(MissingDependencyError, match="NeuroPilot Express SDK"):
        export_program(job)  # the model directory does not exist: check ran first
    assert not (tmp_path / "out").exists()


def test_every_registered_backend_is_an_export_backend_named_for_its_target() -> None:
    from mobile_mllm.export.backend import ExportBackend

    for name in BACKENDS:
        backend = get_backend(name)
        assert isinstance(backend, ExportBackend) and backend.name == name


def test_mediatek_simulation_needs_no_sdk_but_a_real_export_does() -> None:
    from mobile_mllm.export.program import Target

    backend = get_backend("mediatek")
    backend.check(TargetConfig(target=Target.MEDIATEK, simulate=True))  # no SDK needed: nothing raised
    with pytest.raises(MissingDependencyError, match="add --simulate"):
        backend.check(TargetConfig(target=Target.MEDIATEK))
