"""What every part of the benchmark uses: units, its log line, RunError, starting a child with
its stderr in a file, and the text helpers for file names and secrets."""
import os
import subprocess
import sys
import time
import traceback

from testkit.daemons import child

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class RunError(Exception):
    """One run failed (timed out, a tool exited non-zero, a server died): its row says so and
    the benchmark goes on."""


def start(argv, env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr_path=None):
    """A child that dies with the benchmark, in its own process group (testkit.daemons.child),
    its stderr appended to stderr_path; the caller reaps it."""
    err = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL
    try:
        return child(argv, env, stdin=stdin, stdout=stdout, stderr=err)
    finally:
        if stderr_path:
            err.close()


def redact(text, secrets):
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def slug(text):
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def failed(m, e):
    """Row m's run raised e: a RunError says what went wrong; anything else is a bug in the
    benchmark or a tool's surprise, so its traceback is printed too."""
    if isinstance(e, RunError):
        m["error"] = str(e)
    else:
        m["error"] = "%s: %s" % (type(e).__name__, e)
        traceback.print_exc()


class Part:
    """A part of the benchmark that runs things (archie, the peers, the scenarios): the options,
    the work directory, the servers, the meter of what they do and the report rows go to."""

    def __init__(self, args, work, servers, meter, report):
        self.args = args
        self.work = work
        self.servers = servers
        self.meter = meter
        self.report = report
