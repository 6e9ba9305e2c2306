"""Writing outputs so that a failed build never leaves a half-written artifact behind."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """The file's sha256 (hex), read a chunk at a time: checkpoints run to gigabytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_text_atomic(path: str | Path, text: str, mode: int | None = None) -> None:
    """Write to a temporary file in the same folder, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp, (mode if mode is not None else 0o666) & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StagingDir:
    """A build's output folder, assembled next to its final place and swapped in at the end.

    Everything is written into `<final>.tmp-XXXX`; `commit()` renames it to `<final>` (the
    previous artifacts move aside and are removed only once the new ones are in place).
    `abandon(keep_as)` moves a failed build's partial outputs to `keep_as` for inspection,
    leaving the previous artifacts untouched.
    """

    def __init__(self, final: str | Path):
        self.final = Path(final)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"{self.final.name}.tmp-", dir=self.final.parent))
        os.chmod(self.path, 0o777 & ~_umask())   # mkdtemp makes it private (0700)

    def commit(self) -> Path:
        old = None
        if self.final.exists():
            old = self.final.with_name(f"{self.final.name}.old-{os.getpid()}")
            os.replace(self.final, old)
        os.replace(self.path, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.final

    def abandon(self, keep_as: str | Path | None = None) -> Path | None:
        if keep_as is None:
            shutil.rmtree(self.path, ignore_errors=True)
            return None
        keep_as = Path(keep_as)
        shutil.rmtree(keep_as, ignore_errors=True)
        os.replace(self.path, keep_as)
        return keep_as
