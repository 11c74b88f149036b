"""profile.py's summary, table and report files, on hand-made run records (the device flow is in tests/cli)."""

from __future__ import annotations

import json
from pathlib import Path

from mobile_mllm.device.profile import ProgramProfile, format_table, summarize, write_report


def _program(name: str, ttft: list[float], decode: list[float]) -> ProgramProfile:
    runs = tuple({"time_to_first_token_ms": t, "decode_tok_s": d, "model_load_ms": 1000.0, "image_encode_ms": 40.0,
                  "prefill_ms": t - 45.0, "num_image_tokens": 64} for t, d in zip(ttft, decode))
    return ProgramProfile(name=name, program_dir=f"/x/{name}", remote_dir=f"/data/local/tmp/mobile_mllm/{name}",
                          file_bytes={"model.pte": 7_400_000}, runs=runs, summary=summarize(runs),
                          peak_memory_bytes=300 * 2**20, memory_samples=12, runner="mobile-mllm-runner")


def test_summary_is_min_median_max_per_figure() -> None:
    s = summarize([{"decode_tok_s": 12.0, "num_tiles": 7}, {"decode_tok_s": 10.0, "num_tiles": 7},
                   {"decode_tok_s": 30.0, "num_tiles": 7}, {"decode_tok_s": 11.0, "num_tiles": 7}])
    assert s["decode_tok_s"] == {"min": 10.0, "median": 11.5, "max": 30.0}
    assert s["num_tiles"] == {"min": 7.0, "median": 7.0, "max": 7.0} and "prefill_tok_s" not in s


def test_table_has_one_column_per_program_with_min_median_max() -> None:
    table = format_table({"serial": "s1", "model": "Pixel 8", "soc": "Tensor G3"},
                         [_program("w4", [200, 220, 260], [20, 21, 25]), _program("w8", [300, 310, 330], [10, 11, 12])])
    lines = table.splitlines()
    assert lines[0] == "device s1: model Pixel 8, soc Tensor G3"
    header = lines[2].split()
    assert header == ["figure", "w4", "w8"]
    ttft = next(ln for ln in lines if ln.startswith("time to first token"))
    assert ttft.split("(ms)")[1].split() == ["200", "/", "220", "/", "260", "300", "/", "310", "/", "330"]
    assert next(ln for ln in lines if ln.startswith("program size")).split()[-2:] == ["7.40", "7.40"]


def test_report_is_json_and_two_pngs(tmp_path: Path) -> None:
    programs = [_program("w4", [200, 220], [20, 21]), _program("w8", [300, 310], [10, 11])]
    written = write_report(tmp_path / "r", {"serial": "s1"}, programs, {"runs": 2})
    assert sorted(p.name for p in written) == ["profile.json", "runs.png", "ttft.png"]
    doc = json.loads((tmp_path / "r" / "profile.json").read_text())
    assert [p["name"] for p in doc["programs"]] == ["w4", "w8"] and doc["settings"] == {"runs": 2}
    assert doc["programs"][1]["summary"]["decode_tok_s"]["median"] == 10.5
    for name in ("runs.png", "ttft.png"):
        assert (tmp_path / "r" / name).read_bytes()[:4] == b"\x89PNG"
    assert not list((tmp_path / "r").glob("*.tmp*")) and len(list((tmp_path / "r").iterdir())) == 3
