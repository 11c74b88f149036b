"""The host runner (android_app/RUNNER.md) on the tiny exported program, checked against Session on the same program."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_mllm.contract import STATS_LINE_PREFIX
from mobile_mllm.device.runner import main


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "noise.png"
    Image.fromarray((np.random.default_rng(0).random((100, 180, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _records(text: str) -> list[dict]:
    return [json.loads(line[len(STATS_LINE_PREFIX):]) for line in text.splitlines() if line.startswith(STATS_LINE_PREFIX)]


@pytest.mark.slow
def test_single_mode_prints_text_then_one_stats_line_per_run_matching_session(tiny_program: Path, picture: Path) -> None:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    out = io.StringIO()
    code = main(["--program-dir", str(tiny_program), "--image", str(picture), "--prompt", "what is it?",
                 "--max-new-tokens", "6", "--runs", "2", "--warmup", "1"], out=out)
    assert code == 0
    expected = Session.from_dir(tiny_program, generation=GenerationConfig(max_new_tokens=6)).ask("what is it?", picture)
    records = _records(out.getvalue())
    assert [r["run"] for r in records] == [0, 1]  # the warm-up printed nothing
    assert out.getvalue() == "".join(f"{expected.text}\n{STATS_LINE_PREFIX}{json.dumps(r, separators=(',', ':'))}\n"
                                     for r in records)
    for r in records:
        assert (r["text"], r["generated_tokens"], r["prompt_tokens"]) == (
            expected.text, len(expected.tokens), expected.stats.num_prompt_tokens)
        assert r["SCALING_FACTOR_UNITS_PER_SECOND"] == 1000 and r["num_tiles"] == expected.stats.num_tiles
        assert r["stop_reason"] == expected.stop_reason and r["decode_tok_s"] > 0


@pytest.mark.slow
def test_batch_mode_reports_a_bad_request_and_goes_on(tiny_program: Path, picture: Path, tmp_path: Path) -> None:
    requests = tmp_path / "req.jsonl"
    requests.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "image": str(picture), "prompt": "what?", "max_new_tokens": 3},
        {"id": "b", "image": str(tmp_path / "missing.png"), "prompt": "what?"},
        {"id": "c", "image": None, "prompt": "and text only?", "max_new_tokens": 2},
    ]) + "\n")
    out = io.StringIO()
    assert main(["--program-dir", str(tiny_program), "--requests", str(requests), "--threads", "2"], out=out) == 0
    from executorch.extension.pybindings import portable_lib

    assert portable_lib._threadpool_get_thread_count() == 2
    a, b, c = _records(out.getvalue())
    assert (a["id"], a["generated_tokens"] <= 3, a["num_tiles"] > 0) == ("a", True, True)
    assert b["id"] == "b" and b["error_type"] == "ImageError" and "missing.png" in b["error"]
    assert (c["id"], c["generated_tokens"] <= 2, c["num_tiles"]) == ("c", True, 0)
    assert c["num_cached_tokens"] == 0  # a new conversation, not a follow-up to request "a"


def test_exit_codes_for_bad_arguments_and_a_folder_without_a_program(tmp_path: Path) -> None:
    assert main(["--program-dir", str(tmp_path)], out=io.StringIO()) == 2  # neither --prompt nor --requests
    assert main(["--program-dir", str(tmp_path), "--prompt", "x", "--runs", "0"], out=io.StringIO()) == 2
    assert main(["--program-dir", str(tmp_path), "--prompt", "x"], out=io.StringIO()) == 6


@pytest.mark.slow
def test_etdump_counts_every_decoder_call_the_stats_imply(tiny_program: Path, picture: Path, tmp_path: Path) -> None:
    from mobile_mllm.runtime.etdump import aggregate_events, summarize_etdump

    out = io.StringIO()
    dump = tmp_path / "run.etdump"
    assert main(["--program-dir", str(tiny_program), "--image", str(picture), "--prompt", "what?",
                 "--max-new-tokens", "5", "--runs", "2", "--etdump", str(dump)], out=out) == 0
    chunk = json.loads((tiny_program / "manifest.json").read_text())["prefill_chunk"]
    # prefill calls (ceil(prompt / chunk)) plus one call per generated token but the last, per run
    expected = sum(-(-r["prompt_tokens"] // chunk) + r["generated_tokens"] - 1 for r in _records(out.getvalue()))
    rows = {r["event"]: r for r in aggregate_events(Path(f"{dump}.text_decoder"))}
    assert rows["Method::execute"]["calls"] == expected
    summary = summarize_etdump([Path(f"{dump}.{m}") for m in ("vision_encoder", "token_embedding", "text_decoder")])
    assert 0 < summary["delegate_share"] < 1 and summary["top_events"]
    assert abs(sum(r["share"] for r in summary["top_events"]) - 1) < 0.2  # the top 15 hold most of the time


@pytest.mark.slow
def test_batch_follow_up_continues_the_previous_conversation(tiny_program: Path, picture: Path, tmp_path: Path) -> None:
    """``"follow_up": true`` answers as Session.ask without an image does after the previous answer."""
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    requests = tmp_path / "req.jsonl"
    requests.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "image": str(picture), "prompt": "what?"},
        {"id": "b", "image": None, "prompt": "and the colour?", "follow_up": True},
    ]) + "\n")
    out = io.StringIO()
    assert main(["--program-dir", str(tiny_program), "--requests", str(requests), "--max-new-tokens", "4"], out=out) == 0
    a, b = _records(out.getvalue())
    session = Session.from_dir(tiny_program, generation=GenerationConfig(max_new_tokens=4))
    first = session.ask("what?", picture)
    second = session.ask("and the colour?")
    assert (a["text"], b["text"], b["prompt_tokens"]) == (first.text, second.text, second.stats.num_prompt_tokens)
    assert b["num_cached_tokens"] == second.stats.num_cached_tokens > a["prompt_tokens"]
