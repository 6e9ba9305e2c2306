"""Documentation that runs: every ```bash block of rewrites/README.md, and of any markdown file
under docs/ that carries the marker line below, is run in order in one empty folder with the
venv's `gancc` and `python` first on PATH, and must exit 0. A walkthrough that does not run is
a bug (onnx-graphsurgeon's tests/test_examples.py does the same for its examples).

    <!-- gancc: run bash blocks -->
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MARKER = "<!-- gancc: run bash blocks -->"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def documents() -> list[Path]:
    marked = [p for p in sorted((REPO / "docs").glob("**/*.md"))
              if MARKER in p.read_text(encoding="utf-8")]
    return [REPO / "rewrites" / "README.md", *marked]


def blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, script) of each bash block."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def test_the_walkthrough_has_blocks():
    assert len(blocks(REPO / "rewrites" / "README.md")) >= 5


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_bash_blocks_run(doc: Path, tmp_path: Path):
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONPATH", None)
    for line, script in blocks(doc):
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (
            f"{doc.relative_to(REPO)}:{line}: the bash block exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")


def test_the_catalogue_table_is_the_generated_one():
    """docs/rewrites.md's table is what `gancc passes --markdown` prints (every rewrite)."""
    from gancc.passes.catalogue import markdown_table, table_in

    table = table_in((REPO / "docs" / "rewrites.md").read_text(encoding="utf-8"))
    assert table is not None, "docs/rewrites.md lost its generated-table markers"
    assert table == markdown_table(), (
        "docs/rewrites.md's catalogue is out of date: paste the output of "
        "`gancc passes --markdown` between its markers")


def test_markdown_catalogue_has_a_row_per_rewrite(capsys):
    from gancc.cli import main
    from gancc.passes import registry

    assert main(["passes", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["| name | kind | what |", "|---|---|---|"]
    assert [line.split("`")[1] for line in lines[2:]] == list(registry.all_rewrites())
