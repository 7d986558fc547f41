"""What a test module's setUpModule and tearDownModule need: a started rig with its buckets,
closing servers and directories again, skipping when a test binary is not built, and unique
names for tests that run in threads."""
import os
import shutil
import threading
import unittest

from testkit.rig import Rig


def start_rig(buckets=(), **kw):
    """A started Rig(**kw) with buckets, (name, user, endpoint_index) triples, made; the rig is
    closed again if any step fails, so that a failed setUpModule leaves no server behind."""
    rig = Rig(**kw)
    try:
        rig.start()
        for name, user, index in buckets:
            rig.ceph.make_bucket(name, user=user, endpoint_index=index)
    except BaseException:
        rig.close()
        raise
    return rig


def close_all(*things):
    """For tearDownModule: closes each server (anything with close()) and removes each directory
    (a str), in order; None (a setUpModule that failed early) is skipped."""
    for thing in things:
        if isinstance(thing, str):
            shutil.rmtree(thing, ignore_errors=True)
        elif thing is not None:
            thing.close()


def require_built(path, env_name):
    """Skips the module when a test binary is missing (a build without -Dtests=true)."""
    if not os.access(path, os.X_OK):
        raise unittest.SkipTest(f"{os.path.basename(path)} not built at {path} (set {env_name})")


_names = [0]
_names_lock = threading.Lock()


def unique_name(stem):
    """stem-N, N counting up across the process (bucket names for tests that run in threads)."""
    with _names_lock:
        _names[0] += 1
        return f"{stem}-{_names[0]}"
