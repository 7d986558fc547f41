"""The servers the benchmark measures on: the test rig (nats-server and a throwaway Ceph
cluster with two RGW endpoints, testkit/rig.py) or external servers named by BENCH_* environment
variables; their buckets, their health, cleaning up after a run, and the bandwidth-limited
links of the fan-out scenario (testkit/proxies/throttle_proxy.py)."""
import os
import subprocess
import sys

from testkit.daemons import terminate
from testkit.nats_client import NatsClient
from testkit.net import LOOPBACK, free_port
from testkit.rig import Rig
from testkit.sigv4 import S3_REGION

from .common import GiB, KiB, MiB, REPO, RunError, log, start
from .measurement import RgwRequests, proc_meminfo_kib
from .s3_side import S3Side

THROTTLE_PROXY = os.path.join(REPO, "testkit", "proxies", "throttle_proxy.py")


def medium_objects(args):
    """How many 32 MiB source objects scenarios 3 and 4 need (4 uses the first --fanout-count)."""
    a = args
    return max(a.medium_count if 3 in a.scenario_set else 0, a.fanout_count if 4 in a.scenario_set else 0)


def memstore_bytes(args):
    """Ceph memstore keeps every object in RAM: size it for the largest scenario (source plus
    the destinations alive at once; destinations are deleted after each run)."""
    a = args
    sc = a.scenario_set
    need = 0
    if 1 in sc:
        need = max(need, 2 * a.objects * (a.small_kib * KiB + 4 * KiB))
    if 2 in sc:
        need = max(need, 2 * a.big_mib * MiB)
    if 7 in sc:
        need = max(need, 2 * a.scale_objects * (a.small_kib * KiB + 4 * KiB))
    source = medium_objects(a) * a.medium_mib * MiB  # scenarios 3 and 4 share the source
    if 3 in sc:
        need = max(need, source + a.medium_count * a.medium_mib * MiB)
    if 4 in sc:
        need = max(need, source + 3 * a.fanout_count * a.medium_mib * MiB)
    if 5 in sc:
        need = max(need, 2 * a.latency_rate * a.latency_seconds * 8 * KiB)
    size = max(4 * GiB, int(need * 1.3) + 2 * GiB)
    avail = proc_meminfo_kib("MemAvailable")
    # The OSD's resident memory runs ~1.3x the data it holds (seen: 17 GiB for 13.4 GiB).
    if avail and 1.3 * need > 0.9 * avail * KiB:
        log("WARNING: the memstore OSD may need %.1f GiB of RAM; %.1f GiB available"
            % (1.3 * need / GiB, avail / GiB * KiB))
    return size


class Servers:
    """The source and destination S3 sides, their buckets, NATS (a client, the stream, subject
    and durable archie uses) and the server processes measured (server_pids; empty with
    external servers). Problems met while cleaning up go to `problems`."""

    def __init__(self, args, problems):
        self.args = args
        self.problems = problems
        self.rig = None
        self.nats = None
        self.server_pids = {}
        self.link_pids = {}
        self.rgw_requests = None

    def setup(self):
        a = self.args
        ext_s3 = bool(os.environ.get("BENCH_SRC_ENDPOINT"))
        ext_nats = bool(os.environ.get("BENCH_NATS_URL"))
        ca = os.environ.get("BENCH_CA_FILE") or None
        if ext_s3 and not os.environ.get("BENCH_DST_ENDPOINT"):
            raise SystemExit("BENCH_SRC_ENDPOINT is set but BENCH_DST_ENDPOINT is not: set both (see bench/README.md)")
        if not (ext_s3 and ext_nats):
            memstore = 1 << 30 if ext_s3 else memstore_bytes(a)
            self.rig = Rig(nats=not ext_nats, ceph=not ext_s3, memstore_bytes=memstore)
            self.rig.start()
        if ext_s3:
            def side(p, name):
                e = os.environ
                missing = [k for k in ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "BUCKET") if not e.get(p + k)]
                if missing:
                    raise SystemExit("missing " + ", ".join(p + k for k in missing))
                return S3Side(name, e[p + "ENDPOINT"], e[p + "ACCESS_KEY"], e[p + "SECRET_KEY"],
                              e.get(p + "REGION") or "us-east-1", e.get(p + "PROVIDER") or "Other", ca)
            self.src = side("BENCH_SRC_", "src")
            self.dst = side("BENCH_DST_", "dst")
            self.src_bucket = os.environ["BENCH_SRC_BUCKET"]
            base = os.environ["BENCH_DST_BUCKET"]
            self.dst_buckets = [base, os.environ.get("BENCH_DST_BUCKET_2") or base + "-2",
                                os.environ.get("BENCH_DST_BUCKET_3") or base + "-3"]
            self.server_pids = {}
            self.rgw_requests = None
            mode = "external S3"
        else:
            ceph = self.rig.ceph
            ak, sk = ceph.users["archie"]
            # Same user on both endpoints (one Ceph cluster behind two RGWs): every destination
            # bucket, archie's included, is owned by 'archie' and written through endpoint 1.
            self.src = S3Side("src", ceph.endpoints[0], ak, sk, S3_REGION, "Ceph")
            self.dst = S3Side("dst", ceph.endpoints[1], ak, sk, S3_REGION, "Ceph")
            self.src_bucket = "bench-src"
            self.dst_buckets = ["bench-dst", "bench-dst-2", "bench-dst-3"]
            self.server_pids = {"ceph-mon": ceph.mon.pid, "ceph-osd": ceph.osd.pid}
            for i, name in enumerate(ceph.rgw_names):
                self.server_pids["radosgw." + name.rsplit(".", 1)[-1]] = ceph.rgw_pid(i)
            self.rgw_requests = RgwRequests(ceph, {0: "src", 1: "dst"})
            mode = "rig (Ceph RGW x2, memstore %.1f GiB)" % (self.rig.memstore_bytes / GiB)
        if ext_nats:
            self.nats_url = os.environ["BENCH_NATS_URL"]
            mode += ", external NATS"
        else:
            self.nats_url = self.rig.nats.url
            self.server_pids["nats-server"] = self.rig.nats.pid
            mode += ", rig nats-server"
        self.stream = os.environ.get("BENCH_STREAM") or "archie-bench"
        self.subject = os.environ.get("BENCH_SUBJECT") or "archie-bench.events"
        self.durable = os.environ.get("BENCH_DURABLE") or "archie-bench"
        self.mode = mode
        self.src.ensure_bucket(self.src_bucket)
        for b in self.dst_buckets if 4 in a.scenario_set else self.dst_buckets[:1]:
            self.dst.ensure_bucket(b)
        self.nats = NatsClient(self.nats_url.split(","), timeout=10)
        self.secrets = [self.src.secret_key, self.dst.secret_key]

    def close(self):
        if self.nats:
            try:
                self.nats.close()
            except Exception:  # noqa: BLE001
                pass
        if self.rig:
            self.rig.close()

    # ---- health ------------------------------------------------------------------------
    def dead_servers(self):
        """Rig server processes that have died (the kernel's OOM killer picks the memstore OSD
        first when RAM runs out); [] with external servers."""
        dead = []
        for name, pid in self.server_pids.items():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError, TypeError):
                state = "X"
            if state in ("Z", "X"):
                dead.append(name)
        return dead

    def check_servers(self):
        """RunError when a server died: a run would otherwise wait for its timeout."""
        dead = self.dead_servers()
        if dead:
            raise RunError("server process died: %s (out of memory? see dmesg); later runs are skipped"
                           % ", ".join(dead))

    # ---- the objects -------------------------------------------------------------------
    def verify(self, m, bucket, prefix, objects, nbytes):
        """The destination holds exactly `objects` objects and `nbytes` bytes under prefix."""
        got = self.dst.list(bucket, prefix)
        have_n, have_b = len(got), sum(s for _, s, _ in got)
        m.setdefault("verified", []).append({"bucket": bucket, "prefix": prefix, "objects": have_n, "bytes": have_b})
        if have_n != objects or have_b != nbytes:
            raise RunError("destination %s/%s holds %d objects, %d bytes; expected %d, %d"
                           % (bucket, prefix, have_n, have_b, objects, nbytes))

    def clean_dst(self, bucket, prefix):
        if self.dead_servers():  # the rig is lost: requests to it would only hang
            return
        try:
            self.dst.delete_prefix(bucket, prefix)
        except Exception as e:  # noqa: BLE001
            self.problems.append("cleanup of %s/%s failed: %s" % (bucket, prefix, e))

    def drop_source(self, prefix):
        if self.dead_servers():
            return
        try:
            self.src.delete_prefix(self.src_bucket, prefix)
        except Exception as e:  # noqa: BLE001
            self.problems.append("cleanup of the source %s failed: %s" % (prefix, e))
        self.gc()

    def gc(self):
        """Let RGW free deleted data now (its GC would take a few seconds); rig only."""
        if self.rig and self.rig.ceph and not self.dead_servers():
            try:
                self.rig.ceph.radosgw_admin("gc", "process", "--include-all", timeout=600, check=False)
            except Exception as e:  # noqa: BLE001
                log("gc process: %s" % e)

    # ---- the fan-out links -------------------------------------------------------------
    def start_links(self, count, mbps):
        """`count` bandwidth-limited links (testkit/proxies/throttle_proxy.py, one process each) in front
        of the destination endpoint: separate bottlenecks, like three WAN links to three sites."""
        if self.dst.scheme != "http":
            raise RunError("the fan-out links are plain TCP proxies on 127.0.0.1; the destination must be http://")
        upstream = "%s:%d" % (self.dst.host, self.dst.port or 80)
        links = []
        try:
            for _ in range(count):
                port = free_port()
                proc = start([sys.executable, THROTTLE_PROXY, "--upstream", upstream, "--port", str(port),
                              "--mbps", str(mbps)], os.environ, stdout=subprocess.PIPE)
                links.append(proc)
                if not proc.stdout.readline().startswith(b"listening"):
                    raise RunError("throttle proxy on port %d did not start" % port)
                proc.endpoint = "http://%s:%d" % (LOOPBACK, port)
        except BaseException:
            self.stop_links(links)
            raise
        self.link_pids = {"link-%d" % i: p.pid for i, p in enumerate(links)}
        return links

    def stop_links(self, links):
        for proc in links:
            terminate(proc, timeout=10)
            proc.stdout.close()
        self.link_pids = {}
