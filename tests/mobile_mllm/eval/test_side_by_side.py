"""Side-by-side scores: one eval per run, deltas against the first, stored in the export report atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobile_mllm.eval.side_by_side import add_accuracy_to_report

SUITE = Path(__file__).resolve().parents[3] / "eval" / "synth_yn.toml"


@pytest.mark.slow
def test_same_model_twice_has_zero_delta_and_lands_in_the_report(tiny_dir: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "export"  # any evaluable folder stands for the export: here a copy of the model
    shutil.copytree(tiny_dir, out)
    (out / "export_report.json").write_text(json.dumps({"backend": "mediatek"}))
    section = add_accuracy_to_report(out, model=str(tiny_dir), reference=str(tiny_dir), data=SUITE, limit=2)
    scores = section["scores"]
    assert list(scores) == ["float", "export", "reference"]
    assert scores["float"] == scores["export"] == scores["reference"]
    (bench,) = scores["float"]
    assert section["delta"]["reference"][bench] and set(section["delta"]["reference"][bench].values()) == {0.0}
    report = json.loads((out / "export_report.json").read_text())
    assert report["backend"] == "mediatek" and report["accuracy"]["runs"]["export"] == str(out)
    assert (out / "accuracy" / "reference").is_dir() and not list(out.glob(".*partial*"))
