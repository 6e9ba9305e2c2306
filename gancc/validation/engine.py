"""The Ray side of `gancc validate`: the same code on a laptop and a cluster.

`ray.init()` starts a local instance (`--workers N` CPUs, default all cores; no dashboard)
or, with `--address HOST:PORT`, joins an existing cluster. One actor per worker (one CPU
each) holds a `SampleEvaluator`: sessions and the reference are loaded once per worker, not
per sample. Samples go out as descriptors through a `ray.util.ActorPool`, at most two in
flight per actor, and come back as rows; each row is stored the moment it arrives. Errors a
user can cause (a missing checkpoint, an unreadable image) travel back as values and are
raised here as GanccError, so the message is gancc's, not a remote traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gancc.errors import GanccError
from gancc.validation.samples import Sample
from gancc.validation.store import ResultStore

IN_FLIGHT_PER_WORKER = 2
PICTURE_SAMPLES = 3          # the worst samples the page shows as pictures


@dataclass
class EngineOptions:
    spec: Path
    model: str
    onnx: Path
    workers: int | None = None
    address: str | None = None
    random_seed: int | None = None
    fp16: bool | None = None


class Worker:
    """The actor: a SampleEvaluator, or the user error that kept it from loading."""

    def __init__(self, spec: str, model: str, onnx: str, random_seed, fp16):
        from gancc.validation.evaluator import SampleEvaluator

        self.error = None
        try:
            self.evaluator = SampleEvaluator(spec, model, onnx, 1, random_seed, fp16)
        except GanccError as err:
            self.error = _error_value(err)

    def evaluate(self, sample: Sample) -> dict:
        if self.error:
            return {"error": self.error, "id": sample.id}
        try:
            return self.evaluator.evaluate(sample)
        except GanccError as err:
            return {"error": _error_value(err), "id": sample.id}

    def pictures(self, sample: Sample) -> dict:
        if self.error:
            return {"error": self.error}
        try:
            return self.evaluator.pictures(sample)
        except GanccError as err:
            return {"error": _error_value(err)}


def _error_value(err: GanccError) -> str:
    # exceptions with extra constructor arguments do not survive pickling: send the text
    return err.render().removeprefix("error: ")


def _raise_if_error(value: dict, sample_id: str | None = None) -> dict:
    if isinstance(value, dict) and "error" in value:
        where = f"sample {sample_id}: " if sample_id else ""
        raise GanccError(f"{where}{value['error']}")
    return value


def quiet_environment() -> None:
    """Keep a local Ray light: no usage reporting, no dashboard, fewer background threads."""
    for key, value in (("RAY_USAGE_STATS_ENABLED", "0"), ("RAY_DEDUP_LOGS", "0"),
                       ("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")):
        os.environ.setdefault(key, value)


def connect(workers: int | None, address: str | None) -> dict:
    """Start or join Ray; returns validation.json's `engine` (workers: the actors to start)."""
    import logging

    import ray

    quiet_environment()
    if address:
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise GanccError(f"cannot join the Ray cluster at {address}: {err}",
                             "start one with `ray start --head`, or leave --address out "
                             "for a local instance") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = min(workers or cpus, cpus)
    else:
        workers = workers or os.cpu_count() or 1
        # "local": always a new instance, never a cluster a `ray start` left on this machine
        ray.init(address="local", num_cpus=workers, include_dashboard=False,
                 logging_level=logging.WARNING, log_to_driver=False)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return {"name": "ray", "version": ray.__version__, "address": address or "local",
            "nodes": len(nodes), "workers": workers}


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


class Engine:
    """Evaluates samples on the connected Ray instance, reusing stored rows."""

    def __init__(self, options: EngineOptions, store: ResultStore, workers: int):
        self.options, self.store, self.workers = options, store, workers
        self._actors: list = []

    def _pool(self):
        import ray
        from ray.util import ActorPool

        if not self._actors:
            actor = ray.remote(num_cpus=1)(Worker)
            o = self.options
            self._actors = [actor.remote(str(o.spec), o.model, str(o.onnx), o.random_seed, o.fp16)
                            for _ in range(self.workers)]
        return ActorPool(self._actors)

    def run(self, samples: list[Sample], on_row: Callable[[dict, bool], None]) -> list[dict]:
        """Every sample's row, in the samples' order; `on_row(row, reused)` as each arrives."""
        rows: dict[str, dict] = {}
        todo = []
        for sample in samples:
            row = self.store.get(sample)
            if row is None:
                todo.append(sample)
            else:
                rows[sample.id] = row
                on_row(row, True)
        if todo:
            self._compute(todo, rows, on_row)
        return [rows[s.id] for s in samples]

    def _compute(self, todo: list[Sample], rows: dict, on_row) -> None:
        pool = self._pool()
        by_id = {s.id: s for s in todo}
        queue = iter(todo)
        limit = IN_FLIGHT_PER_WORKER * self.workers
        in_flight = 0
        for sample in queue:                     # fill the pipeline, then one in per one out
            pool.submit(lambda a, s: a.evaluate.remote(s), sample)
            in_flight += 1
            if in_flight >= limit:
                break
        while pool.has_next():
            row = pool.get_next_unordered()
            _raise_if_error(row, row.get("id"))
            self.store.put(by_id[row["id"]], row)
            rows[row["id"]] = row
            on_row(row, False)
            nxt = next(queue, None)
            if nxt is not None:
                pool.submit(lambda a, s: a.evaluate.remote(s), nxt)

    def pictures(self, samples: list[Sample]) -> dict[str, dict]:
        """sample id -> {output: (reference, final)} for the page, stored like the rows."""
        out, todo = {}, []
        for sample in samples:
            kept = self.store.get_pictures(sample)
            if kept is None:
                todo.append(sample)
            else:
                out[sample.id] = kept
        if todo:
            pool = self._pool()
            values = list(pool.map(lambda a, s: a.pictures.remote(s), todo))
            for sample, value in zip(todo, values):
                _raise_if_error(value, sample.id)
                self.store.put_pictures(sample, value)
                out[sample.id] = value
        return out
