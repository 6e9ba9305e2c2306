"""Writing outputs so that a failed build never leaves a half-written artifact behind."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows)
    fcntl = None


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


# Where a build keeps what is not an artifact: `OUT/.gancc/`. Model names start with a letter
# or an underscore (the spec's NAME), so nothing here can collide with a model's folder.
STATE_DIR = ".gancc"
# A test hook: `GANCC_KILL_POINT=<point>` kills the process with SIGKILL at that step of a
# commit (tests/test_crash_consistency.py); `GANCC_SWAP=renames` forces the two-rename swap.
KILL_POINT_ENV = "GANCC_KILL_POINT"
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                  errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG, errno.EMFILE,
                  errno.EFBIG, errno.ELOOP}


def kill_point(name: str) -> None:
    """Die here, as kill -9 would, when the crash-consistency test asks for this point."""
    if os.environ.get(KILL_POINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class OutputError(Exception):
    """An output folder that cannot be written (read-only, full, a file in the way): a
    problem with the environment, turned into a user-facing error by the caller."""

    def __init__(self, path: str | Path, what: str, hint: str):
        super().__init__(f"{path}: {what}")
        self.path, self.what, self.hint = str(path), what, hint


def output_problem(err: OSError, where: str | Path | None = None) -> OutputError | None:
    """`err` as an OutputError when it is the environment's doing (a full or read-only disk,
    no permission, a file where a folder should be), else None (a bug: let it propagate)."""
    if err.errno not in _OUTPUT_ERRNOS:
        return None
    path = err.filename or where or "the output folder"
    what = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free some space on that disk (or raise the quota), or build elsewhere with -o DIR"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = ("check that path's permissions: make the output folder writable, or build "
                "elsewhere with -o DIR")
    elif err.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        hint = ("a file stands where a folder should be (or the reverse): move it away, or "
                "build elsewhere with -o DIR")
    else:
        hint = "check that path, or build elsewhere with -o DIR"
    return OutputError(path, what, hint)


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if os.environ.get("GANCC_SWAP") == "renames" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False                     # a file system without it: the two renames
    raise OSError(code, os.strerror(code), str(a))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True                      # someone else's process: alive
    return True


class StagingDir:
    """A build's output folder, assembled out of sight and swapped in at the end.

    The protocol (docs/guarantees.md), for the model folder `OUT/<model>/`:

    - a per-model lock, `OUT/.gancc/locks/<model>.lock` (flock), is held from the start of
      the build to its end: a second build of the same model waits for the first;
    - under the lock, leftovers of interrupted builds are recovered first: when `OUT/<model>/`
      is missing and a previous build sits in `OUT/.gancc/old/<model>/` (a commit killed
      between its two renames), it is moved back; every other leftover (staging folders,
      the old build of a finished commit, the `<model>.tmp-*` / `<model>.old-<pid>` folders
      of gancc versions before this protocol) is removed. `recovered` lists what was done;
    - everything is written into `OUT/.gancc/staging/<model>/<tmp>/`; `commit()` swaps it
      with `OUT/<model>/` in one atomic exchange (renameat2) where the system has it, else
      by two renames whose only window (the old folder moved aside, the new one not yet in)
      is repaired by the next run as above;
    - `abandon(keep_as)` moves a failed build's partial outputs to `keep_as`
      (`OUT/.gancc/failed/<model>/`), leaving the previous artifacts untouched.
    """

    def __init__(self, final: str | Path, on_wait=None):
        self.final = Path(final)
        self.state = self.final.parent / STATE_DIR
        self.recovered: list[str] = []
        self._lock_fd: int | None = None
        try:
            for sub in ("locks", "staging", "old", "failed"):
                (self.state / sub).mkdir(parents=True, exist_ok=True)
            self._lock(on_wait)
            self._recover()
            area = self.state / "staging" / self.final.name
            area.mkdir(parents=True, exist_ok=True)
            self.path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=area))
            os.chmod(self.path, 0o777 & ~_umask())   # mkdtemp makes it private (0700)
        except BaseException:
            self._unlock()
            raise

    @property
    def failed_dir(self) -> Path:
        return self.state / "failed" / self.final.name

    @property
    def _old(self) -> Path:
        return self.state / "old" / self.final.name

    def _lock(self, on_wait) -> None:
        if fcntl is None:                # no flock here (Windows): builds are not serialised
            return
        fd = os.open(self.state / "locks" / f"{self.final.name}.lock", os.O_RDWR | os.O_CREAT,
                     0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(f"another build of {self.final.name} is running in {self.final.parent}:"
                        " waiting for it to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)          # closing the descriptor releases the flock
            self._lock_fd = None

    def _recover(self) -> None:
        """Under the lock: every leftover of this model is from a process that died."""
        name, parent = self.final.name, self.final.parent
        legacy_old = sorted((p for p in parent.glob(f"{name}.old-*")
                             if p.name[len(name) + 5:].isdigit()
                             and not _pid_alive(int(p.name[len(name) + 5:]))),
                            key=lambda p: p.stat().st_mtime)
        candidates = ([self._old] if self._old.exists() else []) + legacy_old[::-1]
        if not self.final.exists() and candidates:
            os.replace(candidates[0], self.final)
            self.recovered.append(f"restored the previous build of {name} from an "
                                  "interrupted commit")
        leftovers = [p for p in (self._old, *legacy_old) if p.exists()]
        leftovers += [p for p in parent.glob(f"{name}.tmp-*") if p.is_dir()]
        area = self.state / "staging" / name
        leftovers += list(area.iterdir()) if area.is_dir() else []
        for path in leftovers:
            _remove(path)
        if leftovers:
            self.recovered.append(f"removed {len(leftovers)} leftover folder(s) of interrupted "
                                  f"builds of {name}")

    def commit(self) -> Path:
        try:
            kill_point("before-swap")
            if self.final.exists() and _rename_exchange(self.path, self.final):
                kill_point("after-swap")
                _remove(self.path)                    # now the previous build
            else:
                if self.final.exists():
                    os.replace(self.final, self._old)
                    kill_point("between-renames")
                os.replace(self.path, self.final)
                kill_point("after-swap")
                _remove(self._old)
            return self.final
        finally:
            self._unlock()

    def abandon(self, keep_as: str | Path | None = None) -> Path | None:
        try:
            if keep_as is None:
                _remove(self.path)
                return None
            keep_as = Path(keep_as)
            keep_as.parent.mkdir(parents=True, exist_ok=True)
            if keep_as.exists():       # the last failure's outputs: out of the way, then gone
                aside = Path(tempfile.mkdtemp(prefix="failed-", dir=self.path.parent))
                os.replace(keep_as, aside / "x")
                _remove(aside)
            os.replace(self.path, keep_as)
            return keep_as
        finally:
            self._unlock()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
