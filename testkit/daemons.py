"""The test servers' processes: every daemon is a child of this process, started in its own
session and, on Linux, with PR_SET_PDEATHSIG=SIGKILL so that nothing outlives the Python
process that owns it, even if that process is SIGKILLed. Daemons must therefore be started
from the thread that lives as long as they do (the main thread in practice). Whatever is
still running at exit is stopped, newest first.

Also: a child the caller stops and reaps itself (child, reap with its rusage, killpg),
running a short tool to its end (run_tool), waiting for a daemon to become ready while
checking it is still alive (wait_for), and the memory a process uses (rss_kib)."""
import atexit
import ctypes
import datetime
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

from testkit.waiting import wait_until


class RigError(RuntimeError):
    pass


def log(msg):
    if os.environ.get("ARCHIE_RIG_QUIET") != "1":
        sys.stderr.write("[rig %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
        sys.stderr.flush()


_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl  # noqa: B018 - presence check
except (OSError, AttributeError):
    _libc = None

_live = []  # Popen objects still owned, in start order
_live_lock = threading.Lock()


def _child_setup():
    # Runs in the child between fork and exec.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def child(argv, env=None, cwd=None, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
          stderr=subprocess.DEVNULL):
    """Popen of a child in its own session (its own process group, for killpg) that dies with
    this process. Not stopped at exit: the caller stops and reaps it (spawn() registers one)."""
    return subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env, cwd=cwd,
                            start_new_session=True, close_fds=True, preexec_fn=_child_setup)


def reap(proc):
    """os.wait4 on a Popen: (exit code, rusage). The rusage covers the child and its reaped children."""
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, ru


def killpg(proc, sig=signal.SIGKILL):
    """sig to the process group of a child() (it and what it started); nothing once it has gone."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(argv, log_path, env=None, cwd=None):
    """Start a daemon in the background; stdout+stderr appended to log_path."""
    logf = open(log_path, "ab")
    try:
        logf.write(("\n=== %s %s\n" % (datetime.datetime.now().isoformat(),
                                      " ".join(shlex.quote(a) for a in argv))).encode())
        logf.flush()
        proc = child(argv, env=env, cwd=cwd, stdout=logf, stderr=subprocess.STDOUT)
    finally:
        logf.close()
    proc.rig_log = log_path
    with _live_lock:
        _live.append(proc)
    return proc


def _forget(proc):
    with _live_lock:
        if proc in _live:
            _live.remove(proc)


def terminate(proc, timeout=15.0, sig=signal.SIGTERM):
    """Send sig (SIGTERM), wait up to timeout, then SIGKILL. Returns seconds."""
    if proc is None:
        return 0.0
    t0 = time.monotonic()
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log("pid %d ignored %s for %.1fs, sending SIGKILL"
                 % (proc.pid, signal.Signals(sig).name, timeout))
            proc.kill()
            proc.wait()
    _forget(proc)
    return time.monotonic() - t0


def kill(proc):
    """SIGKILL and reap."""
    return terminate(proc, timeout=30.0, sig=signal.SIGKILL)


def _atexit_reaper():
    with _live_lock:
        procs = list(_live)
    for proc in reversed(procs):  # reverse start order: rgw, osd, mon
        terminate(proc, timeout=5.0)


atexit.register(_atexit_reaper)


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return "(no log at %s)" % path


def check_alive(proc, what):
    if proc is None or proc.poll() is not None:
        code = None if proc is None else proc.returncode
        log_path = getattr(proc, "rig_log", None)
        raise RigError("%s exited early (rc=%s); log %s:\n%s"
                       % (what, code, log_path, tail(log_path) if log_path else ""))


def forget_exited():
    """Logs and forgets the daemons that have exited on their own (a long-running rig's watch)."""
    for proc in list(_live):
        if proc.poll() is not None:
            log("warning: pid %d exited with %s" % (proc.pid, proc.returncode))
            _forget(proc)


def run_tool(argv, timeout=60, check=True, env=None, input=None):
    try:
        cp = subprocess.run(argv, stdin=None if input is not None else subprocess.DEVNULL,
                            input=input, capture_output=True, text=True,
                            timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise RigError("timed out after %ss: %s" % (timeout, " ".join(argv))) from e
    if check and cp.returncode != 0:
        raise RigError("command failed (rc=%d): %s\nstdout: %s\nstderr: %s"
                       % (cp.returncode, " ".join(argv), cp.stdout[-4000:], cp.stderr[-4000:]))
    return cp


def wait_for(pred, timeout, what, interval=0.05, alive=()):
    """pred()'s first truthy value; RigError once the timeout passes or one of the
    (process, name) pairs in `alive` has exited."""
    def check():
        for proc, name in alive:
            check_alive(proc, name)
    return wait_until(pred, timeout, what, interval=interval, check=check, error=RigError)


def rss_kib(pid):
    """VmRSS of a live process, KiB (FileNotFoundError once it has gone; 0 for a zombie)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
