"""`gancc build --run` with several SoCs: the .om that runs is the one for this machine's NPU
(what a stand-in `npu-smi info` reports), else the one `--run-soc` names, else the only one;
several SoCs and no way to tell is an error listing them, never a silent pick."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gancc.cli import main
from gancc.errors import GanccError
from gancc.stages.atc import AtcCommand
from gancc.stages.device import DeviceTool, choose_soc, pick_command
from tests.conftest import write_spec
from tests.test_atc_options import NPU_SMI_310P, NPU_SMI_910B
from tests.test_device_run import stand_in_tools, tool

SOCS = ("Ascend310P3", "Ascend910B3")


@pytest.fixture
def bindir(tmp_path: Path, monkeypatch) -> Path:
    return stand_in_tools(tmp_path / "bin", monkeypatch, runners=("ais_bench",))


def fake_npu_smi(folder: Path, table: str) -> None:
    tool(folder, "npu-smi", f"#!/usr/bin/env bash\n[ \"$1\" = info ] || exit 2\n"
                            f"cat <<'EOF'\n{table}EOF\n")


def two_soc_spec(folder: Path) -> Path:
    spec = write_spec(folder)
    spec.write_text(spec.read_text().replace("soc_version Ascend310P3", "soc_version " + ", ".join(SOCS)))
    return spec


def run_build(spec: Path, out: Path, *extra: str) -> int:
    return main(["build", str(spec), "-o", str(out), "--no-cache", "--run", *extra])


def ran(bindir: Path, out: Path) -> tuple[str, dict]:
    (call,) = (bindir / "ais_bench_calls.txt").read_text().splitlines()
    return call.split()[1], json.loads((out / "small" / "report.json").read_text())["device"]


def test_npu_smi_picks_the_om_of_this_machines_soc(tmp_path: Path, bindir: Path):
    fake_npu_smi(bindir, NPU_SMI_310P)             # the first SoC of the list, not the last
    assert run_build(two_soc_spec(tmp_path), tmp_path / "out") == 0
    om, device = ran(bindir, tmp_path / "out")
    assert om == "Small_bs1_Ascend310P3.om"
    assert device["om"] == om and device["soc_version"] == "Ascend310P3"
    assert device["npu_smi_soc"] == "Ascend310P3" and device["soc_chosen_by"] == "npu-smi info"


def test_run_soc_picks_the_om_when_npu_smi_is_absent(tmp_path: Path, bindir: Path, capsys):
    assert run_build(two_soc_spec(tmp_path), tmp_path / "out", "--run-soc", "Ascend910B3") == 0
    om, device = ran(bindir, tmp_path / "out")
    assert om == "Small_bs1_Ascend910B3.om" and device["soc_version"] == "Ascend910B3"
    assert device["soc_chosen_by"] == "--run-soc"
    assert "ais_bench Small_bs1_Ascend910B3.om" in capsys.readouterr().err   # the progress line


def test_one_soc_runs_its_om(tmp_path: Path, bindir: Path):
    assert run_build(write_spec(tmp_path), tmp_path / "out") == 0
    om, device = ran(bindir, tmp_path / "out")
    assert om == "Small_bs1.om" and device["soc_version"] == "Ascend310P3"
    assert device["soc_chosen_by"] == "the only soc_version"


def test_several_socs_and_no_way_to_tell_is_an_error(tmp_path: Path, bindir: Path, capsys):
    assert run_build(two_soc_spec(tmp_path), tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert ("model 'small': --run: the .om files are built for Ascend310P3, Ascend910B3, and "
            "npu-smi reports no NPU here") in err
    assert "pass --run-soc with one of: Ascend310P3, Ascend910B3" in err
    assert not (bindir / "atc_calls.txt").exists()          # refused before anything ran
    assert not (tmp_path / "out" / "small").exists()


def test_run_soc_outside_the_list_suggests_the_closest(tmp_path: Path, bindir: Path, capsys):
    assert run_build(two_soc_spec(tmp_path), tmp_path / "out", "--run-soc", "Ascend910B") == 1
    err = capsys.readouterr().err
    assert "--run-soc Ascend910B: the .om files are built for Ascend310P3, Ascend910B3" in err
    assert "did you mean 'Ascend910B3'?" in err
    assert not (bindir / "atc_calls.txt").exists()


def test_run_soc_needs_run(tmp_path: Path, bindir: Path, capsys):
    assert main(["build", str(two_soc_spec(tmp_path)), "--run-soc", "Ascend310P3"]) == 2
    assert "--run-soc chooses the .om that --run runs: add --run" in capsys.readouterr().err


@pytest.mark.parametrize("table, extra, message", [
    (NPU_SMI_910B, ("--run-soc", "Ascend310P3"),
     "--run-soc Ascend310P3, but npu-smi reports an Ascend910B3 NPU on this machine"),
    (NPU_SMI_910B, (), "npu-smi reports an Ascend910B3 NPU on this machine, but the .om files "
                       "are built for Ascend310P3"),
])
def test_an_om_this_npu_cannot_run_is_refused(tmp_path: Path, bindir: Path, capsys, table, extra,
                                              message):
    fake_npu_smi(bindir, table)
    assert run_build(write_spec(tmp_path), tmp_path / "out", *extra) == 1
    assert message in capsys.readouterr().err


def commands() -> tuple[list[AtcCommand], list[dict]]:
    cmds = [AtcCommand(b, ("atc",), f"M_bs{b}_{soc}", soc, f"_{soc}") for soc in SOCS for b in (1, 2)]
    return cmds, [{"om": [f"{c.om_base}.om"]} for c in cmds]


def test_pick_command_takes_the_chosen_socs_batch_1(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin{os.pathsep}/bin")  # no npu-smi
    ais = DeviceTool("ais_bench", ("ais_bench",), "ais_bench")
    for soc in SOCS:
        command, om, how = pick_command(*commands(), ais, soc)
        assert (command.soc_version, command.batch, om) == (soc, 1, f"M_bs1_{soc}.om")
        assert how == "--run-soc"
    with pytest.raises(GanccError) as info:
        pick_command(*commands(), ais)
    assert info.value.hint == "pass --run-soc with one of: Ascend310P3, Ascend910B3"
    fake_npu_smi(tmp_path, NPU_SMI_310P)
    assert pick_command(*commands(), ais)[1:] == ("M_bs1_Ascend310P3.om", "npu-smi info")


def test_choose_soc_order():
    assert choose_soc(SOCS, None, "Ascend910B3") == ("Ascend910B3", "npu-smi info")
    assert choose_soc(SOCS, "Ascend310P3", None) == ("Ascend310P3", "--run-soc")
    assert choose_soc(("Ascend310P3",), None, None) == ("Ascend310P3", "the only soc_version")
    assert choose_soc((), None, None) == (None, "the only soc_version")
