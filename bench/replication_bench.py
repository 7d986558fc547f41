#!/usr/bin/python3
"""End-to-end replication benchmark: archie next to rclone and the AWS CLI on the same servers.

    bench/replication_bench.py [--quick] [--scenarios 1,2,3,4,5,6] [--json out.json]

Scenarios (bench/README.md has the method, the fairness choices and how to read the table):
  1  N x 4 KiB objects (--objects, default 10,000): archie from their events,
     `rclone copy`, `aws s3 sync` (down to a local directory, then up)
  2  one big object (--big-mib, default 1024): archie, `rclone copyto`, `aws s3 cp` (two hops,
     and a streamed `aws s3 cp SRC - | aws s3 cp - DST` pipe)
  3  M x 32 MiB objects (--medium-count, default 100): archie, `rclone copy`, `aws s3 sync`
  4  fan-out: the first --fanout-count (30) of scenario 3's objects to 1 and to 3 destinations,
     each its own store behind its own bandwidth-limited link (--fanout-mbps,
     testkit/proxies/throttle_proxy.py); archie only
  5  latency: a steady light load (--latency-rate events/s of 4 KiB for --latency-seconds);
     p50/p90/p99 from event publish to the destination holding the object, and per stage
  6  skip-only: --skip-events events archie acknowledges without a store request (access
     events, lifecycle expiries, excluded keys); msg/s and CPU per message

On the rig, every row also counts the requests the RGW endpoints answered (perf counters and
access log): requests per object, by kind, and the bytes the source sent.

Every figure is measured in one run on the same servers: the test rig (nats-server and a
throwaway Ceph cluster with two RGW endpoints, started and stopped here), or external servers
named by BENCH_* environment variables (see bench/README.md). Python 3 standard library only;
run with /usr/bin/python3. It prints a table and writes JSON; it never fails because a
machine is slow (a run that errors or times out is reported as such, the others go on).
"""
import argparse
import os
import shutil
import signal
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench.replication.harness import Harness  # noqa: E402


def default_archie():
    env = os.environ.get("ARCHIE_BIN")
    if env:
        return env
    release = os.path.join(REPO, "build-release", "src", "archie")
    return release if os.path.exists(release) else os.path.join(REPO, "build", "src", "archie")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--quick", action="store_true",
                    help="small counts: 500 objects, 256 MiB, 20 x 32 MiB (fan-out: 20), 10 s of latency load, "
                         "5,000 skipped events")
    ap.add_argument("--scenarios", default="1,2,3,4,5,6,7", help="comma-separated subset of 1..7 (default all)")
    ap.add_argument("--tools", default="archie,rclone,aws", help="comma-separated subset of archie,rclone,aws")
    ap.add_argument("--json", help="write results here (default: a file under the temp dir, printed at the end)")
    ap.add_argument("--archie", default=default_archie(),
                    help="archie binary (default: $ARCHIE_BIN, else build-release/src/archie, else build/src/archie)")
    ap.add_argument("--scale-objects", type=int, help="scenario 7 object count (default 20000; --quick 2000)")
    ap.add_argument("--scale-processes", default="1,2,4", help="scenario 7: archie process counts to run")
    ap.add_argument("--archie-baseline", metavar="PATH",
                    help="another archie build (an earlier release) run right after archie in scenarios 1-3, "
                         "for a same-run comparison")
    ap.add_argument("--baseline-label", default="archie baseline", help="its name in the table")
    ap.add_argument("--objects", type=int, help="scenario 1 object count (default 10000; --quick 500)")
    ap.add_argument("--small-kib", type=int, default=4, help="small object size (scenarios 1 and 5)")
    ap.add_argument("--big-mib", type=int, help="scenario 2 object size (default 1024; --quick 256)")
    ap.add_argument("--medium-count", type=int, help="scenarios 3/4 object count (default 100; --quick 20)")
    ap.add_argument("--medium-mib", type=int, default=32, help="scenarios 3/4 object size")
    ap.add_argument("--latency-rate", type=float, default=50.0, help="scenario 5 events per second")
    ap.add_argument("--latency-seconds", type=float, help="scenario 5 duration (default 20; --quick 10)")
    ap.add_argument("--fanout-mbps", type=float, default=40.0,
                    help="scenario 4: bandwidth of each destination's link, MB/s (0: no links, one endpoint)")
    ap.add_argument("--fanout-count", type=int,
                    help="scenario 4: how many of the --medium-mib objects (default 30; --quick 20)")
    ap.add_argument("--skip-events", type=int, help="scenario 6 event count (default 50000; --quick 5000)")
    ap.add_argument("--concurrency", type=int, default=64,
                    help="archie worker.concurrency, rclone --transfers/--checkers, aws max_concurrent_requests")
    ap.add_argument("--part-size-mib", type=int, default=16, help="archie part_size_mib; rclone/aws chunk size")
    ap.add_argument("--buffer-budget-mib", type=int, default=512, help="archie buffer_budget_mib")
    ap.add_argument("--parts-in-flight", type=int, default=8,
                    help="archie parts_in_flight; rclone --s3-upload-concurrency; aws requests for one object")
    ap.add_argument("--parts-per-get", type=int,
                    help="archie's source store parts_per_get (default: archie's own, 1)")
    ap.add_argument("--fetch-expires", default="1s", help="archie queue.fetch_expires")
    ap.add_argument("--rclone-no-check-dest", action="store_true", help="add --no-check-dest to rclone")
    ap.add_argument("--rclone-extra", default="", help="extra rclone flags (one string)")
    ap.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every timeout")
    ap.add_argument("--keep-work", action="store_true", help="keep the work dir (configs, archie logs)")
    a = ap.parse_args(argv)
    q = a.quick
    a.objects = a.objects or (500 if q else 10000)
    a.big_mib = a.big_mib or (256 if q else 1024)
    a.medium_count = a.medium_count or (20 if q else 100)
    a.latency_seconds = a.latency_seconds or (10.0 if q else 20.0)
    a.skip_events = a.skip_events or (5000 if q else 50000)
    a.fanout_count = a.fanout_count or (20 if q else 30)
    try:
        a.scenario_set = {int(s) for s in a.scenarios.split(",") if s.strip()}
    except ValueError:
        ap.error("--scenarios takes numbers, e.g. 1,3,5")
    if not a.scenario_set or not a.scenario_set <= {1, 2, 3, 4, 5, 6, 7}:
        ap.error("--scenarios: choose from 1,2,3,4,5,6,7")
    try:
        a.scale_processes = [int(p) for p in a.scale_processes.split(",") if p.strip()]
    except ValueError:
        ap.error("--scale-processes takes numbers, e.g. 1,2,4")
    if not a.scale_processes or min(a.scale_processes) < 1:
        ap.error("--scale-processes: at least one process count, each 1 or more")
    a.scale_objects = a.scale_objects or (2000 if q else 20000)
    a.tool_set = {t.strip() for t in a.tools.split(",") if t.strip()}
    if not a.tool_set <= {"archie", "rclone", "aws"}:
        ap.error("--tools: choose from archie,rclone,aws")
    if not os.access(a.archie, os.X_OK):
        ap.error("no archie binary at %s (set ARCHIE_BIN or --archie)" % a.archie)
    if a.archie_baseline and not os.access(a.archie_baseline, os.X_OK):
        ap.error("no archie binary at %s (--archie-baseline)" % a.archie_baseline)
    if not a.json:
        a.json = os.path.join(tempfile.gettempdir(), "archie-replication-bench-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    a.json = os.path.abspath(a.json)
    return a


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    args = parse_args(argv)
    work = tempfile.mkdtemp(prefix="archie-repl-bench-")
    h = Harness(args, work)
    # SIGTERM/SIGINT unwind through the finally below: archie and the rig stop, temp dirs go.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        h.setup()
        h.run()
    except KeyboardInterrupt:
        h.report.problems.append("interrupted (SIGINT): the results are partial")
    except SystemExit as e:
        if isinstance(e.code, int) and e.code >= 128:
            h.report.problems.append("interrupted (signal %d): the results are partial" % (e.code - 128))
        raise
    finally:
        try:
            h.report.save()
            if h.report.results or h.report.problems:
                h.report.print_summary()
        finally:
            h.close()
            if args.keep_work:
                print("work dir kept: %s" % work)
            else:
                shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
