"""Run a step that could crash natively in a forked child, so that a crash is an error.

torch's exporter runs the generator's forward (a user's code, C++ kernels): a size that
makes a kernel divide by zero, a bad pointer in an extension, an abort() in an assertion
end the process by a signal, and no `except` can catch that. `run_forked(work, ...)` runs
`work()` in a forked child: the child inherits the module and everything else already in
memory (nothing is pickled on the way in), sends back `work()`'s small result (or its
exception) through a pipe and exits; a child that dies by a signal becomes a GanccError
naming what it was doing and the signal, with the last lines the child printed (a C++
assertion's message, say).

What the child prints goes to a temporary file, not the terminal: torch's exporter dumps
its whole IR graph to stderr on every failed attempt (the reduced-size trace, each opset
tried), and a user's forward may print; gancc says what failed in its own message.

Fork safety: torch's CPU kernels run on GNU OpenMP, whose thread pool does not survive a
fork (the child's first parallel region waits forever for the parent's threads), so the
child runs torch on one thread, as torch's own DataLoader workers do. The child leaves by
os._exit: no atexit handler, finalizer or buffered output of the parent runs twice.

`GANCC_EXPORT_IN_PROCESS=1` runs the step in this process instead (for a debugger or a
profiler); so does a platform without fork, or a fork that fails (out of processes).
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import signal
import sys
import tempfile
import traceback
import warnings
from typing import Any, Callable

from gancc.errors import GanccError

IN_PROCESS_ENV = "GANCC_EXPORT_IN_PROCESS"


def in_process() -> bool:
    """Whether steps run here rather than in a child (the variable, or no fork)."""
    return os.environ.get(IN_PROCESS_ENV, "") not in ("", "0") or not hasattr(os, "fork")


def run_forked(work: Callable[[], Any], doing: str, hint: str) -> Any:
    """`work()`'s result, computed in a forked child; its exception is raised here as it was
    raised there (type, message, attributes). A child killed by a signal, or one that ends
    without a result, raises GanccError("the exporter crashed (SIGSEGV) while {doing}", hint)."""
    if in_process():
        return work()
    with tempfile.TemporaryFile() as printed:
        read_end, write_end = os.pipe()
        try:
            with warnings.catch_warnings():    # 3.12+ warns of fork in a threaded process
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError:                        # no processes or memory left for a child
            os.close(read_end)
            os.close(write_end)
            return work()
        if pid == 0:                           # the child: never returns
            os.close(read_end)
            _child(work, write_end, printed.fileno())
        os.close(write_end)
        try:
            with os.fdopen(read_end, "rb") as pipe:
                data = pipe.read()
        except BaseException:                  # Ctrl-C (the child got it too), or worse
            _kill(pid)
            raise
        _, status = os.waitpid(pid, 0)
        return _outcome(data, status, doing, hint, printed)


def _child(work: Callable[[], Any], write_end: int, printed: int) -> None:
    """In the child: run `work`, write the pickled outcome, leave without cleaning up."""
    code = 0
    try:
        _fresh_child_state(printed)
        try:
            outcome = ("result", work())
        except BaseException as err:       # noqa: BLE001 - every exception goes to the parent
            outcome = ("error", _portable(err))
        try:
            data = pickle.dumps(outcome)
        except Exception as err:           # noqa: BLE001 - an unpicklable result is a bug
            data = pickle.dumps(("error", _portable(err)))
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except BaseException:                  # noqa: BLE001 - the parent reports a silent child
        code = 1
    os._exit(code)


def _fresh_child_state(printed: int) -> None:
    """One torch thread (see the module doc), no faulthandler dump (pytest's, say) on a
    crash, file descriptors 1 and 2 (C++ code writes there too) on the `printed` file, and
    stdout/stderr objects of the child's own: a parent thread (a progress spinner) may have
    held the old ones' locks at the fork."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    faulthandler.disable()                 # a crash is reported by the parent, not as a dump
    for name, fd in (("stdout", 1), ("stderr", 2)):
        try:
            os.dup2(printed, fd)
            setattr(sys, name, open(os.dup(fd), "w", buffering=1, encoding="utf-8",
                                    errors="replace"))
        except OSError:                    # a closed stream stays as it was
            pass


def _portable(err: BaseException) -> tuple:
    """An exception as (class, args, attributes, child's traceback): GanccError subclasses
    take more than their message, so pickling the object itself would lose or break them."""
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    state = {k: v for k, v in vars(err).items() if k != "__notes__"}
    if isinstance(err, OSError):           # slots, not in vars(): the path a write failed on
        state.update(filename=err.filename, filename2=err.filename2)
    try:
        pickle.dumps((type(err), err.args, state))
    except Exception:                      # noqa: BLE001 - a class or value pickle cannot take
        return RuntimeError, (f"{type(err).__name__}: {err}",), {}, text
    return type(err), err.args, state, text


def _last_lines(printed, count: int = 8) -> str:
    """The end of what a crashed child printed, indented under the message, or ''."""
    printed.seek(0, os.SEEK_END)
    printed.seek(max(0, printed.tell() - 4096))
    lines = printed.read().decode("utf-8", "replace").strip().splitlines()[-count:]
    if not lines:
        return ""
    return "; it printed last:" + "".join(f"\n    {line}" for line in lines)


def _rebuilt(portable: tuple) -> BaseException:
    cls, args, state, text = portable
    err = cls.__new__(cls, *args)
    err.args = args
    for name, value in state.items():
        setattr(err, name, value)
    if not isinstance(err, GanccError):    # a gancc bug: GANCC_DEBUG=1 shows where it was
        err.__notes__ = [f"raised in the export's child process:\n{text}"]
    return err


def _outcome(data: bytes, status: int, doing: str, hint: str, printed) -> Any:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        killed = " (SIGKILL: out of memory?)" if number == signal.SIGKILL else ""
        raise GanccError(f"the exporter crashed ({name}){killed} while {doing}"
                         f"{_last_lines(printed)}", hint)
    if not data:
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
        raise GanccError(f"the exporter's process ended (exit status {code}) without a "
                         f"result while {doing}{_last_lines(printed)}", hint)
    kind, value = pickle.loads(data)      # our own child's bytes, nothing from a file
    if kind == "error":
        raise _rebuilt(value) from None
    return value


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
