"""Shared fixtures: small specs and generators, built in each test's own folder."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SMALL_SPEC = """\
model small {
    source pytorch {
        arch resnet_generator(input_nc=3, output_nc=3, ngf=8, n_blocks=2)
        weights "weights/small.pth"%(fallback)s
    }
    input img: float32[N, 3, 64, 64] batch 1, 2
    output out
    rewrite {
        reflect-pad-to-constant
        fuse-pad-into-conv
    }
    atc {
        soc_version Ascend310P3
        output "Small"
        out_nodes out
    }
    validate {
        samples 2
        seed 0
        data img uniform(-1, 1)
        require pixel_cosine >= %(threshold)s
    }
}
"""


def write_spec(folder: Path, fallback: str = " else random(seed=0)", threshold: float = 0.5,
               text: str | None = None) -> Path:
    path = folder / "small.gan"
    path.write_text(text if text is not None else
                    SMALL_SPEC % {"fallback": fallback, "threshold": threshold}, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _isolated_build_cache(tmp_path_factory, monkeypatch):
    """Builds in tests use a fresh build cache of their own, never the user's ~/.cache/gancc."""
    monkeypatch.setenv("GANCC_CACHE_DIR", str(tmp_path_factory.mktemp("gancc-cache")))
    # every build in the tests also checks that each rewrite is idempotent
    monkeypatch.setenv("GANCC_CHECK_IDEMPOTENT", "1")


@pytest.fixture
def small_spec(tmp_path: Path) -> Path:
    return write_spec(tmp_path)


def import_bench(name: str):
    """A module of bench/ (e.g. bench_diff, whose graph generator tests reuse)."""
    import importlib
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "bench"))


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()
