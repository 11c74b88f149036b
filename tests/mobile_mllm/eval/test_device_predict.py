"""``--backend device`` against two loopback ADB devices: batched runner calls, images pushed once, ``--serial all``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mobile_mllm.errors import RunnerError
from mobile_mllm.eval.device_predict import parse_batch_output
from mobile_mllm.eval.run import EvalBackend, EvalConfig, run_eval


def test_a_batch_missing_an_answer_names_the_request_the_runner_died_on() -> None:
    out = 'PyTorchObserver {"id": "a", "text": " Yes ", "num_tiles": 2}\nnoise\n'
    with pytest.raises(RunnerError, match="no stats line for 1 of 2 requests.*id b"):
        parse_batch_output(out, ["a", "b"])
    assert parse_batch_output(out + 'PyTorchObserver {"id": "b", "error": "bad", "error_type": "ImageError"}', ["a", "b"])[1].error_type == "ImageError"


@pytest.fixture()
def two_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # -> list[LoopbackDevice]
    from mobile_mllm.device.loopback import LoopbackConfig, LoopbackDevice

    monkeypatch.setenv("ANDROID_USER_HOME", str(tmp_path / "adbhome"))  # a fresh ADB key, accepted like a tapped "Allow"
    devices = [LoopbackDevice(LoopbackConfig(port=0, serial=f"phone{i}", accept_new_keys=True)).start() for i in range(2)]
    monkeypatch.setenv("MOBILE_MLLM_ADB_DEVICES", ",".join(d.address for d in devices))
    yield devices
    for d in devices:
        d.close()


def _images(device) -> dict[str, float]:  # noqa: ANN001
    folder = Path(device.root) / "mobile_mllm" / "images"
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} if folder.is_dir() else {}


@pytest.mark.slow
@pytest.mark.integration
def test_all_devices_answer_as_the_host_program_and_images_are_pushed_once(
    two_devices, tiny_program: Path, small_suites: Path, eager_results: Path, read_predictions, tmp_path: Path
) -> None:
    suite = str(small_suites.with_name("s_yn.toml"))
    cfg = EvalConfig(data=suite, backend=EvalBackend.DEVICE, serial="all", max_new_tokens=4, limit=4, device_batch=2)
    first = run_eval(str(tiny_program), cfg, tmp_path)
    assert first[0].num_answered == 4
    pushed = [_images(d) for d in two_devices]
    assert sum(len(p) for p in pushed) >= 1 and all(len(p) <= 4 for p in pushed)
    assert all(any(Path(d.root).glob("mobile_mllm/eval_requests_*.jsonl")) for d in two_devices)  # both got a batch

    again = run_eval(str(tiny_program), EvalConfig(data=suite, backend=EvalBackend.DEVICE, serial="all", max_new_tokens=4,
                                                   device_batch=2), tmp_path)
    assert again[0].num_resumed == 4 and again[0].num_answered == 6
    for before, device in zip(pushed, two_devices):
        after = _images(device)
        assert {k: after[k] for k in before} == before  # an image already on the device is not pushed again
    # the phone's answers are the program's, and the fp32 program's are the eager model's
    assert read_predictions(tmp_path)["s_yn"] == read_predictions(eager_results)["s_yn"]
    stats = first[0].samples[0]
    assert stats["num_tiles"] >= 1 and stats["time_to_first_token_ms"] > 0
    assert os.environ["MOBILE_MLLM_ADB_DEVICES"].count(",") == 1


class _FlakyPhone:
    """A device whose runner answers the first batch and then drops off the bus (a pulled cable)."""

    serial = "flaky"

    def __init__(self) -> None:
        self.batches = 0

    def push_program(self, program_dir: Path) -> str:
        return "/data/local/tmp/mobile_mllm/p"

    def push_file(self, local: Path, remote: str) -> None:
        if remote.endswith(".jsonl"):
            self.requests = local.read_text()

    def list_dir(self, remote: str) -> set[str]:
        return set()

    def run_runner(self, program_remote: str, args) -> tuple[int, str, str]:  # noqa: ANN001
        from mobile_mllm.errors import DeviceError

        self.batches += 1
        if self.batches > 1:
            raise DeviceError("connection to flaky lost during `cd ...` (no exit status); retry")
        ids = [json.loads(line)["id"] for line in self.requests.splitlines()]
        return 0, "".join(f'PyTorchObserver {{"id": "{i}", "text": "Yes"}}\n' for i in ids), ""


def test_a_lost_device_keeps_the_answers_of_finished_batches() -> None:
    from mobile_mllm.errors import DeviceError
    from mobile_mllm.eval.device_predict import DeviceSpec, predict_on_links
    from mobile_mllm.eval.predict import Request

    phone = _FlakyPhone()
    got = []
    with pytest.raises(DeviceError, match="connection to flaky lost"):
        for p in predict_on_links([Request(str(i), "Q?") for i in range(5)], [phone], DeviceSpec("prog", batch=2)):
            got.append(p.key)
    assert got == ["0", "1"]  # the first batch's answers reached the caller (and so the prediction file)


@pytest.mark.slow
@pytest.mark.integration
def test_ray_node_actor_owns_the_devices_of_its_host(two_devices, tiny_program: Path, small_suites: Path,
                                                     eager_results: Path, read_predictions, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'mobile-mllm[ray]'")
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)  # after the fixture set the device list
    try:
        cfg = EvalConfig(data=str(small_suites.with_name("s_vqa.toml")), backend=EvalBackend.DEVICE, serial="all",
                         max_new_tokens=4, device_batch=2, ray="local", limit=2)
        results = run_eval(str(tiny_program), cfg, tmp_path)
    finally:
        ray.shutdown()
    assert results[0].num_answered == 2
    answers = read_predictions(tmp_path)["s_vqa"]
    assert answers == {k: read_predictions(eager_results)["s_vqa"][k] for k in answers}
