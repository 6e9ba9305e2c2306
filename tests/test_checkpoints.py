"""Checkpoint loading: wrapped dicts, safetensors, and every kind of bad file a user (or an
attacker) can put at the weights path. Each case is a clear CheckpointError naming the path,
never a traceback, a raw ANSI code, or advice to turn off weights_only."""

from __future__ import annotations

import os
import warnings
import zipfile

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from gancc.errors import CheckpointError
from gancc.stages.weights import load_checkpoint


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1))


def _error(path, key=None) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(_net(), path, key)
    err = info.value
    assert err.path == str(path)
    rendered = err.render()
    assert "\x1b[" not in rendered and "weights_only=False" not in rendered
    return err


def _same(module: nn.Module, state: dict) -> bool:
    return all(torch.equal(module.state_dict()[k], v.to(module.state_dict()[k].dtype))
               for k, v in state.items())


def test_plain_wrapped_and_safetensors_load_the_same(tmp_path):
    state = _net().state_dict()
    torch.save(state, tmp_path / "plain.pth")
    torch.save({"params_ema": state, "iter": 5}, tmp_path / "wrapped.pth")
    torch.save({"netG": {"module." + k: v for k, v in state.items()}}, tmp_path / "dp.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "g.safetensors"))
    for name, key in (("plain.pth", None), ("wrapped.pth", "params_ema"), ("dp.pth", "netG"),
                      ("g.safetensors", None)):
        module = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 3, 1))
        info = load_checkpoint(module, tmp_path / name)
        assert _same(module, state), name
        assert info.key == key, name
        if key:
            assert f"key '{key}'" in info.note


def test_explicit_key_and_a_missing_one(tmp_path):
    state = _net().state_dict()
    torch.save({"params": state, "params_ema": state}, tmp_path / "g.pth")
    err = _error(tmp_path / "g.pth")        # two candidates: ambiguous, listed
    assert "params, params_ema" in err.message and 'key "params_ema"' in err.hint
    assert load_checkpoint(_net(), tmp_path / "g.pth", "params").key == "params"
    err = _error(tmp_path / "g.pth", "param_ema")
    assert "no key 'param_ema'" in err.message and "params_ema" in err.hint


def test_one_dict_of_tensors_under_any_name_is_unwrapped(tmp_path):
    torch.save({"my_generator": _net().state_dict(), "epoch": 3}, tmp_path / "g.pth")
    assert load_checkpoint(_net(), tmp_path / "g.pth").key == "my_generator"


def test_empty_random_text_and_truncated_files(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    assert "empty (0 bytes)" in _error(tmp_path / "empty.pth").message
    (tmp_path / "rand.pth").write_bytes(os.urandom(2000))
    (tmp_path / "text.pth").write_text("hello world\n" * 20)
    torch.save(_net().state_dict(), tmp_path / "ok.pth")
    data = (tmp_path / "ok.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    for name in ("rand.pth", "text.pth", "cut.pth"):
        assert "corrupt or not a PyTorch checkpoint" in _error(tmp_path / name).message
    assert "not a valid safetensors file" in _error(tmp_path / "bad.safetensors").message


@pytest.mark.parametrize("old, new", [
    (b"cpuq\x06K\x04t", b"cpuq\x06J\xff\xff\xff\x7ft"),        # storage of 2^31 elements
    (b"QK\x00K\x04\x85", b"QK\x00M\x00\x10\x85"),                # a tensor past its storage
    (b"cpuq\x06K\x04t", b"cpuq\x06X\x01\x00\x00\x00at"),         # a size that is a string
])
def test_forged_storage_records_are_a_corrupt_file(tmp_path, old, new):
    torch.save({"w": torch.zeros(4)}, tmp_path / "ok.pth")
    with zipfile.ZipFile(tmp_path / "ok.pth") as src, \
            zipfile.ZipFile(tmp_path / "forged.pth", "w", zipfile.ZIP_STORED) as out:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("data.pkl"):
                assert old in data
                data = data.replace(old, new)
            out.writestr(name, data)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(nn.Linear(2, 2), tmp_path / "forged.pth")
    assert "corrupt" in info.value.message and "\x1b[" not in info.value.render()


def test_a_pickled_module_is_refused_without_ansi_codes(tmp_path):
    torch.save(_net(), tmp_path / "module.pth")
    err = _error(tmp_path / "module.pth")
    assert "pickles Python objects" in err.message and "state_dict()" in err.hint


def test_directory_fifo_and_dangling_link_say_what_they_are(tmp_path):
    (tmp_path / "dir.pth").mkdir()
    assert "is a directory" in _error(tmp_path / "dir.pth").message
    os.mkfifo(tmp_path / "pipe.pth")
    assert "FIFO" in _error(tmp_path / "pipe.pth").message
    (tmp_path / "link.pth").symlink_to(tmp_path / "nowhere.pth")
    assert "dangling symbolic link" in _error(tmp_path / "link.pth").message


@pytest.mark.parametrize("make, what", [
    (lambda t: t.to_sparse(), "sparse_coo tensor"),
    (lambda t: torch.empty(t.shape, device="meta"), "meta tensor"),
    (lambda t: torch.quantize_per_tensor(t, 0.1, 0, torch.qint8), "quantized tensor"),
])
def test_tensors_without_plain_data_are_refused(tmp_path, make, what):
    state = _net().state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # quantize_per_tensor's deprecation
        state["0.weight"] = make(state["0.weight"])
    torch.save(state, tmp_path / "g.pth")
    err = _error(tmp_path / "g.pth")
    assert "key '0.weight'" in err.message and what in err.message


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_precisions_are_converted_with_a_note(tmp_path, dtype):
    state = {k: (v.to(dtype) if v.is_floating_point() else v)
             for k, v in _net().state_dict().items()}
    torch.save(state, tmp_path / "g.pth")
    module = _net()
    info = load_checkpoint(module, tmp_path / "g.pth")
    assert module[0].weight.dtype == torch.float32
    assert f"{str(dtype)[6:]} tensor(s) converted to float32" in info.note


@pytest.mark.parametrize("dtype", [torch.int32, torch.bool, torch.complex64])
def test_integer_boolean_and_complex_weights_are_refused(tmp_path, dtype):
    state = _net().state_dict()
    state["0.weight"] = state["0.weight"].to(dtype)
    torch.save(state, tmp_path / "g.pth")
    err = _error(tmp_path / "g.pth")
    assert "key '0.weight'" in err.message and "float32" in err.message


def test_nan_and_inf_weights_are_a_warning(tmp_path):
    state = _net().state_dict()
    state["0.weight"][0, 0, 0, 0] = float("nan")
    state["2.bias"][0] = float("inf")
    torch.save(state, tmp_path / "g.pth")
    info = load_checkpoint(_net(), tmp_path / "g.pth")
    assert info.warnings and "2 tensor(s) hold NaN or Inf" in info.warnings[0]
    assert "0.weight" in info.warnings[0]
