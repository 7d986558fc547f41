#!/usr/bin/python3
"""`archie verify` next to `rclone check` on the same two buckets, in one run.

    bench/verify_bench.py [--counts 10000,100000] [--json out.json] [--checkers 8] [--checksum]

For each count N (ascending) it grows one bucket to N small objects, then times `archie
verify` and `rclone check` comparing that bucket as seen through RGW endpoint 1 (the source)
with the same bucket through RGW endpoint 2 (the destination): wall time, keys/s, CPU seconds
(user + system, os.wait4) and peak RSS (VmHWM sampled every 10 ms). Both tools list both
sides completely and compare size and ETag from the listings; neither reads object data
(with --checksum both read every object from both sides and compare the bytes: archie
verify --checksum, rclone check --download). One bucket seen twice costs the
servers the same listing work as two equal buckets and halves the filling, which on a slow
machine (RGW on memstore takes a few hundred PUTs per second) dominates the run. Peak RSS
at several counts shows whether memory grows with the bucket: archie keeps a few listing
pages per side, so its figure should stay flat (`--counts 10000,100000,200000` includes the
issue's memory check).

It starts the test rig (a throwaway Ceph cluster with two RADOS Gateway endpoints on
127.0.0.1) and stops it at the end. Python 3 standard library only; run it with
/usr/bin/python3. It prints a table and never fails because a machine is slow.
"""

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from testkit.ceph_rgw import RCLONE  # noqa: E402
from testkit.config_builder import route, s3_store, to_toml  # noqa: E402
from testkit.rig import Rig  # noqa: E402


def log(msg):
    sys.stderr.write("[verify-bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def archie_binary(explicit):
    for candidate in (explicit, os.environ.get("ARCHIE_BIN"), os.path.join(REPO, "build-release", "src", "archie"),
                      os.path.join(REPO, "build", "src", "archie")):
        if candidate and os.path.exists(candidate):
            return candidate
    sys.exit("no archie binary: build build-release/ or set ARCHIE_BIN")


def peak_rss_kib(pid):
    """VmHWM of a running process (its own peak, reset by exec), or 0 once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(argv, env):
    """Runs argv; returns (exit code, wall s, cpu s, peak RSS MiB, stdout tail).

    The peak is sampled from /proc (VmHWM) while the tool runs: wait4's ru_maxrss would
    count the pages the child shared with this (large) Python process before its exec."""
    with tempfile.TemporaryFile() as out:
        start = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        peak = 0
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak = max(peak, peak_rss_kib(proc.pid))
            time.sleep(0.01)
        wall = time.monotonic() - start
        out.seek(0)
        tail = out.read()[-2000:].decode(errors="replace")
    return os.waitstatus_to_exitcode(status), wall, ru.ru_utime + ru.ru_stime, peak / 1024.0, tail


def fill(ceph, bucket, start, n, threads=32):
    """Objects start..n-1 (64 bytes each, distinct) into the bucket."""
    def put(i):
        key = "bench/%03d/%08d" % (i % 997, i)
        status, _, data = ceph.s3("PUT", "/%s/%s" % (bucket, key), endpoint_index=i % 2, body=("%064d" % i).encode())
        if status != 200:
            raise RuntimeError("PUT %s/%s: %d %s" % (bucket, key, status, data[:200]))
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for done, _ in enumerate(pool.map(put, range(start, n)), start + 1):
            if done % 10000 == 0:
                log("filled %d/%d" % (done, n))


def config(ceph, src, dst):
    """Both sides as user "archie" (one cluster, two endpoints); verify needs no [nats]."""
    a_key, a_secret = ceph.users["archie"]
    return to_toml({"stores": {"src": s3_store(ceph.endpoints[0], a_key, a_secret),
                               "dst": s3_store(ceph.endpoints[1], a_key, a_secret)},
                    "route": [route("src", src, [("dst", dst)])]})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--counts", default="10000,100000", help="comma-separated object counts")
    ap.add_argument("--checkers", type=int, default=8, help="rclone --checkers")
    ap.add_argument("--archie", help="archie binary (default: $ARCHIE_BIN, build-release/, build/)")
    ap.add_argument("--checksum", action="store_true",
                    help="compare bytes: archie verify --checksum against rclone check --download")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    archie = archie_binary(args.archie)
    counts = [int(c) for c in args.counts.split(",") if c]
    log("archie: %s; rclone: %s" % (archie, RCLONE))
    rig = Rig(nats=False, ceph=True)
    rig.start()
    results = []
    work = tempfile.mkdtemp(prefix="archie-verify-bench-")
    try:
        ceph = rig.ceph
        src = dst = "vbench"
        ceph.make_bucket(src, user="archie", endpoint_index=0)
        filled = 0
        for n in sorted(counts):
            log("growing the bucket to %d objects" % n)
            fill(ceph, src, filled, n)
            filled = n
            path = os.path.join(work, "verify-%d.toml" % n)
            with open(path, "w") as f:
                f.write(config(ceph, src, dst))
            env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
            content = ["--checksum"] if args.checksum else []
            runs = [("archie verify", [archie, "verify", "--config", path, "--json"] + content, env),
                    ("rclone check", [RCLONE, "check", "src:" + src, "dst:" + dst, "--checkers",
                                      str(args.checkers), "--s3-no-check-bucket"]
                     + (["--download"] if args.checksum else []),
                     ceph.rclone_env(src_user="archie", dst_user="archie", src_index=0, dst_index=1))]
            for tool, argv, tool_env in runs:
                log("%s over %d keys" % (tool, n))
                code, wall, cpu, rss, tail = timed(argv, tool_env)
                row = {"tool": tool, "objects": n, "exit": code, "seconds": round(wall, 2),
                       "keys_per_s": round(n / wall) if wall > 0 else None, "cpu_s": round(cpu, 2),
                       "max_rss_mib": round(rss, 1)}
                if code != 0:
                    row["output_tail"] = tail
                results.append(row)
    finally:
        rig.stop()
    print("%-14s %10s %6s %9s %10s %8s %12s" % ("tool", "objects", "exit", "seconds", "keys/s", "cpu s", "max RSS MiB"))
    for r in results:
        print("%-14s %10d %6d %9.2f %10s %8.2f %12.1f" % (r["tool"], r["objects"], r["exit"], r["seconds"],
                                                           r["keys_per_s"], r["cpu_s"], r["max_rss_mib"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"archie": archie, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
