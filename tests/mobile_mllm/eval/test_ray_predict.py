"""``--ray``: questions sharded over a local two-worker Ray cluster give the same file as one process."""

from __future__ import annotations

from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'mobile-mllm[ray]'")

from mobile_mllm.eval.run import EvalConfig, run_eval  # noqa: E402


@pytest.fixture(scope="module")
def local_cluster():  # -> None
    """A two-CPU Ray cluster on this machine, for this module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_two_ray_workers_answer_as_the_single_process_run_and_resume(
    local_cluster, tiny_dir: Path, small_suites: Path, eager_results: Path, read_predictions, tmp_path: Path
) -> None:
    cfg = EvalConfig(data=str(small_suites), max_new_tokens=4, workers=2, ray="local", limit=3)
    first = run_eval(str(tiny_dir), cfg, tmp_path)  # the first 3 questions per benchmark (of 6, 3 circular, 4)
    answered = [r.num_answered for r in first]
    assert answered[0] == answered[2] == 3
    again = run_eval(str(tiny_dir), EvalConfig(data=str(small_suites), max_new_tokens=4, workers=2, ray="local"), tmp_path)
    assert [r.num_resumed for r in again] == answered  # resumed, not asked again
    assert [r.num_answered for r in again] == [6, answered[1], 4]
    assert read_predictions(tmp_path) == read_predictions(eager_results)
    assert ray.is_initialized()  # the run used the caller's cluster and left it running
