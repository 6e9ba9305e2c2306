"""`gancc check` imports the Python a spec names (`rewrites "dir/"`), so checking a spec runs
its code; `gancc check --no-code` loads none of it and says which checks it skipped."""

from __future__ import annotations

from pathlib import Path

from gancc.cli import main

SPEC = """\
rewrites "plugins/"

model g {
    source pytorch {
        arch resnet_generator(ngf=8, n_blocks=1)
        weights "w.pth" else random(seed=0)
    }
    input x: float32[N, 3, 64, 64] batch 1
    output y
    rewrite { fuse-pad-into-conv }
    atc { soc_version Ascend310P3 }
}
"""


def write(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "RAN"
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    spec = tmp_path / "g.gan"
    spec.write_text(SPEC, encoding="utf-8")
    return spec, marker


def test_no_code_runs_none_of_the_specs_python(tmp_path: Path, capsys):
    spec, marker = write(tmp_path)
    assert main(["check", "--no-code", str(spec)]) == 0
    out, err = capsys.readouterr()
    assert not marker.exists()
    assert "skipped (--no-code): the rewrite pipelines" in err and "plugins" in err
    assert "g: ok" in out


def test_without_no_code_check_imports_the_specs_rewrites(tmp_path: Path, capsys):
    spec, marker = write(tmp_path)
    main(["check", str(spec)])
    assert marker.exists()      # documented: check loads the spec's rewrites folder


def test_no_code_still_checks_what_needs_no_code(tmp_path: Path, capsys):
    spec = tmp_path / "g.gan"
    spec.write_text(SPEC.replace('rewrites "plugins/"\n', "")
                    .replace("fuse-pad-into-conv", "fuse-pad-into-cnv"), encoding="utf-8")
    assert main(["check", "--no-code", str(spec)]) == 1
    assert "fuse-pad-into-cnv" in capsys.readouterr().err
