"""The typed atc option set: ATC's rules, out_nodes resolved against the graph, the new spec
keys, soc_version from npu-smi, and atc's failure output explained."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from gancc.errors import SpecError
from gancc.spec import parse_text
from gancc.stages import atc

NPU_SMI_310P = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.rc3                                 Version: 23.0.rc3                                     |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 0       310P3                 | OK              | NA           39                0     / 0             |
| 0       0                     | 0000:3B:00.0    | 0            1782 / 21527                            |
+===============================+=================+======================================================+
"""

NPU_SMI_910B = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.6                   Version: 23.0.6                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 93.6        37                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           0    / 0          3378 / 65536         |
+===========================+===============+====================================================+
"""


def graph(opset: int = 11) -> onnx.ModelProto:
    """img -> Relu (node Relu_1) -> Tanh (node Tanh_156) -> out."""
    x = helper.make_tensor_value_info("img", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, 8, 8])
    nodes = [helper.make_node("Relu", ["img"], ["r"], name="Relu_1"),
             helper.make_node("Tanh", ["r"], ["out"], name="Tanh_156")]
    return helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                             opset_imports=[helper.make_opsetid("", opset)])


def model(atc_block: str, batch: str = "1, 4"):
    text = (f'model m {{\n    source onnx "m.onnx"\n    input img: float32[N, 3, 8, 8] batch {batch}\n'
            f'    output out\n    atc {{\n        soc_version Ascend310P3\n{atc_block}\n    }}\n}}\n')
    return parse_text(text, "t.gan").models[0]


def commands(atc_block: str, **kw) -> list[str]:
    return [c.shell() for c in atc.atc_commands(model(atc_block, **kw), graph(), "m.onnx", None, None)]


def test_exporter_node_name_in_out_nodes_is_resolved_to_the_output_name():
    m = model('        out_nodes "Tanh_156:0"')
    resolved, notes = atc.resolve_out_nodes(m, graph())
    assert resolved == ["out"]
    assert "Tanh_156:0 is graph output 'out'" in notes[0]
    assert '--out_nodes="out"' in commands('        out_nodes "Tanh_156:0"')[0]
    # an intermediate node stays node:index; a missing node is an error at the spec line
    assert atc.resolve_out_nodes(model('        out_nodes "Relu_1:0"'), graph())[0] == ["Relu_1:0"]
    with pytest.raises(SpecError) as info:
        commands('        out_nodes "Tanh_99:0"')
    assert "t.gan:7:9: error: out_nodes names node 'Tanh_99'" in info.value.render()
    assert "change with the exporter version" in info.value.render()


def test_per_output_output_type_writes_node_index_pairs():
    (cmd, _) = commands('        out_nodes out\n        output_type "out:FP16"')
    assert '--out_nodes="Tanh_156:0"' in cmd and '--output_type="Tanh_156:0:FP16"' in cmd
    with pytest.raises(SpecError, match="which out_nodes does not list"):
        commands('        output_type "out:FP16"')


def test_every_new_option_reaches_the_command_in_order(tmp_path: Path):
    m = model('        precision_mode allow_fp32_to_fp16\n        op_select_implmode high_precision\n'
              '        keep_dtype "OpType::InstanceNorm", "Relu_1"\n        fusion_off ConvBatchnormFusionPass\n'
              '        enable_small_channel true\n        input_fp16_nodes img\n        log info')
    cmds = atc.atc_commands(m, graph(), "m.onnx", None, None)
    assert cmds[0].shell() == (
        'atc --framework=5 --model=m.onnx --output=m_bs1 --input_format=NCHW '
        '--input_shape="img:1,3,8,8" --soc_version=Ascend310P3 --input_fp16_nodes="img" '
        '--enable_small_channel=1 --precision_mode=allow_fp32_to_fp16 '
        '--op_select_implmode=high_precision --keep_dtype=keep_dtype.cfg '
        '--fusion_switch_file=fusion_switch.cfg --log=info')
    atc.write_script(cmds, tmp_path / "atc.sh", m, "t.gan")
    assert (tmp_path / "keep_dtype.cfg").read_text() == "OpType::InstanceNorm\nRelu_1\n"
    assert (tmp_path / "fusion_switch.cfg").read_text() == "ConvBatchnormFusionPass:off\n"
    with pytest.raises(SpecError, match="keep_dtype names node 'Relu_2'"):
        commands('        keep_dtype "Relu_2"')


def test_dynamic_options_follow_atc_rules():
    (cmd,) = commands("        dynamic_batch_size 1, 2, 4")
    assert '--input_shape="img:-1,3,8,8" --dynamic_batch_size="1,2,4"' in cmd
    assert "--output=m_dynbs" in cmd
    with pytest.raises(SpecError, match="ATC takes 2 to 100"):
        commands("        dynamic_batch_size 4")
    with pytest.raises(SpecError, match="dynamic_dims needs input_format ND"):
        commands('        dynamic_dims "1", "2"')
    with pytest.raises(SpecError) as info:
        commands('        dynamic_batch_size 1, 2\n        dynamic_image_size "8,8", "16,16"')
    assert "mutually exclusive" in info.value.message
    (cmd, _) = commands('        dynamic_image_size "8,8", "16,16"')
    assert '--input_shape="img:1,3,-1,-1" --dynamic_image_size="8,8;16,16"' in cmd
    with pytest.raises(SpecError, match="input_fp16_nodes names 'x'"):
        commands("        input_fp16_nodes x")
    with pytest.raises(SpecError, match="invalid dynamic_image_size gear"):
        model('        dynamic_image_size "8"')


def test_option_set_rules_directly():
    base = dict(model="m.onnx", output="m", soc_version="Ascend310", input_shape=[("img", (1, 3, 8, 8))])
    atc.AtcOptionSet(**base).check(["img"])
    for kw, option in ((dict(weight="w.caffemodel"), "weight"),
                       (dict(input_format="NHWC"), "input_format"),
                       (dict(insert_op_conf="a.cfg", input_format="ND", dynamic_dims=((1,), (2,))), "input_format"),
                       (dict(input_fp16_nodes=("img",), aipp_inputs=("img",)), "input_fp16_nodes")):
        with pytest.raises(atc.AtcOptionError) as info:
            atc.AtcOptionSet(**{**base, **kw}).check(["img"])
        assert info.value.option == option
    with pytest.raises(atc.AtcOptionError, match="not a graph input"):
        atc.AtcOptionSet(**base).check(["x"])


@pytest.mark.parametrize("text, soc", [(NPU_SMI_310P, "Ascend310P3"), (NPU_SMI_910B, "Ascend910B3"),
                                       ("no table here\n", None)])
def test_npu_smi_table_is_parsed(text, soc):
    assert atc.parse_npu_smi(text) == soc


def test_soc_version_is_detected_with_npu_smi_on_path(tmp_path: Path, monkeypatch):
    fake = tmp_path / "npu-smi"
    fake.write_text(f"#!/usr/bin/env bash\n[ \"$1\" = info ] || exit 2\ncat <<'EOF'\n{NPU_SMI_310P}EOF\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert atc.detect_soc_version() == "Ascend310P3"
    text = ('model m {\n    source onnx "m.onnx"\n    input img: float32[N, 3, 8, 8] batch 1\n'
            '    output out\n}\n')
    m = parse_text(text, "t.gan").models[0]
    assert atc.soc_version_for(m, None) == ("Ascend310P3", "npu-smi info")
    assert atc.soc_version_for(m, "Ascend910B3") == ("Ascend910B3", "command line")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SpecError, match="no soc_version"):
        atc.soc_version_for(m, None)


def test_atc_failure_output_is_explained():
    log = ("ATC start working now, please wait for a moment.\n"
           "E16002: No ONNX parser is registered for optype GroupNormalization.\n"
           "ATC run failed, Please check the detail log, Try 'atc --help' for more information\n"
           "E10052: AIPP configuration is invalid. Reason: crop size.\n")
    codes, lines = atc.explain_failure(log)
    assert codes == ["E16002", "E10052"]
    assert "gancc lint" in lines[0] and "atc said: E16002: No ONNX parser" in lines[0]
    assert "crop/padding sizes" in lines[1]
