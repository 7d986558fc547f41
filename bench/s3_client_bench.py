#!/usr/bin/python3
"""Throughput of archie's S3 client (through tests/tools/s3_probe) next to awscli and rclone,
against the test rig's Ceph RADOS Gateway on this machine.

    /usr/bin/python3 bench/s3_client_bench.py [--small-count 2000] [--concurrency 64] [--big-mib 1024]

Measures
  * small objects: COUNT x 4 KiB PUTs, then GETs of the same objects, at CONCURRENCY in flight:
    s3_probe bench-put/bench-get, `rclone copy --transfers N`, `aws s3 cp --recursive` with
    s3.max_concurrent_requests = N;
  * one big object (BIG MiB) up and down: s3_probe mput/get (16 MiB parts, 8 in flight),
    `aws s3 cp` (16 MiB chunks, 8 in flight), `rclone copyto` (16 MiB chunks, 8 streams).
Every figure is wall-clock time of the whole command, process start-up included; downloads
are checked against the source (sha256, or the file count for the small objects).

The probe is ARCHIE_S3_PROBE if set, else build/tests/s3_probe. The build/ one is an ASan -O0
debug build, so its numbers are pessimistic: point ARCHIE_S3_PROBE at a release build (e.g.
build-release/tests/s3_probe) for real figures. Client and servers share this machine's cores,
so the server side bounds every client.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from testkit.ceph_rgw import AWS, RCLONE  # noqa: E402
from testkit.files import sha256_file  # noqa: E402
from testkit.rig import Rig  # noqa: E402
from testkit.sigv4 import S3_REGION  # noqa: E402

PROBE = os.environ.get("ARCHIE_S3_PROBE") or os.path.join(REPO_ROOT, "build", "tests", "s3_probe")
MIB = 1 << 20


def is_asan_build(path):
    needle = b"__asan_init"
    tail = b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(8 * MIB)
            if not chunk:
                return False
            if needle in tail + chunk:
                return True
            tail = chunk[-len(needle):]


class Bench:
    def __init__(self, ceph, work, args):
        self.ceph = ceph
        self.work = work
        self.args = args
        self.rows = []
        self.commands = []
        ak, sk = ceph.users["archie"]
        self.ak, self.sk = ak, sk
        self.endpoint = ceph.endpoints[0]
        self.probe_env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0",
                              S3_MAX_CONNECTIONS=str(max(64, args.concurrency)))
        # awscli configs of our own: path style plus the concurrency under test
        self.aws_small_cfg = self.aws_config("small", args.concurrency, 8)
        self.aws_big_cfg = self.aws_config("big", 8, 16)
        self.rclone_env = ceph.rclone_env(src_index=0, dst_index=0)
        self.rclone_env.pop("AWS_CA_BUNDLE", None)

    def aws_config(self, name, concurrency, chunk_mib):
        path = os.path.join(self.work, "aws-%s.config" % name)
        with open(path, "w") as f:
            f.write("[default]\nregion = %s\ns3 =\n    addressing_style = path\n"
                    "    max_concurrent_requests = %d\n    multipart_chunksize = %dMB\n"
                    "    multipart_threshold = %dMB\n"
                    % (S3_REGION, concurrency, chunk_mib, chunk_mib))
        return path

    # ---- runners
    def timed(self, argv, env, what):
        self.commands.append(" ".join(argv).replace(self.sk, "SECRET"))
        t0 = time.monotonic()
        cp = subprocess.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=1800)
        dt = time.monotonic() - t0
        if cp.returncode != 0 or "Sanitizer" in cp.stderr:
            raise SystemExit("%s failed (rc=%d):\n%s\n%s" % (what, cp.returncode, cp.stdout[-3000:],
                                                             cp.stderr[-3000:]))
        return dt, cp.stdout

    def probe(self, *args):
        argv = [PROBE, self.endpoint, self.ak, self.sk] + [str(a) for a in args]
        dt, out = self.timed(argv, self.probe_env, "s3_probe %s" % args[0])
        r = json.loads(out.strip().splitlines()[-1])
        if not r.get("ok"):
            raise SystemExit("s3_probe %s: %s" % (args[0], r))
        return dt, r

    def aws(self, args, config):
        env = self.ceph.aws_env()
        env["AWS_CONFIG_FILE"] = config
        return self.timed([AWS, "--endpoint-url", self.endpoint] + args, env, "aws")

    def rclone(self, args):
        return self.timed([RCLONE] + args, self.rclone_env, "rclone")

    def row(self, test, client, seconds, amount, unit, note=""):
        rate = amount / seconds
        self.rows.append((test, client, seconds, rate, unit, note))
        print("  %-28s %-10s %8.2f s  %10.1f %s  %s" % (test, client, seconds, rate, unit, note),
              flush=True)

    # ---- small objects
    def small(self, bucket):
        n, c, size = self.args.small_count, self.args.concurrency, 4096
        src = os.path.join(self.work, "small-src")
        os.makedirs(src)
        payload = b"x" * size
        for i in range(n):
            with open(os.path.join(src, "f%05d" % i), "wb") as f:
                f.write(payload)
        label_put = "%d x 4 KiB PUT, c=%d" % (n, c)
        label_get = "%d x 4 KiB GET, c=%d" % (n, c)

        dt, r = self.probe("bench-put", bucket, "probe/", n, size, c)
        self.row(label_put, "s3_probe", dt, n, "req/s",
                 "in-process %.0f req/s, %d conns" % (r["requests_per_second"], r["connections_opened"]))
        dt, r = self.probe("bench-get", bucket, "probe/", n, size, c)
        self.row(label_get, "s3_probe", dt, n, "req/s",
                 "in-process %.0f req/s, %d conns" % (r["requests_per_second"], r["connections_opened"]))

        flags = ["--transfers", str(c), "--checkers", str(c), "--no-check-dest", "--s3-no-check-bucket",
                 "--s3-no-head"]
        dt, _ = self.rclone(["copy"] + flags + [src, "src:%s/rclone/" % bucket])
        self.row(label_put, "rclone", dt, n, "req/s")
        dst = os.path.join(self.work, "small-rclone")
        dt, _ = self.rclone(["copy", "--transfers", str(c), "--checkers", str(c), "--no-check-dest",
                             "src:%s/rclone/" % bucket, dst])
        self.check_count(dst, n, "rclone")
        self.row(label_get, "rclone", dt, n, "req/s", "plus listing")

        dt, _ = self.aws(["s3", "cp", "--recursive", "--only-show-errors", src,
                          "s3://%s/aws/" % bucket], self.aws_small_cfg)
        self.row(label_put, "aws s3 cp", dt, n, "req/s")
        dst = os.path.join(self.work, "small-aws")
        dt, _ = self.aws(["s3", "cp", "--recursive", "--only-show-errors", "s3://%s/aws/" % bucket, dst],
                         self.aws_small_cfg)
        self.check_count(dst, n, "aws")
        self.row(label_get, "aws s3 cp", dt, n, "req/s", "plus listing")
        shutil.rmtree(src)

    @staticmethod
    def check_count(path, n, who):
        got = len(os.listdir(path))
        if got != n:
            raise SystemExit("%s downloaded %d of %d files" % (who, got, n))
        shutil.rmtree(path)

    # ---- one big object
    def big(self, bucket):
        size = self.args.big_mib * MIB
        src = os.path.join(self.work, "big-src")
        with open(src, "wb") as f:
            for _ in range(self.args.big_mib // 16):
                f.write(os.urandom(16 * MIB))
            f.write(os.urandom(size % (16 * MIB)))
        digest = sha256_file(src)
        mb = size / 1e6
        up, down = "%d MiB upload" % self.args.big_mib, "%d MiB download" % self.args.big_mib
        dst = os.path.join(self.work, "big-dst")

        def verify(who):
            if sha256_file(dst) != digest:
                raise SystemExit("%s: downloaded bytes differ" % who)
            os.unlink(dst)

        dt, r = self.probe("mput", bucket, "big/probe", src, 16)
        self.row(up, "s3_probe", dt, mb, "MB/s", "%d parts of 16 MiB, 8 in flight" % r["parts"])
        dt, _ = self.probe("get", bucket, "big/probe", dst, 16)
        verify("s3_probe")
        self.row(down, "s3_probe", dt, mb, "MB/s", "16 MiB ranges, 8 in flight")

        dt, _ = self.aws(["s3", "cp", "--only-show-errors", src, "s3://%s/big/aws" % bucket], self.aws_big_cfg)
        self.row(up, "aws s3 cp", dt, mb, "MB/s", "16 MiB chunks, 8 in flight")
        dt, _ = self.aws(["s3", "cp", "--only-show-errors", "s3://%s/big/aws" % bucket, dst], self.aws_big_cfg)
        verify("aws")
        self.row(down, "aws s3 cp", dt, mb, "MB/s", "16 MiB chunks, 8 in flight")

        dt, _ = self.rclone(["copyto", "--s3-chunk-size", "16M", "--s3-upload-concurrency", "8",
                             "--s3-upload-cutoff", "16M", "--s3-no-check-bucket", src,
                             "src:%s/big/rclone" % bucket])
        self.row(up, "rclone", dt, mb, "MB/s", "16 MiB chunks, 8 in flight")
        dt, _ = self.rclone(["copyto", "--multi-thread-streams", "8", "--multi-thread-cutoff", "16M",
                             "src:%s/big/rclone" % bucket, dst])
        verify("rclone")
        self.row(down, "rclone", dt, mb, "MB/s", "8 streams")
        os.unlink(src)

    def table(self):
        out = ["", "| test | client | seconds | rate | notes |", "| --- | --- | ---: | ---: | --- |"]
        for test, client, seconds, rate, unit, note in self.rows:
            out.append("| %s | %s | %.2f | %.1f %s | %s |" % (test, client, seconds, rate, unit, note))
        return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small-count", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--skip-small", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    args = ap.parse_args()
    if not os.access(PROBE, os.X_OK):
        raise SystemExit("no s3_probe at %s (set ARCHIE_S3_PROBE)" % PROBE)
    asan = is_asan_build(PROBE)
    print("s3_probe: %s (%s)" % (os.path.realpath(PROBE),
                                 "ASan build: numbers are pessimistic" if asan else "no ASan"))
    for tool in (AWS, RCLONE):
        v = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout.splitlines()
        print("%s: %s" % (tool, v[0] if v else "?"))
    print("cpus: %d" % os.cpu_count(), flush=True)
    work = tempfile.mkdtemp(prefix="archie-s3-bench-")
    try:
        with Rig(nats=False, ceph=True, memstore_bytes=12 << 30) as r:
            bench = Bench(r.ceph, work, args)
            r.ceph.make_bucket("bench")
            if not args.skip_small:
                bench.small("bench")
            if not args.skip_big:
                bench.big("bench")
            print(bench.table())
            print("\ncommands run:")
            for c in bench.commands:
                print("  " + c)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
