"""MediaTek static-shape export: fp32 simulated graphs answer exactly as the dynamic-shape CPU program does.

The reference is the tiny model's fp32 XNNPACK program (``tiny_program``, tests/conftest.py),
run through the same session loop: the static graphs (two decoder shards, 32-position prompt
graphs with a padded last chunk, 1-position generate graphs, vision at batch 4 and 1) must give
the same greedy tokens for an image question and a follow-up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobile_mllm import contract
from mobile_mllm.errors import ConfigError
from mobile_mllm.export.config import Target, TargetConfig
from mobile_mllm.export.static_program import calibration_samples


def test_calibration_folder_pairs_images_with_questions_in_turn(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("b.png", "a.jpg", "c.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    (tmp_path / "notes.md").write_text("not an image")
    (tmp_path / "questions.txt").write_text("What is it?\n\nHow many?\n")
    cfg = TargetConfig(target=Target.MEDIATEK, calibration=str(tmp_path), calibration_samples=3)
    got = [(Path(image).name, q) for image, q in calibration_samples(cfg, seed=0)]
    assert got == [("a.jpg", "What is it?"), ("b.png", "How many?"), ("c.png", "What is it?")]


def test_calibration_folder_without_images_is_refused(tmp_path: Path) -> None:
    cfg = TargetConfig(target=Target.MEDIATEK, calibration=str(tmp_path))
    with pytest.raises(ConfigError, match=r"target.calibration .* holds no image"):
        calibration_samples(cfg, seed=0)


def test_simulate_is_only_for_the_mediatek_target() -> None:
    with pytest.raises(ConfigError, match="add --target mediatek or drop --simulate"):
        TargetConfig(simulate=True)


@pytest.mark.slow
def test_fp32_static_graphs_give_the_cpu_programs_greedy_tokens(tiny_dir: Path, tiny_program: Path, tmp_path: Path) -> None:
    import numpy as np

    from mobile_mllm.export.program import ExportJob, export_program
    from mobile_mllm.quant.recipe import preset
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    cpu = json.loads((tiny_program / contract.MANIFEST_FILE).read_text())
    job = ExportJob(
        model=str(tiny_dir), output=str(tmp_path / "npu"), quant=preset("fp32"), verify_tokens=6,
        target=TargetConfig(target=Target.MEDIATEK, simulate=True, max_context_len=cpu[contract.M_MAX_CONTEXT_LEN],
                            prefill_chunk=cpu[contract.M_PREFILL_CHUNK], tile_batch=4, layers_per_shard=1),
    )
    result = export_program(job)  # its own verification: token-exact against the eager model
    static = json.loads(result.manifest.read_text())[contract.M_STATIC]
    assert static[contract.M_STATIC_SHARDS] == [[0, 1], [1, 2]] and static[contract.M_STATIC_SIMULATED]
    files = static[contract.M_STATIC_FILES]
    assert sorted(files[contract.STATIC_VISION]) == ["1", "4"] and len(files[contract.STATIC_PROMPT]) == 2
    assert not list(result.output.glob(".partial.*"))

    picture = (np.random.default_rng(3).random((90, 200, 3)) * 255).astype(np.uint8)  # grid 3x2 + thumbnail: 4 + 1 + 1 + 1
    generation = GenerationConfig(max_new_tokens=10)
    answers = {}
    for name, path in (("npu", result.output), ("cpu", tiny_program)):
        session = Session.from_dir(path, generation=generation)
        first = session.ask("What is in the picture?", picture)
        answers[name] = (first.tokens, session.ask("And the colour?").tokens, first.stats.num_tiles)
    assert answers["npu"] == answers["cpu"]
    assert answers["npu"][2] == 7  # both vision graphs ran


def test_sdk_path_writes_one_pte_per_program(tiny_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip(
        "executorch.backends.mediatek",
        reason="needs MediaTek's NeuroPilot Express SDK wheels (mtk_converter, mtk_neuron), which are not on PyPI",
    )
    from mobile_mllm.export.program import ExportJob, export_program
    from mobile_mllm.quant.recipe import preset

    job = ExportJob(model=str(tiny_dir), output=str(tmp_path / "npu"), quant=preset("a16w4"), verify=False,
                    target=TargetConfig(target=Target.MEDIATEK, max_context_len=128, prefill_chunk=32,
                                        calibration_samples=1))
    result = export_program(job)
    files = json.loads(result.manifest.read_text())[contract.M_STATIC][contract.M_STATIC_FILES]
    assert all(f.split("#")[0].endswith(".pte") for f in files[contract.STATIC_PROMPT])
    assert (result.output / "vision.pte").is_file() and (result.output / "decoder_s0.pte").is_file()
