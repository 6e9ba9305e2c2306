"""`gancc validate` on Ray: a local instance (what a laptop gets), and a 2-node cluster started
here on loopback (`ray start --head` + `ray start --address`, one CPU each), joined with
`--address`. One cluster serves the whole test session; it is stopped at the end by
terminating the process groups this file started (never `ray stop`, which would stop every
Ray on the machine)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gancc.cli import main
from tests.test_recipe_data import CYCLE_SPEC

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT = 180          # seconds; a loaded 2-core machine starts a node in ~30 s
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0"}


def run_cli(*args) -> int:
    return main([str(a) for a in args])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_node(args: list[str], temp: Path) -> subprocess.Popen:
    return subprocess.Popen([RAY, "start", "--block", "--node-ip-address", "127.0.0.1",
                             "--num-cpus", "1", "--disable-usage-stats", *args],
                            env={**os.environ, **ENV}, start_new_session=True,
                            stdout=open(temp / f"node-{len(args)}.log", "w"),
                            stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    """The node's process group (ray start, its GCS, raylet and workers), by its id."""
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            time.sleep(1)             # the group's other members exit after its leader
        except subprocess.TimeoutExpired:
            continue


def _wait_for_nodes(address: str, count: int) -> None:
    code = ("import ray, time, sys\n"
            f"ray.init(address='{address}', log_to_driver=False)\n"
            f"deadline = time.time() + {START_TIMEOUT}\n"
            f"while len([n for n in ray.nodes() if n['Alive']]) < {count}:\n"
            "    if time.time() > deadline: sys.exit(1)\n"
            "    time.sleep(1)\n")
    subprocess.run([sys.executable, "-c", code], env={**os.environ, **ENV}, check=True,
                   timeout=START_TIMEOUT, capture_output=True)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """HOST:PORT of a 2-node Ray cluster on 127.0.0.1, one CPU per node."""
    temp = tmp_path_factory.mktemp("ray-nodes")
    address = f"127.0.0.1:{_free_port()}"
    head = _start_node(["--head", "--port", address.split(":")[1], "--include-dashboard",
                        "false"], temp)
    nodes = [head]
    try:
        _wait_for_nodes(address, 1)
        nodes.append(_start_node(["--address", address], temp))
        _wait_for_nodes(address, 2)
        yield address
    finally:
        for proc in reversed(nodes):
            _stop(proc)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("validate-ray")
    spec = folder / "small.gan"
    spec.write_text(CYCLE_SPEC)
    assert run_cli("build", spec, "--no-atc", "--no-validate", "-o", folder / "build") == 0
    return folder


def _validate(built: Path, out: Path, *extra) -> dict:
    code = run_cli("validate", built / "small.gan", "--build-dir", built / "build",
                   "--out", out, "--no-fp16", *extra)
    assert code == 0
    return json.loads((out / "validation.json").read_text())


def test_validate_starts_a_local_ray_instance(built, tmp_path, monkeypatch):
    import ray

    from gancc.validation.evaluator import SampleEvaluator
    from gancc.validation.samples import Sample
    from gancc.validation.summary import flat_figures

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    result = _validate(built, tmp_path / "v", "--count", "2", "--workers", "1")
    assert not ray.is_initialized()                  # the instance went with the run
    assert result["engine"]["name"] == "ray" and result["engine"]["version"] == ray.__version__
    assert result["engine"]["address"] == "local" and result["engine"]["workers"] == 1
    assert [r["id"] for r in result["samples"]] == ["seed0", "seed1"]
    assert result["reused"] == 0 and result["summary"]["samples"] == 2
    # a row from the Ray worker is the row a worker in this process computes
    here = SampleEvaluator(str(built / "small.gan"), "small",
                           str(built / "build" / "small" / "small.onnx"), fp16=False)
    mine = here.evaluate(Sample("seed1", "seeded", index=1, fingerprint="seed=1"))
    theirs = flat_figures(result["samples"][1])
    assert theirs.keys() == flat_figures(mine).keys()
    assert theirs == pytest.approx(flat_figures(mine), rel=1e-9)   # summation order aside
    page = (tmp_path / "v" / "validation.html").read_text()
    assert "<svg class='hist'" in page and page.count("data:image/png;base64,") >= 3


def test_validate_on_a_two_node_cluster_resumes_a_killed_run(built, tmp_path, ray_cluster):
    from gancc.spec import parse_file
    from gancc.validation.engine import EngineOptions
    from gancc.validation.run import validate_set
    from gancc.validation.samples import list_samples

    model = parse_file(built / "small.gan").model("small")
    options = EngineOptions(built / "small.gan", "small",
                            built / "build" / "small" / "small.onnx", None, ray_cluster, None,
                            False)

    def killed(row, reused):
        raise KeyboardInterrupt       # Ctrl-C as the first computed row arrives

    out = tmp_path / "v"
    with pytest.raises(KeyboardInterrupt):
        validate_set(model, options, list_samples(model, None, 3), out, on_row=killed)
    assert not (out / "validation.json").exists()          # no half-written result
    # restarted, with one more sample: only what is not stored is computed, on both nodes
    first = _validate(built, out, "--count", "4", "--address", ray_cluster)
    assert first["engine"]["address"] == ray_cluster
    assert first["engine"]["nodes"] == 2 and first["engine"]["workers"] == 2
    assert first["reused"] == 1 and first["computed"] == 3
    assert [r["id"] for r in first["samples"]] == ["seed0", "seed1", "seed2", "seed3"]
    assert first["summary"]["figures"]["out.final.pixel_cosine"]["count"] == 4
    # a rerun recomputes nothing
    again = _validate(built, out, "--count", "4", "--address", ray_cluster)
    assert again["reused"] == 4 and again["computed"] == 0
    assert again["samples"] == first["samples"]
