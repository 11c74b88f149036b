"""Answer benchmark questions on a Ray cluster: one actor per worker, results streamed back to the driver.

Scale-out runs on an existing engine, not a home-made one. Each Ray actor opens the model once
(a :class:`~mobile_mllm.eval.predict.HostPredictor` over the eager model or the ``.pte``, one
thread) or owns the phones attached to its node (``predict_ray_devices``); the driver keeps every
actor busy with one question at a time and yields answers as they complete, so ``run.py`` appends
them to the one prediction file as on a single machine: the same resume, the same file, and
questions go to whichever actor is free (a slow node takes fewer).

A real cluster (every node: the same Python, ``pip install 'mobile-mllm[ray]'``, the model or
program directory at the same path, or on shared storage)::

    ray start --head --port 6379            # on the head node
    ray start --address HEAD_IP:6379        # on each other node
    mobile-mllm eval PROGRAM_DIR --data eval/quick.toml --ray auto --workers 16 -o results/
    # or from a laptop: --ray ray://HEAD_IP:10001

``--ray`` without an address starts a throwaway local cluster of ``--workers`` CPUs.
Deliberately not here: what is asked and where answers go (``run.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from mobile_mllm.errors import MissingDependencyError
from mobile_mllm.eval.predict import HostPredictor, HostSpec, Prediction, Request

logger = logging.getLogger(__name__)

__all__ = ["RayPool", "predict_ray", "predict_ray_devices"]

LOCAL = "local"
"""``--ray`` without an address: start a local cluster for this run."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise MissingDependencyError(
            "--ray needs the Ray package: pip install 'mobile-mllm[ray]' (or pip install 'ray[default]>=2.40')"
        ) from e
    return ray


def _connect(ray: Any, address: str, num_cpus: int) -> bool:
    """Join (or start) the cluster; True when this call started Ray and so must shut it down."""
    if ray.is_initialized():
        return False
    if address == LOCAL:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=address, log_to_driver=False)
    logger.info("ray: %s CPUs in the cluster", ray.cluster_resources().get("CPU"))
    return True


class _HostActor:
    """A Ray actor holding one host predictor (the model loaded once)."""

    def __init__(self, spec: HostSpec) -> None:
        self.predictor = HostPredictor(spec)

    def predict(self, request: Request) -> Prediction:
        return self.predictor(request)


def _stream(ray: Any, actors: Sequence[Any], method: str, items: Sequence[Any]) -> Iterator[Any]:
    """Keep each actor busy with one item; yield results in completion order."""
    queue = list(reversed(items))
    pending: dict[Any, Any] = {}
    for actor in actors:
        if queue:
            pending[getattr(actor, method).remote(queue.pop())] = actor
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        actor = pending.pop(done[0])
        if queue:
            pending[getattr(actor, method).remote(queue.pop())] = actor
        yield ray.get(done[0])


class RayPool:
    """``workers`` Ray actors (one CPU each) kept alive across benchmarks; call with requests, then :meth:`close`.

    Args:
        spec (HostSpec): the model and overrides (each actor opens it once).
        address (str): ``local`` (start a cluster here), ``auto`` or ``ray://host:port``. Default ``local``.
        workers (int): actors. Default 1.

    Raises:
        MissingDependencyError: Ray is not installed.
    """

    def __init__(self, spec: HostSpec, *, address: str = LOCAL, workers: int = 1) -> None:
        self.ray = _ray()
        self.spec, self.address, self.workers = spec, address, workers
        self._actors: list[Any] = []
        self._started = False

    def __call__(self, requests: Sequence[Request]) -> Iterator[Prediction]:
        items = list(requests)
        if not items:
            return
        if not self._actors:
            self._started = _connect(self.ray, self.address, self.workers)
            actor_cls = self.ray.remote(num_cpus=1)(_HostActor)
            self._actors = [actor_cls.remote(self.spec) for _ in range(self.workers)]
        yield from _stream(self.ray, self._actors, "predict", items)

    def close(self) -> None:
        """End the actors, and the cluster if this pool started it."""
        for actor in self._actors:
            self.ray.kill(actor)
        self._actors = []
        if self._started:
            self.ray.shutdown()
            self._started = False


def predict_ray(requests: Sequence[Request], spec: HostSpec, *, address: str = LOCAL, workers: int = 1) -> Iterator[Prediction]:
    """Answer ``requests`` with a :class:`RayPool` of ``workers`` actors, yielding answers as they complete."""
    pool = RayPool(spec, address=address, workers=workers)
    try:
        yield from pool(requests)
    finally:
        pool.close()


class _DeviceActor:
    """A Ray actor owning the phones attached to its node (``adb devices`` there)."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec

    def predict_batch(self, requests: list[Request]) -> list[Prediction]:
        from mobile_mllm.eval.device_predict import predict_devices

        return list(predict_devices(requests, self.spec))


def predict_ray_devices(requests: Sequence[Request], spec: Any, *, address: str = LOCAL, batch: int = 16) -> Iterator[Prediction]:
    """Answer ``requests`` on the phones of every Ray node: one actor per node, batches of ``batch`` questions.

    Each node's actor runs :func:`~mobile_mllm.eval.device_predict.predict_devices` over the
    devices its own ADB server sees (``spec.serial`` as given, e.g. ``all``); batches go to
    whichever node is free, and each batch's answers are yielded when it returns.
    """
    items = list(requests)
    if not items:
        return
    ray = _ray()
    started = _connect(ray, address, 1)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    actor_cls = ray.remote(num_cpus=0)(_DeviceActor)
    actors = [actor_cls.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote(spec) for n in nodes]
    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]
    try:
        for answers in _stream(ray, actors, "predict_batch", chunks):
            yield from answers
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
