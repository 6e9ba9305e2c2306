"""The build cache: what hits, what misses, what a broken cache does, and that a warm build
never imports torch. Behaviour only; speed is measured in bench/, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gancc.cache import Cache, default_dir, make_key
from gancc.cli import main
from tests.conftest import REPO, SMALL_SPEC, write_spec


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("GANCC_CACHE_DIR", str(folder))
    return folder


def build(spec: Path, out: Path, *extra: str) -> dict:
    assert main(["build", str(spec), "-o", str(out), "--no-atc", *extra]) == 0
    return json.loads((out / "small" / "report.json").read_text())


def entries(cache_dir: Path, kind: str) -> list[Path]:
    return sorted(p.parent for p in (cache_dir / "v1" / kind).glob("*/*/meta.json"))


def spec_text(**changes: str) -> str:
    text = SMALL_SPEC % {"fallback": " else random(seed=0)", "threshold": 0.5}
    for old, new in changes.items():
        old = old.replace("_", " ")
        assert old in text
        text = text.replace(old, new)
    return text


def test_second_build_is_served_from_the_cache_and_identical(tmp_path, cache_dir, capsys):
    spec = write_spec(tmp_path)
    first = build(spec, tmp_path / "a")
    assert first["cache"]["export"] == "stored" and first["cache"]["reference"] == "stored"
    assert first["cache"]["stages"] == {"source": False, "export": False, "simplify": False,
                                        "reference": False}
    assert len(entries(cache_dir, "export")) == 1 and len(entries(cache_dir, "reference")) == 1
    capsys.readouterr()

    second = build(spec, tmp_path / "b")
    err = capsys.readouterr().err
    assert second["cache"]["export"] == "hit" and second["cache"]["reference"] == "hit"
    assert all(second["cache"]["stages"].values())
    assert "(cached)" in err and "RANDOM WEIGHTS" in err      # the warning still shows
    final_a = (tmp_path / "a" / "small" / "small.onnx").read_bytes()
    final_b = (tmp_path / "b" / "small" / "small.onnx").read_bytes()
    assert final_a == final_b
    # the report is the same build's report: passes, weights, export and validation figures
    for key in ("weights", "random_weights", "export", "simplify", "final"):
        assert second[key] == first[key], key
    drop_time = [{k: v for k, v in p.items() if k != "seconds"} for p in first["passes"]]
    assert [{k: v for k, v in p.items() if k != "seconds"} for p in second["passes"]] == drop_time
    assert second["validation"]["final_vs_reference"] == first["validation"]["final_vs_reference"]
    assert second["validation"]["exported_vs_reference"] == \
        first["validation"]["exported_vs_reference"]


def test_editing_only_the_rewrite_block_reuses_export_and_reference(tmp_path, cache_dir):
    spec = write_spec(tmp_path)
    build(spec, tmp_path / "a")
    spec.write_text(spec_text(**{"        fuse-pad-into-conv\n": ""}))
    report = build(spec, tmp_path / "b")
    assert report["cache"]["export"] == "hit" and report["cache"]["reference"] == "hit"
    assert report["pipeline"] == "reflect-pad-to-constant"
    assert report["final"]["op_histogram"]["Pad"] == 6        # now really built without fusion
    assert len(entries(cache_dir, "export")) == 1


def test_a_rebuild_of_the_same_final_graph_recomputes_no_figure(tmp_path, cache_dir, capsys):
    spec = write_spec(tmp_path)
    first = build(spec, tmp_path / "a")
    assert first["cache"]["figures"] == "stored" and len(entries(cache_dir, "figures")) == 1
    capsys.readouterr()
    second = build(spec, tmp_path / "b")
    err = capsys.readouterr().err
    assert second["cache"]["figures"] == "hit"
    skipped = {s["stage"]: s.get("skipped") for s in second["stages"]}
    assert skipped["validate"] == skipped["fp16"] == "figures cached for this final graph"
    assert "validate   skipped: figures cached" in err and "fp16       skipped: figures" in err
    assert "fp16 predicted pixel_cosine" in err          # the console still shows the figures
    assert second["validation"] == first["validation"]   # fp16 section and requirements too
    assert second["validation"]["fp16"]["ran"] is True

    def pictures(out: Path) -> str:
        html = (out / "small" / "report.html").read_text()
        return html[html.index('id="pictures"'):html.index("</section>", html.index('id="pictures"'))]

    assert pictures(tmp_path / "b") == pictures(tmp_path / "a")
    assert 'src="data:image/png' in pictures(tmp_path / "b")


def test_the_figures_key_covers_the_graph_the_inputs_and_what_is_computed(tmp_path, cache_dir):
    spec = write_spec(tmp_path)
    build(spec, tmp_path / "a")
    spec.write_text(spec_text(**{"        fuse-pad-into-conv\n": ""}))       # another graph
    assert build(spec, tmp_path / "b")["cache"]["figures"] == "stored"
    assert build(spec, tmp_path / "c", "--samples", "3")["cache"]["figures"] == "stored"
    no_fp16 = build(spec, tmp_path / "d", "--no-fp16-foresight")
    assert no_fp16["cache"]["figures"] == "stored" and "fp16" not in no_fp16["validation"]
    again = build(spec, tmp_path / "e", "--no-fp16-foresight")
    assert again["cache"]["figures"] == "hit"
    assert {s["stage"]: s.get("skipped") for s in again["stages"]}["fp16"] == \
        "--no-fp16-foresight"
    assert len(entries(cache_dir, "figures")) == 4


def test_cached_figures_still_answer_to_the_spec_requirements(tmp_path, cache_dir, capsys):
    spec = write_spec(tmp_path)
    build(spec, tmp_path / "a")
    write_spec(tmp_path, threshold=0.9999)        # the same graph, a stricter requirement
    assert main(["build", str(spec), "-o", str(tmp_path / "b"), "--no-atc"]) == 1
    assert "failed validation" in capsys.readouterr().err
    (failed,) = (tmp_path / "b").rglob("report.json")     # the failed build's report
    report = json.loads(failed.read_text())
    assert report["cache"]["figures"] == "hit"
    assert report["validation"]["requirements"][0]["passed"] is False


def test_a_corrupt_figures_entry_is_recomputed(tmp_path, cache_dir, capsys):
    spec = write_spec(tmp_path)
    first = build(spec, tmp_path / "a")
    (entries(cache_dir, "figures")[0] / "pictures.npz").write_bytes(b"not a zip")
    capsys.readouterr()
    report = build(spec, tmp_path / "b")
    assert "corrupt cache entry" in capsys.readouterr().err
    assert report["cache"]["figures"] == "stored"
    assert report["validation"] == first["validation"]


@pytest.mark.parametrize("change", [
    {"ngf=8": "ngf=4"},                                      # architecture arguments
    {"random(seed=0)": "random(seed=1)"},                    # (random) weights
    {"float32[N, 3, 64, 64]": "float32[N, 3, 32, 32]"},      # input shapes
])
def test_changing_what_the_export_depends_on_misses(tmp_path, cache_dir, change):
    spec = write_spec(tmp_path)
    build(spec, tmp_path / "a", "--no-validate")
    spec.write_text(spec_text(**{k.replace(" ", "_"): v for k, v in change.items()}))
    report = build(spec, tmp_path / "b", "--no-validate")
    assert report["cache"]["export"] == "stored"
    assert len(entries(cache_dir, "export")) == 2


def test_checkpoint_contents_are_part_of_the_key(tmp_path, cache_dir):
    import torch

    from gancc import archs

    module = archs.get("resnet_generator").build(input_nc=3, output_nc=3, ngf=8, n_blocks=2)
    (tmp_path / "weights").mkdir()
    ckpt = tmp_path / "weights" / "small.pth"
    torch.save(module.state_dict(), ckpt)
    spec = write_spec(tmp_path)
    assert build(spec, tmp_path / "a", "--no-validate")["cache"]["export"] == "stored"
    assert build(spec, tmp_path / "b", "--no-validate")["cache"]["export"] == "hit"
    state = module.state_dict()
    first_conv = next(k for k in state if k.endswith("weight"))
    state[first_conv] = state[first_conv] + 0.01
    torch.save(state, ckpt)                                   # same path, new contents
    report = build(spec, tmp_path / "c", "--no-validate")
    assert report["cache"]["export"] == "stored"
    assert report["weights"]["kind"] == "checkpoint"


def test_validation_inputs_are_part_of_the_reference_key(tmp_path, cache_dir):
    spec = write_spec(tmp_path)
    build(spec, tmp_path / "a")
    report = build(spec, tmp_path / "b", "--samples", "3")
    # the export is still good; the new reference needs the generator, so it runs in full
    assert report["cache"]["reference"] == "stored"
    assert report["validation"]["samples"] == 3
    assert len(entries(cache_dir, "reference")) == 2 and len(entries(cache_dir, "export")) == 1
    again = build(spec, tmp_path / "c", "--samples", "3")
    assert again["cache"]["export"] == "hit" and again["cache"]["reference"] == "hit"


def test_no_cache_neither_reads_nor_writes(tmp_path, cache_dir):
    spec = write_spec(tmp_path)
    build(spec, tmp_path / "a", "--no-validate")
    before = {p: p.stat().st_mtime_ns for p in cache_dir.rglob("*")}
    report = build(spec, tmp_path / "b", "--no-validate", "--no-cache")
    assert report["cache"]["enabled"] is False and report["cache"]["export"] == "off"
    assert not any(report["cache"]["stages"].values())          # built in full
    assert {p: p.stat().st_mtime_ns for p in cache_dir.rglob("*")} == before


def test_cache_info_and_clear(tmp_path, cache_dir, capsys):
    spec = write_spec(tmp_path)
    build(spec, tmp_path / "a")
    capsys.readouterr()
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert str(cache_dir) in out and "export" in out and "1 entries" in out
    assert main(["cache", "clear"]) == 0
    assert "removed 3 cache entries" in capsys.readouterr().out   # export, reference, figures
    assert entries(cache_dir, "export") == [] and entries(cache_dir, "reference") == []
    assert build(spec, tmp_path / "b", "--no-validate")["cache"]["export"] == "stored"


@pytest.mark.parametrize("damage", ["truncate-model", "garble-meta"])
def test_a_corrupt_entry_is_ignored_with_a_warning(tmp_path, cache_dir, capsys, damage):
    spec = write_spec(tmp_path)
    first = build(spec, tmp_path / "a", "--no-validate")
    entry = entries(cache_dir, "export")[0]
    model = entry / "model.onnx"
    if damage == "truncate-model":
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    else:
        (entry / "meta.json").write_text("{not json")
    capsys.readouterr()
    report = build(spec, tmp_path / "b", "--no-validate")
    err = capsys.readouterr().err
    assert "corrupt cache entry" in err and "Traceback" not in err
    assert report["cache"]["export"] == "stored"               # rebuilt and stored again
    assert report["final"]["sha256"] == first["final"]["sha256"]
    assert build(spec, tmp_path / "c", "--no-validate")["cache"]["export"] == "hit"


def test_an_unwritable_cache_is_a_warning_not_a_failure(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("GANCC_CACHE_DIR", str(blocker))
    report = build(write_spec(tmp_path), tmp_path / "a", "--no-validate")
    assert report["status"] == "ok" and report["cache"]["export"] == "miss"
    assert "could not write cache entry" in capsys.readouterr().err


def test_cache_location_and_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("GANCC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_dir() == tmp_path / "xdg" / "gancc"
    monkeypatch.setenv("GANCC_CACHE_DIR", str(tmp_path / "mine"))
    assert default_dir() == tmp_path / "mine"
    # canonical: key order does not matter, values do
    assert make_key({"a": 1, "b": [1, 2]}) == make_key({"b": [1, 2], "a": 1})
    assert make_key({"a": 1}) != make_key({"a": 2})
    cache = Cache(tmp_path / "c")
    key = make_key({"x": 1})
    assert cache.put("export", key, {"f.bin": lambda p: p.write_bytes(b"abc")}, {"note": 1})
    assert cache.get("export", key).meta["note"] == 1
    assert not list((tmp_path / "c" / "tmp").iterdir())       # nothing left half-written
    assert Cache(tmp_path / "c", enabled=False).get("export", key) is None


WARM_BUILD = """
import json, sys
from gancc.cli import main
rc = main(["build", sys.argv[1], "-o", sys.argv[2], "--no-atc", "-q"])
report = json.load(open(sys.argv[2] + "/small/report.json"))
print(json.dumps({"rc": rc, "torch": "torch" in sys.modules, "cache": report["cache"]}))
"""


def test_a_warm_build_does_not_import_torch(tmp_path, cache_dir):
    spec = write_spec(tmp_path)
    build(spec, tmp_path / "a")                 # cold, in this process, with validation
    proc = subprocess.run([sys.executable, "-c", WARM_BUILD, str(spec), str(tmp_path / "b")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["rc"] == 0 and result["cache"]["export"] == "hit"
    assert result["torch"] is False


def test_aipp_validation_always_runs_the_generator(tmp_path, cache_dir):
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text().replace(
        "    atc {",
        "    aipp img {\n        input_format RGB888_U8\n        min_chn_0 127.5\n"
        "        var_reci_chn_0 0.007843137254901\n    }\n    atc {"))
    build(spec, tmp_path / "a")
    report = build(spec, tmp_path / "b")
    # the AIPP check feeds emulated uint8 images to the reference: no cached shortcut
    assert report["cache"]["reference"].startswith("not cached")
    assert not any(report["cache"]["stages"].values())
    assert report["validation"]["aipp"]["final_vs_reference"]["out"]["pixel_cosine"] < 0.9999


def test_models_past_the_protobuf_limit_are_stored_with_external_data(tmp_path, monkeypatch):
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    import gancc.cache as cache_module

    weight = numpy_helper.from_array(np.arange(4096, dtype=np.float32).reshape(64, 64), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 64])], initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    from gancc import onnx_io

    monkeypatch.setattr(onnx_io, "EXTERNAL_DATA_THRESHOLD", 1000)   # as if it were past 2 GB
    cache = Cache(tmp_path / "c")
    key = make_key({"m": 1})
    cache.put("export", key, {"model.onnx": cache_module.onnx_writer(model)}, {})
    entry = cache.get("export", key)
    assert sorted(entry.meta["files"]) == ["model.onnx", "model.onnx.data"]
    assert model.graph.initializer[0].HasField("raw_data")        # the caller's model untouched
    loaded = cache_module.load_onnx(entry, "model.onnx")
    np.testing.assert_array_equal(numpy_helper.to_array(loaded.graph.initializer[0]),
                                  numpy_helper.to_array(weight))
