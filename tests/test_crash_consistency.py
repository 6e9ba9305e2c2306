"""Crash consistency of a build's outputs (docs/guarantees.md): builds killed with SIGKILL at
the steps of the commit (GANCC_KILL_POINT) and at random moments always leave the previous
artifacts loadable, the next run recovers or removes every leftover, two builds of one model
wait for each other, and a failed build's outputs can never land in another model's folder.

The builds are tiny `source onnx` models without validation: no torch import, ~1 s each.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from gancc.cli import main as run_cli

SPEC = """\
model {name} {{
    source onnx "tiny.onnx"
    input x: float32[1, 3, 8, 8] batch 1
    output y
    atc {{ soc_version Ascend310P3 }}
}}
"""


def tiny_onnx(path: Path, scale: float) -> None:
    w = numpy_helper.from_array(np.full((3, 3, 1, 1), scale, np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
                               helper.make_node("Relu", ["c"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)]), path)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    (tmp_path / "tiny.gan").write_text(SPEC.format(name="tiny"), encoding="utf-8")
    return tmp_path


def build_cmd(project: Path) -> list[str]:
    return [sys.executable, "-m", "gancc", "build", str(project / "tiny.gan"), "-o",
            str(project / "out"), "--no-atc", "--no-validate", "-q"]


def build_here(project: Path) -> None:
    """A build in this process (no interpreter start-up): the ones that are not killed."""
    assert run_cli(build_cmd(project)[3:]) == 0


def run_build(project: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(build_cmd(project), capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def artifacts(project: Path) -> str:
    """The committed build, proven loadable: its graph loads and its report parses. Returns
    the graph's sha256 from the report (which build it is)."""
    folder = project / "out" / "tiny"
    onnx.checker.check_model(onnx.load(str(folder / "tiny.onnx")))
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["status"] == "ok"
    return report["final"]["sha256"]


def leftovers(project: Path) -> list[Path]:
    out = project / "out"
    state = out / ".gancc"
    found = [p for p in out.iterdir() if ".tmp-" in p.name or ".old-" in p.name]
    found += list((state / "old").iterdir()) if (state / "old").is_dir() else []
    staging = state / "staging" / "tiny"
    return found + (list(staging.iterdir()) if staging.is_dir() else [])


# crash points of the commit: (GANCC_KILL_POINT, GANCC_SWAP); "renames" is the fallback for
# file systems without an atomic exchange, whose one window the next run repairs
KILL_POINTS = [("before-swap", ""), ("after-swap", ""), ("between-renames", "renames")]


def test_a_build_killed_at_each_commit_step_leaves_loadable_artifacts(project: Path):
    build_here(project)
    previous = artifacts(project)
    for k, (point, swap) in enumerate(KILL_POINTS):
        tiny_onnx(project / "tiny.onnx", float(k + 2))        # a new graph each time
        proc = run_build(project, GANCC_KILL_POINT=point, GANCC_SWAP=swap)
        assert proc.returncode == -signal.SIGKILL, (point, proc.stderr)
        if point == "between-renames":
            # the one window of the fallback: the previous build is aside, and nothing else
            # may run before the recovery puts it back
            assert not (project / "out" / "tiny").exists()
            assert (project / "out" / ".gancc" / "old" / "tiny" / "report.json").is_file()
            proc = run_build(project, GANCC_KILL_POINT="before-swap")   # recovers, then dies
            assert proc.returncode == -signal.SIGKILL
        now = artifacts(project)
        if point == "before-swap":
            assert now == previous                  # nothing committed: the previous build
        previous = now
    assert leftovers(project), "the kills left something for the next run to clean"
    build_here(project)
    artifacts(project)
    assert leftovers(project) == []


def test_builds_killed_at_random_moments_never_lose_the_previous_artifacts(project: Path):
    build_here(project)
    start = time.monotonic()
    assert run_build(project).returncode == 0
    whole = time.monotonic() - start       # kill within the second half: the build's own work
    rng = random.Random(13)
    for _ in range(3):
        proc = subprocess.Popen(build_cmd(project), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 1.0) * whole)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        artifacts(project)                  # the previous build, or the new one: never neither
    build_here(project)
    assert leftovers(project) == []


def test_a_commit_interrupted_by_an_older_gancc_is_restored(project: Path):
    """gancc before the .gancc/ folder moved the old build to `<model>.old-<pid>` and died."""
    build_here(project)
    before = artifacts(project)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    os.rename(project / "out" / "tiny", project / "out" / f"tiny.old-{dead}")
    (project / "out" / "tiny.tmp-abc123").mkdir()
    proc = run_build(project, GANCC_KILL_POINT="before-swap")
    assert proc.returncode == -signal.SIGKILL
    assert artifacts(project) == before
    assert not (project / "out" / f"tiny.old-{dead}").exists()
    assert not (project / "out" / "tiny.tmp-abc123").exists()


def test_two_builds_of_one_model_at_once_both_succeed(project: Path):
    procs = [subprocess.Popen(build_cmd(project), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    artifacts(project)
    assert leftovers(project) == []


def test_a_failed_build_never_touches_another_models_folder(tmp_path: Path, capsys):
    tiny_onnx(tmp_path / "tiny.onnx", 1.0)
    spec = tmp_path / "two.gan"
    spec.write_text(SPEC.format(name="g") + SPEC.format(name="g.failed"), encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli(["build", str(spec), "-o", str(out), "--no-atc", "--no-validate",
                    "--model", "g.failed"]) == 0
    kept = (out / "g.failed" / "g.failed.onnx").read_bytes()
    fake_atc = tmp_path / "atc"
    fake_atc.write_text("#!/bin/sh\necho 'ATC run failed'\nexit 1\n")
    fake_atc.chmod(0o755)
    assert run_cli(["build", str(spec), "-o", str(out), "--no-validate", "--model", "g",
                    "--atc", str(fake_atc)]) == 1
    err = capsys.readouterr().err
    failed = out / ".gancc" / "failed" / "g"
    assert f"partial outputs and report of the failed build: {failed}/" in err
    assert json.loads((failed / "report.json").read_text())["status"] == "failed"
    assert (out / "g.failed" / "g.failed.onnx").read_bytes() == kept


def test_leftover_cache_folders_are_counted_and_cleaned(project: Path, tmp_path: Path, capsys):
    from gancc.cache import Cache

    cache = Cache(Path(os.environ["GANCC_CACHE_DIR"]))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    orphan = cache.root / "tmp" / f"export-0123456789ab-{dead}-x1y2z3"
    orphan.mkdir(parents=True)
    (orphan / "model.onnx").write_bytes(b"\0" * 1000)
    live = cache.root / "tmp" / f"export-0123456789ab-{os.getpid()}-live"   # a running writer
    live.mkdir()
    assert run_cli(["cache", "info"]) == 0
    assert "leftovers     1 folders" in capsys.readouterr().out
    build_here(project)
    assert not orphan.exists() and live.exists()
    orphan.mkdir()
    assert run_cli(["cache", "clear"]) == 0
    assert "1 leftover temporary folder(s)" in capsys.readouterr().out
    assert not orphan.exists() and live.exists()
