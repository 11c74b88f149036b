"""The native runner behind android_app/RUNNER.md against the host runner, on tiny programs.

The reference is ``python -m mobile_mllm.device.runner`` (the Python ExecuTorch runtime behind the
same contract, i.e. ``mobile-mllm run``'s loop) on the same program folder: for the tiny model
exported fp32 (``tiny_program``) and 8da4w (``exported("w4")``) the native runner's answers
(greedy), stop reasons, prompt / image-token / tile counts and grids equal the host's on images of
several sizes and modes, its tiles (``--dump-tiles``) equal ``mobile_mllm.vision.preprocess``'s,
batch mode reports the same errors, and the exit codes, ``--runs``/``--warmup``/``--no-stream``
and ``--etdump`` behave as RUNNER.md says.

Answers of the 8da4w program are compared with a quota, not one by one: the runner's own
``llama::custom_sdpa`` kernel rounds differently from ExecuTorch's (vectorised exp and sums), and
dynamic int8 activation quantization turns a 1-ulp difference into a different quantization step,
so on the random-weight tiny model a near tie can flip a greedy token (measured: 1 of 5 single-mode
images here; 3 of 223 questions on the built-in w4 program, bench/RESULTS.md). fp32 programs
are compared exactly (their logits agree to ~5e-7, test_native_runner.py).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PLAN = ("num_prompt_tokens", "num_image_tokens", "num_tiles", "grid", "reduced_by_budget", "prompt_tokens", "error_type")
ANSWER = ("text", "stop_reason", "num_generated_tokens", "generated_tokens")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("contract_images")
    rng = np.random.default_rng(3)
    paths = [REPO / "demo" / "sample.png"]
    for w, h in [(500, 102), (1, 50), (300, 700)]:
        p = folder / f"noise_{w}x{h}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    rgba = rng.integers(0, 256, (60, 90, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    paths.append(folder / "rgba.png")
    return paths


@pytest.fixture(scope="module", params=["fp32", "w4"])
def program(request: pytest.FixtureRequest) -> Path:
    if request.param == "fp32":
        return request.getfixturevalue("tiny_program")
    return Path(request.getfixturevalue("exported")("w4").output)


def _assert_answers(native: list[dict], host: list[dict], program: Path) -> None:
    """Plans equal always; answers equal one by one for fp32, for at least 60% of them for w4 (module docstring)."""
    assert [{k: r.get(k) for k in PLAN} for r in native] == [{k: r.get(k) for k in PLAN} for r in host]
    same = [{k: n.get(k) for k in ANSWER} == {k: h.get(k) for k in ANSWER} for n, h in zip(native, host)]
    precision = json.loads((program / "manifest.json").read_text())["precision"]["modules"]["text_decoder"]
    if precision == "fp32":
        assert all(same), [(n["text"], h["text"]) for n, h, ok in zip(native, host, same) if not ok]
    else:
        assert sum(same) >= 0.6 * len(same), [(n.get("text"), h.get("text")) for n, h in zip(native, host)]


def _records(stdout: str) -> list[dict]:
    return [json.loads(line.split("PyTorchObserver ", 1)[1]) for line in stdout.splitlines() if "PyTorchObserver " in line]


def _host(args: list[str]) -> tuple[int, str]:
    from mobile_mllm.device.runner import main

    out = io.StringIO()
    code = main(args, out=out)
    return code, out.getvalue()


def _batch_both(
    runner_bin: Path, program: Path, reqs: list[dict], tmp_path: Path, *, max_new_tokens: int
) -> tuple[list[dict], list[dict]]:
    """The host runner's and the native runner's records for one --requests file (both must exit 0)."""
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in reqs))
    args = ["--program-dir", str(program), "--requests", str(path), "--max-new-tokens", str(max_new_tokens)]
    code, host_out = _host(args)
    proc = _native(runner_bin, args)
    assert code == 0 and proc.returncode == 0, proc.stderr[-2000:]
    return _records(host_out), _records(proc.stdout)


def _native(runner_bin: Path, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(runner_bin), *args], capture_output=True, text=True, timeout=300)


def test_single_mode_answers_and_tiles_equal_the_host(runner_bin: Path, program: Path, images: list[Path],
                                                      tmp_path: Path) -> None:
    from mobile_mllm.config import from_dict
    from mobile_mllm.vision import preprocess
    from mobile_mllm.vision.config import VisionConfig

    vision = from_dict(VisionConfig, json.loads((program / "manifest.json").read_text())["vision"], source="manifest")
    hosts, natives = [], []
    for image in images:
        args = ["--program-dir", str(program), "--image", str(image), "--prompt", "What colour is the star?",
                "--max-new-tokens", "12"]
        code, host_out = _host(args)
        proc = _native(runner_bin, [*args, "--dump-tiles", str(tmp_path / "tiles.bin")])
        assert code == 0 and proc.returncode == 0, proc.stderr[-2000:]
        (host,), (native,) = _records(host_out), _records(proc.stdout)
        hosts.append(host)
        natives.append(native)
        assert proc.stdout == native["text"] + "\n" + proc.stdout.splitlines()[-1] + "\n"  # streamed text, then the line
        assert set(native) >= set(host)  # every key the host prints
        want = preprocess(image, vision).tiles.numpy()
        got = np.fromfile(tmp_path / "tiles.bin", dtype=np.float32)
        assert np.array_equal(got.reshape(want.shape), want), image.name
    _assert_answers(natives, hosts, program)


def test_batch_mode_equals_the_host(runner_bin: Path, program: Path, images: list[Path], tmp_path: Path) -> None:
    reqs = [{"id": f"img{i}", "image": str(p), "prompt": "What shape is red?", "max_new_tokens": 6 + i}
            for i, p in enumerate(images)]
    reqs += [
        {"id": "text", "image": None, "prompt": "Say something about shapes."},
        {"id": "missing", "image": str(tmp_path / "missing.png"), "prompt": "what?"},
        {"id": "empty", "image": str(images[0]), "prompt": "   "},
        {"id": "overflow", "image": None, "prompt": "word " * 3000},
        {"id": "after", "image": None, "prompt": "And now?"},
    ]
    host, native = _batch_both(runner_bin, program, reqs, tmp_path, max_new_tokens=10)
    assert [r["id"] for r in native] == [r["id"] for r in reqs]
    _assert_answers(native, host, program)
    errors = {r["id"]: r["error_type"] for r in native if "error" in r}
    assert errors == {"missing": "ImageError", "empty": "ConfigError", "overflow": "ContextOverflowError"}
    assert native[-1]["num_cached_tokens"] == 0  # requests are independent conversations


def test_runs_warmup_and_no_stream(runner_bin: Path, tiny_program: Path, images: list[Path]) -> None:
    args = ["--program-dir", str(tiny_program), "--image", str(images[0]), "--prompt", "what?", "--max-new-tokens", "5"]
    proc = _native(runner_bin, [*args, "--runs", "2", "--warmup", "1", "--threads", "1"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = _records(proc.stdout)
    assert [r["run"] for r in records] == [0, 1] and records[0]["text"] == records[1]["text"]
    assert records[0]["SCALING_FACTOR_UNITS_PER_SECOND"] == 1000
    for r in records:  # the raw timestamps are ordered as a run goes
        stamps = [r[k] for k in ("model_load_start_ms", "model_load_end_ms", "inference_start_ms",
                                 "image_encode_start_ms", "image_encode_end_ms", "prompt_eval_end_ms",
                                 "first_token_ms", "inference_end_ms")]
        assert stamps == sorted(stamps) and r["peak_rss_bytes"] > 0
        assert r["vision_batch_sizes"] and sum(r["vision_batch_sizes"]) == r["num_tiles"]
    proc = _native(runner_bin, [*args, "--no-stream"])
    lines = proc.stdout.split("\n")
    assert proc.returncode == 0 and lines[0] == "" and lines[1].startswith("PyTorchObserver ")


def test_tile_batch_and_prefill_chunk_options_equal_the_host(runner_bin: Path, tiny_program: Path,
                                                             images: list[Path]) -> None:
    args = ["--program-dir", str(tiny_program), "--image", str(images[3]), "--prompt", "Which shapes?",
            "--max-new-tokens", "8", "--tile-batch", "1", "--prefill-chunk", "5", "--no-stream"]
    code, host_out = _host(args)
    proc = _native(runner_bin, args)
    assert code == 0 and proc.returncode == 0, proc.stderr[-2000:]
    (host,), (native,) = _records(host_out), _records(proc.stdout)
    assert native["vision_batch_sizes"] == host["vision_batch_sizes"] == [1] * host["num_tiles"]
    assert {k: native[k] for k in (*PLAN, *ANSWER) if k in host} == {k: host[k] for k in (*PLAN, *ANSWER) if k in host}


def test_exit_codes(runner_bin: Path, tiny_program: Path, images: list[Path], tmp_path: Path) -> None:
    base = ["--program-dir", str(tiny_program)]
    cases = [
        ([*base, "--prompt", "x", "--runs", "0"], 2, "--runs"),
        ([*base, "--prompt", "x", "--requests", "r.jsonl"], 2, "not both"),
        ([*base, "--prompt", "x", "--bogus", "1"], 2, "unknown argument"),
        ([*base, "--image", str(tmp_path / "none.png"), "--prompt", "x"], 3, "not found"),
        ([*base, "--prompt", "word " * 3000], 5, "positions but only"),
        (["--program-dir", str(tmp_path), "--prompt", "x"], 6, "manifest.json not found"),
    ]
    bad = tmp_path / "v99"
    shutil.copytree(tiny_program, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["version"] = 99
    (bad / "manifest.json").write_text(json.dumps(manifest))
    cases.append((["--program-dir", str(bad), "--prompt", "x"], 6, "version 99"))
    for args, code, words in cases:
        proc = _native(runner_bin, args)
        assert (proc.returncode, words in proc.stderr) == (code, True), (args[2:4], proc.stderr[-500:])
        assert "PyTorchObserver" not in proc.stdout


def test_etdump_records_every_method_call(runner_bin: Path, tiny_program: Path, images: list[Path],
                                          tmp_path: Path) -> None:
    from mobile_mllm.runtime.etdump import aggregate_events

    dump = tmp_path / "run.etdump"
    proc = _native(runner_bin, ["--program-dir", str(tiny_program), "--image", str(images[1]), "--prompt", "what?",
                                "--max-new-tokens", "5", "--etdump", str(dump)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    (r,) = _records(proc.stdout)
    chunk = json.loads((tiny_program / "manifest.json").read_text())["prefill_chunk"]
    decoder_calls = -(-r["prompt_tokens"] // chunk) + r["generated_tokens"] - 1
    embedding_calls = r["generated_tokens"] - 1  # plus the prompt's runs (at least one) and one at load
    rows = {row["event"]: row for row in aggregate_events(dump)}
    calls = rows["Method::execute"]["calls"]
    # one ETDump for all methods (as ExecuTorch's Module shares one tracer): vision batches, embeddings,
    # decoder calls and the constant methods read at load all appear
    assert calls >= len(r["vision_batch_sizes"]) + decoder_calls + embedding_calls + 2


def test_batch_requests_styled_false_take_the_prompt_as_written(
    runner_bin: Path, tiny_program: Path, images: list[Path], tmp_path: Path
) -> None:
    """A request's ``"styled": false`` skips the manifest's question_template, as the host runner does."""
    program = tmp_path / "styled"
    shutil.copytree(tiny_program, program)
    manifest = json.loads((program / "manifest.json").read_text())
    manifest["prompt"]["question_template"] = "{question} Answer with one word, please."
    (program / "manifest.json").write_text(json.dumps(manifest))
    reqs = [{"id": "styled", "image": str(images[0]), "prompt": "What shape is red?"},
            {"id": "as_is", "image": str(images[0]), "prompt": "What shape is red?", "styled": False}]
    host, native = _batch_both(runner_bin, program, reqs, tmp_path, max_new_tokens=3)
    assert [r["num_prompt_tokens"] for r in native] == [r["num_prompt_tokens"] for r in host]
    assert native[0]["num_prompt_tokens"] > native[1]["num_prompt_tokens"]  # the template's words are there


def test_a_manifest_with_text_tile_markers_is_refused(runner_bin: Path, tiny_program: Path, images: list[Path], tmp_path: Path) -> None:
    """SmolVLM's text-marked tiles are not laid out by the native runner: refused (exit 6), never mis-laid."""
    program = tmp_path / "marked"
    shutil.copytree(tiny_program, program)
    manifest = json.loads((program / "manifest.json").read_text())
    manifest["prompt"].update(tile_start="<row_{row}_col_{col}>", image_join="")
    (program / "manifest.json").write_text(json.dumps(manifest))
    proc = _native(runner_bin, ["--program-dir", str(program), "--image", str(images[0]), "--prompt", "what?"])
    assert proc.returncode == 6, proc.stderr[-2000:]
    assert "tile_start, image_join" in proc.stderr and "host runner" in proc.stderr
