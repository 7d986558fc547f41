#!/usr/bin/python3
"""Real-server test rig for archie: a context manager (Rig) that starts throwaway servers on
127.0.0.1 only and stops them again:

* a single nats-server with JetStream (testkit/nats_server.py, NatsServer);
* optionally n nats-servers (default 3) forming a JetStream cluster (NatsCluster);
* a one-mon / one-OSD (memstore) Ceph cluster with two radosgw daemons, i.e. two distinct
  S3 endpoints that serve the same data, with SSE-KMS (RGW's testing key store, testkey-1)
  and the storage class STANDARD_IA besides STANDARD (testkit/ceph_rgw.py, CephRgw).

Every daemon is a child of this process (testkit/daemons.py) and everything is written below
one temporary directory. Python 3 standard library only; run with /usr/bin/python3.

CLI::

    /usr/bin/python3 testkit/rig.py up [--no-ceph] [--no-nats] [--cluster] [--state FILE]

starts the rig, writes a JSON description to FILE (and stdout), then stays in the foreground
until SIGTERM/SIGINT and stops everything cleanly.
"""

import argparse
import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

if __package__ in (None, ""):  # run by path (python3 testkit/rig.py): the repo root, not testkit/
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from testkit.ceph_rgw import CephRgw  # noqa: E402
from testkit.daemons import forget_exited, log  # noqa: E402
from testkit.nats_server import NatsCluster, NatsServer  # noqa: E402


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def _sigterm_unwinds():
    """Turn a default-handled SIGTERM into SystemExit so that context managers
    and atexit handlers stop the daemons and remove the temp dir (a plain
    SIGTERM would skip both; PR_SET_PDEATHSIG would still kill the daemons)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _raise_exit)
    except ValueError:
        pass


class Rig:
    """Context manager that starts NATS (single and/or cluster) and Ceph RGW."""

    def __init__(self, nats=True, cluster=False, ceph=True, base_dir=None, num_rgw=2,
                 cluster_size=3, memstore_bytes=8 << 30, keep=None):
        self.want_nats, self.want_cluster, self.want_ceph = nats, cluster, ceph
        self.num_rgw, self.cluster_size, self.memstore_bytes = num_rgw, cluster_size, memstore_bytes
        self.keep = (os.environ.get("ARCHIE_KEEP_RIG") == "1") if keep is None else keep
        self._own_dir = base_dir is None
        if base_dir is None:
            parent = os.environ.get("ARCHIE_RIG_DIR") or None
            if parent:
                os.makedirs(parent, exist_ok=True)
            base_dir = tempfile.mkdtemp(prefix="archie-rig-", dir=parent)
        else:
            os.makedirs(base_dir, exist_ok=True)
        self.base_dir = os.path.abspath(base_dir)
        self.nats = None
        self.cluster = None
        self.ceph = None
        self.timings = {}
        self._closed = False
        atexit.register(self.close)

    def start(self):
        t0 = time.monotonic()
        _sigterm_unwinds()
        try:
            if self.want_nats:
                self.nats = NatsServer(os.path.join(self.base_dir, "nats"))
                self.nats.launch()
            if self.want_cluster:
                self.cluster = NatsCluster(os.path.join(self.base_dir, "nats-cluster"),
                                           n=self.cluster_size)
                self.cluster.launch()
            if self.want_ceph:
                self.ceph = CephRgw(os.path.join(self.base_dir, "ceph"), num_rgw=self.num_rgw,
                                    memstore_bytes=self.memstore_bytes)
                self.ceph.start()
            if self.nats:
                self.nats.wait_ready()
            if self.cluster:
                self.cluster.wait_ready()
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = round(time.monotonic() - t0, 3)
        log("rig up in %.2fs (%s)" % (self.timings["start"], self.base_dir))
        return self

    def stop(self):
        t0 = time.monotonic()
        if self.ceph:
            self.ceph.stop()
        if self.cluster:
            self.cluster.stop()
        if self.nats:
            self.nats.stop()
        self.timings["stop"] = round(time.monotonic() - t0, 3)

    def close(self):
        """Stop everything and remove the base dir (unless kept). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.stop()
        finally:
            if self.keep:
                log("keeping rig dir %s" % self.base_dir)
            elif self._own_dir:
                shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
        return False

    def describe(self):
        d = {"base_dir": self.base_dir, "pid": os.getpid(), "timings": {}}
        if self.nats:
            d["nats"] = self.nats.describe()
            d["timings"]["nats"] = self.nats.timings
        if self.cluster:
            d["nats_cluster"] = self.cluster.describe()
            d["timings"]["nats_cluster"] = self.cluster.timings
        if self.ceph:
            d["s3"] = self.ceph.describe()
            d["timings"]["ceph"] = self.ceph.timings
        d["timings"]["rig"] = self.timings
        return d


# --------------------------------------------------------------------------
# CLI

def _cmd_up(args):
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rig = Rig(nats=not args.no_nats, cluster=args.cluster, ceph=not args.no_ceph,
              num_rgw=args.rgw, base_dir=args.dir, keep=args.keep or None)
    try:
        rig.start()
        desc = json.dumps(rig.describe(), indent=2, sort_keys=True)
        if args.state:
            tmp = args.state + ".tmp"
            with open(tmp, "w") as f:
                f.write(desc + "\n")
            os.replace(tmp, args.state)
        print(desc, flush=True)
        while not stop.is_set():
            stop.wait(0.5)
            forget_exited()
        log("signal received, stopping")
    finally:
        rig.close()
        log("rig stopped in %.2fs" % rig.timings.get("stop", 0.0))
        if args.state:
            try:
                os.remove(args.state)
            except OSError:
                pass
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="rig.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start the rig and stay in the foreground")
    up.add_argument("--no-ceph", action="store_true", help="no Ceph/radosgw")
    up.add_argument("--no-nats", action="store_true", help="no standalone nats-server")
    up.add_argument("--cluster", action="store_true", help="also a 3-node NATS JetStream cluster")
    up.add_argument("--rgw", type=int, default=2, help="number of radosgw endpoints (default 2)")
    up.add_argument("--state", help="write the JSON description here (removed on exit)")
    up.add_argument("--dir", help="use this base dir (not removed)")
    up.add_argument("--keep", action="store_true", help="keep the temp dir on exit")
    args = ap.parse_args(argv)
    if args.cmd == "up":
        return _cmd_up(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
