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
     tests/rig/throttle_proxy.py); archie only
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
import base64
import ctypes
import datetime
import hashlib
import hmac
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as xml_escape

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.integration.harness import minio_event  # noqa: E402
from tests.rig import rig as rigmod  # noqa: E402
from tests.rig.nats_client import NatsClient, NatsError  # noqa: E402

THROTTLE_PROXY = os.path.join(REPO, "tests", "rig", "throttle_proxy.py")

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------------------------
# a minimal S3 client for housekeeping (create bucket, list, batch delete): http and https

class S3Side:
    """One S3 endpoint with one set of credentials (source or destination side)."""

    def __init__(self, name, endpoint, access_key, secret_key, region="us-east-1", provider="Other",
                 ca_file=None):
        self.name = name
        self.endpoint = endpoint.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.provider = provider
        self.ca_file = ca_file
        u = urllib.parse.urlsplit(self.endpoint)
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.netloc = u.netloc

    def _conn(self, timeout):
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _sign(self, method, path, query, headers, payload_hash):
        now = datetime.datetime.now(datetime.timezone.utc)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = payload_hash
        headers["host"] = self.netloc
        names = sorted(headers)
        canonical = "\n".join([
            method,
            urllib.parse.quote(path, safe="/-_.~"),
            "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                     for k, v in sorted(query)),
            "".join("%s:%s\n" % (n, str(headers[n]).strip()) for n in names),
            ";".join(names),
            payload_hash])
        scope = "%s/%s/s3/aws4_request" % (day, self.region)
        string_to_sign = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
        key = ("AWS4" + self.secret_key).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
            self.access_key, scope, ";".join(names), signature)

    def request(self, method, path, query=(), body=b"", headers=None, timeout=120):
        """path: unencoded '/bucket/key'. Returns (status, body bytes)."""
        query = [(str(k), str(v)) for k, v in query]
        hdrs = {k.lower(): v for k, v in (headers or {}).items()}
        self._sign(method, path, query, hdrs, hashlib.sha256(body).hexdigest())
        target = urllib.parse.quote(path, safe="/-_.~")
        if query:
            target += "?" + "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                                     for k, v in query)
        del hdrs["host"]
        for attempt in range(4):
            conn = self._conn(timeout)
            try:
                conn.request(method, target, body=body if (body or method in ("PUT", "POST")) else None, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status >= 500 and attempt < 3:
                    time.sleep(0.5 * (attempt + 1))
                    continue
                return resp.status, data
            except (OSError, http.client.HTTPException):
                if attempt == 3:
                    raise
                time.sleep(0.5 * (attempt + 1))
            finally:
                conn.close()
        raise RuntimeError("unreachable")

    def ensure_bucket(self, bucket):
        status, body = self.request("PUT", "/" + bucket)
        if status == 200 or (status == 409 and b"BucketAlreadyOwnedByYou" in body):
            return
        if status == 409:
            raise RuntimeError("bucket %s exists and is owned by someone else on %s" % (bucket, self.endpoint))
        raise RuntimeError("create bucket %s on %s: HTTP %d %s" % (bucket, self.endpoint, status, body[:300]))

    def list(self, bucket, prefix=""):
        """[(key, size, etag)] under prefix, every page."""
        out, token = [], None
        while True:
            q = [("list-type", "2"), ("prefix", prefix), ("max-keys", "1000")]
            if token:
                q.append(("continuation-token", token))
            status, body = self.request("GET", "/" + bucket, q)
            if status != 200:
                raise RuntimeError("list %s/%s on %s: HTTP %d %s" % (bucket, prefix, self.endpoint, status, body[:300]))
            root = ET.fromstring(body)
            ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for c in root.findall(ns + "Contents"):
                out.append((c.findtext(ns + "Key"), int(c.findtext(ns + "Size") or 0),
                            (c.findtext(ns + "ETag") or "").strip('"')))
            if (root.findtext(ns + "IsTruncated") or "false").lower() != "true":
                return out
            token = root.findtext(ns + "NextContinuationToken")
            if not token:
                return out

    def delete_prefix(self, bucket, prefix):
        """Batch-delete every key under prefix (DeleteObjects, 1000 a request); count deleted."""
        if not prefix:
            raise ValueError("refusing to empty a whole bucket")
        keys = [k for k, _, _ in self.list(bucket, prefix)]
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            body = ("<Delete><Quiet>true</Quiet>%s</Delete>" % "".join(
                "<Object><Key>%s</Key></Object>" % xml_escape(k) for k in chunk)).encode()
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            status, data = self.request("POST", "/" + bucket, [("delete", "")], body,
                                        {"content-md5": md5, "content-type": "application/xml"})
            if status != 200 or b"<Error>" in data:
                raise RuntimeError("delete under %s/%s: HTTP %d %s" % (bucket, prefix, status, data[:300]))
        return len(keys)


# --------------------------------------------------------------------------------------------
# processes: CPU and memory

def proc_cpu(pid):
    """(user s, sys s) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


_PR_SET_PDEATHSIG = 1
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _child_setup():
    # Between fork and exec: die with this process, own process group (for the watchdog).
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def start(argv, env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr_path=None):
    err = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=err, start_new_session=True,
                                close_fds=True, preexec_fn=_child_setup)
    finally:
        if stderr_path:
            err.close()


def reap(proc):
    """os.wait4 on a Popen: (exit code, rusage). The rusage covers the child and its reaped children."""
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, ru


def killpg(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-n:])
    except OSError:
        return ""


def redact(text, secrets):
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


class RunError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# requests counted at the server (rig only): RGW perf counters and its access log

RGW_COUNTERS = ("req", "failed_req", "get", "get_b", "put", "put_b")
# beast's access line: ... "HEAD /bucket/key HTTP/1.1" 200 4096 ...
ACCESS_LINE = re.compile(rb' beast: .*?"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d+) (\d+)')


def admin_socket(path, prefix, timeout=5.0):
    """One command to a Ceph daemon's admin socket (what `ceph --admin-daemon` does, without
    starting a Python CLI per snapshot): a JSON command and a NUL, then a 4-byte length and JSON."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(json.dumps({"prefix": prefix}).encode() + b"\0")
        data = b""
        need = None
        while need is None or len(data) < need + 4:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise OSError("admin socket %s closed after %d bytes" % (path, len(data)))
            data += chunk
            if need is None and len(data) >= 4:
                need = struct.unpack(">I", data[:4])[0]
    return json.loads(data[4:4 + need])


def request_kind(method, target):
    """What an S3 request was, from its method and target (path-style addressing)."""
    path, _, query = target.partition("?")
    params = {kv.split("=", 1)[0] for kv in query.split("&") if kv}
    on_object = path.strip("/").count("/") >= 1
    if method == "GET":
        if "uploads" in params:
            return "LIST uploads"
        if "uploadId" in params:
            return "LIST parts"
        return "GET" if on_object else "LIST"
    if method == "HEAD":
        return "HEAD" if on_object else "HEAD bucket"
    if method == "PUT":
        return "PUT part" if "partNumber" in params else ("PUT" if on_object else "PUT bucket")
    if method == "POST":
        if "uploads" in params:
            return "MPU create"
        if "uploadId" in params:
            return "MPU complete"
        return "POST"
    return method


class RgwRequests:
    """Requests the rig's radosgw endpoints answered during a run. The perf counters (`perf
    dump`, section rgw) are exact and synchronous; this Ceph release does not split HEAD from GET
    there (a HEAD counts as a `get` of 0 bytes) and its `get_b` is one byte short per GET. So the
    split by kind and the exact bytes sent come from beast's access lines in each gateway's log,
    the first `req` lines written after the snapshot."""

    def __init__(self, ceph, roles):
        # roles: the endpoint index -> "src"/"dst" as the benchmark uses them
        self.gateways = [{"name": "%s (%s)" % (roles.get(i, "unused"), name.rsplit(".", 1)[-1]),
                          "asok": os.path.join(ceph.run_dir, "%s.asok" % name),
                          "log": os.path.join(ceph.log_dir, "%s.log" % name),
                          "source": roles.get(i) == "src"}
                         for i, name in enumerate(ceph.rgw_names)]

    def snapshot(self):
        snap = []
        for g in self.gateways:
            perf = admin_socket(g["asok"], "perf dump")["rgw"]
            try:
                offset = os.path.getsize(g["log"])
            except OSError:
                offset = 0
            snap.append(({k: perf.get(k, 0) for k in RGW_COUNTERS}, offset))
        return snap

    def delta(self, before, after, objects, wait_for_log=10.0):
        """Per-gateway deltas and the totals a row shows."""
        out = {"endpoints": {}, "total": 0, "source_bytes_read": 0, "log_complete": True}
        for g, (perf0, offset), (perf1, _) in zip(self.gateways, before, after):
            d = {k: perf1[k] - perf0[k] for k in RGW_COUNTERS}
            kinds, failures, get_bytes, lines = self._access_lines(g["log"], offset, d["req"], wait_for_log)
            d.update(by_kind=kinds, failed_by_kind=failures, get_bytes_sent=get_bytes, access_lines=lines)
            out["log_complete"] = out["log_complete"] and lines == d["req"]
            out["endpoints"][g["name"]] = d
            out["total"] += d["req"]
            if g["source"]:
                out["source_bytes_read"] += get_bytes if lines == d["req"] else d["get_b"]
        out["per_object"] = out["total"] / objects if objects else None
        return out

    @staticmethod
    def _access_lines(path, offset, count, wait):
        """The first `count` access lines after `offset` (the log thread may lag a little)."""
        deadline = time.monotonic() + wait
        while True:
            kinds, failures, get_bytes, seen = {}, {}, 0, 0
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    for line in f:
                        m = ACCESS_LINE.search(line)
                        if not m:
                            continue
                        method, target, status, nbytes = m.group(1).decode(), m.group(2).decode(), m.group(3), m.group(4)
                        kind = request_kind(method, target)
                        kinds[kind] = kinds.get(kind, 0) + 1
                        if int(status) >= 400:  # e.g. the HEAD 404 of an object not copied yet
                            failure = "%s %s" % (kind, status.decode())
                            failures[failure] = failures.get(failure, 0) + 1
                        if kind == "GET" and status in (b"200", b"206"):
                            get_bytes += int(nbytes)
                        seen += 1
                        if seen == count:
                            break
            except OSError:
                pass
            if seen >= count or time.monotonic() > deadline:
                return kinds, failures, get_bytes, seen
            time.sleep(0.2)


# --------------------------------------------------------------------------------------------
# the harness

class Harness:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.rig = None
        self.results = []
        self.latency = None
        self.fanout = None
        self.skip_only = None
        self.link_pids = {}
        self.problems = []
        self.meta = {}
        self.nats = None
        self.last_seq = 0

    # ---- environment -------------------------------------------------------------------
    def setup(self):
        a = self.args
        ext_s3 = bool(os.environ.get("BENCH_SRC_ENDPOINT"))
        ext_nats = bool(os.environ.get("BENCH_NATS_URL"))
        ca = os.environ.get("BENCH_CA_FILE") or None
        if ext_s3 and not os.environ.get("BENCH_DST_ENDPOINT"):
            raise SystemExit("BENCH_SRC_ENDPOINT is set but BENCH_DST_ENDPOINT is not: set both (see bench/README.md)")
        if not (ext_s3 and ext_nats):
            memstore = 1 << 30 if ext_s3 else self.memstore_bytes()
            self.rig = rigmod.Rig(nats=not ext_nats, ceph=not ext_s3, memstore_bytes=memstore)
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
            self.src = S3Side("src", ceph.endpoints[0], ak, sk, rigmod.S3_REGION, "Ceph")
            self.dst = S3Side("dst", ceph.endpoints[1], ak, sk, rigmod.S3_REGION, "Ceph")
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
        self.aws_cfgs = {}
        self.describe()

    def memstore_bytes(self):
        """Ceph memstore keeps every object in RAM: size it for the largest scenario (source plus
        the destinations alive at once; destinations are deleted after each run)."""
        a = self.args
        sc = a.scenario_set
        need = 0
        if 1 in sc:
            need = max(need, 2 * a.objects * (a.small_kib * KiB + 4 * KiB))
        if 2 in sc:
            need = max(need, 2 * a.big_mib * MiB)
        source = self.medium_objects() * a.medium_mib * MiB  # scenarios 3 and 4 share the source
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

    def describe(self):
        a = self.args
        binary = a.archie
        build = build_info(binary)
        tools = {}
        for name, argv in (("rclone", [rigmod.RCLONE, "version"]), ("aws", [rigmod.AWS, "--version"])):
            try:
                cp = subprocess.run(argv, capture_output=True, text=True, timeout=60)
                tools[name] = ((cp.stdout or cp.stderr).strip().splitlines() or ["?"])[0]
            except OSError as e:
                tools[name] = "unavailable: %s" % e
        self.meta = {
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "host": platform.node(), "cpus": os.cpu_count(),
            "mem_total_gib": round((proc_meminfo_kib("MemTotal") or 0) / (1 << 20), 1),
            "machine": machine_description(),
            "mode": self.mode,
            "archie": {"path": os.path.realpath(binary), **build},
            "tools": {"rclone": rigmod.RCLONE, "aws": rigmod.AWS, **{k + "_version": v for k, v in tools.items()}},
            "servers": {"nats": self.nats_url, "src": self.src.endpoint, "dst": self.dst.endpoint,
                        "src_bucket": self.src_bucket, "dst_buckets": self.dst_buckets, "stream": self.stream},
            "archie_config": {"concurrency": a.concurrency, "part_size_mib": a.part_size_mib,
                              "buffer_budget_mib": a.buffer_budget_mib, "parts_in_flight": a.parts_in_flight,
                              "fetch_expires": a.fetch_expires},
            "args": {k: v for k, v in vars(a).items() if k != "scenario_set"},
        }
        print("archie:  %s" % self.meta["archie"]["path"])
        print("         %s" % build["summary"])
        if build["slow"]:
            print("\n  !!! WARNING: %s\n  !!! archie's numbers below are NOT representative; build release and set "
                  "ARCHIE_BIN=build-release/src/archie\n" % build["summary"])
        print("rclone:  %s (%s)" % (rigmod.RCLONE, tools["rclone"]))
        print("aws:     %s (%s)" % (rigmod.AWS, tools["aws"]))
        mach = self.meta["machine"]
        print("machine: %s, %d cores, %.1f GiB RAM, %s, kernel %s" % (mach["cpu_model"], mach["cores"],
                                                                     self.meta["mem_total_gib"], mach["os"],
                                                                     mach["kernel"]))
        print("servers: %s" % self.mode)
        print("         nats %s, source %s/%s, destination %s/%s" % (self.nats_url, self.src.endpoint, self.src_bucket,
                                                                    self.dst.endpoint, self.dst_buckets[0]))
        print("archie config: concurrency %d, part_size_mib %d, buffer_budget_mib %d, parts_in_flight %d, "
              "fetch_expires %s" % (a.concurrency, a.part_size_mib, a.buffer_budget_mib, a.parts_in_flight,
                                    a.fetch_expires), flush=True)

    def close(self):
        if self.nats:
            try:
                self.nats.close()
            except Exception:  # noqa: BLE001
                pass
        if self.rig:
            self.rig.close()

    # ---- measurement helpers -----------------------------------------------------------
    def server_cpu(self, pids=None):
        """CPU seconds used so far by the server processes (or by `pids`); None without any."""
        pids = self.server_pids if pids is None else pids
        if not pids:
            return None
        total = 0.0
        for pid in pids.values():
            c = proc_cpu(pid) if pid else None
            if c:
                total += c[0] + c[1]
        return total

    def server_mark(self):
        """What the servers have done so far: CPU seconds, the fan-out links' CPU seconds and (rig)
        RGW request counters."""
        requests = None
        if self.rgw_requests:
            try:
                requests = self.rgw_requests.snapshot()
            except (OSError, ValueError, KeyError) as e:  # a gateway down: the row just lacks req/obj
                self.problems.append("RGW perf counters unreadable: %s" % e)
        return self.server_cpu(), self.server_cpu(self.link_pids), requests

    def server_use(self, m, mark):
        """Row m gets what the servers did since `mark`: CPU and the requests they answered."""
        cpu0, link_cpu0, requests0 = mark
        m["server_cpu_s"] = None if cpu0 is None else self.server_cpu() - cpu0
        if link_cpu0 is not None:
            m["link_cpu_s"] = self.server_cpu(self.link_pids) - link_cpu0
        if requests0 is not None:
            try:
                m["server_requests"] = self.rgw_requests.delta(requests0, self.rgw_requests.snapshot(), m["objects"])
            except (OSError, ValueError, KeyError) as e:
                self.problems.append("RGW perf counters unreadable: %s" % e)

    def settle(self, quiet=0.1, window=0.5, longest=60.0):
        """Wait until the servers are quiet (rig: their CPU use below `quiet` cores over `window`
        seconds, twice in a row; external: a 2 s pause), so that one run's leftovers (RGW garbage
        collection, OSD trimming) do not slow the next one down."""
        if not self.server_pids:
            time.sleep(2.0)
            return
        deadline = time.monotonic() + longest
        calm = 0
        before = self.server_cpu()
        while time.monotonic() < deadline and calm < 2:
            time.sleep(window)
            now = self.server_cpu()
            calm = calm + 1 if now - before < quiet * window else 0
            before = now

    def timeout_for(self, nbytes, nobjects):
        return self.args.timeout_scale * (600 + nbytes / 2e6 + nobjects * 0.5)

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

    def gc(self):
        """Let RGW free deleted data now (its GC would take a few seconds); rig only."""
        if self.rig and self.rig.ceph and not self.dead_servers():
            try:
                self.rig.ceph.radosgw_admin("gc", "process", "--include-all", timeout=600, check=False)
            except Exception as e:  # noqa: BLE001
                log("gc process: %s" % e)

    def record(self, m):
        finish(m)
        self.results.append(m)
        if not m.get("ok"):
            self.problems.append("%s / %s: %s" % (m["scenario"], m["tool"], m.get("error")))
        print_row(m, self.results)
        self.save()
        return m

    def save(self):
        if not self.args.json:
            return
        doc = {"meta": self.meta, "results": self.results, "latency": self.latency, "fanout": self.fanout,
               "skip_only": self.skip_only,
               "problems": self.problems}
        tmp = self.args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, default=str)
        os.replace(tmp, self.args.json)

    def base(self, scenario, tool, objects, nbytes, **extra):
        return {"scenario": scenario, "tool": tool, "objects": objects, "bytes": nbytes, "ok": False, **extra}

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

    # ---- peers (rclone, aws) -----------------------------------------------------------
    def rclone_env(self):
        """rclone remotes src: and dst: (like CephRgw.rclone_env, for any two S3 sides)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        env["RCLONE_CONFIG"] = os.path.join(self.work, "rclone.conf")
        open(env["RCLONE_CONFIG"], "a").close()
        for remote, side in (("SRC", self.src), ("DST", self.dst)):
            p = "RCLONE_CONFIG_%s_" % remote
            env.update({p + "TYPE": "s3", p + "PROVIDER": side.provider, p + "ENV_AUTH": "false",
                        p + "ACCESS_KEY_ID": side.access_key, p + "SECRET_ACCESS_KEY": side.secret_key,
                        p + "ENDPOINT": side.endpoint, p + "REGION": side.region, p + "FORCE_PATH_STYLE": "true"})
        if self.src.ca_file:
            env["RCLONE_CA_CERT"] = self.src.ca_file
        return env

    def rclone_flags(self, transfers):
        a = self.args
        flags = ["--transfers", str(transfers), "--checkers", str(transfers), "--s3-no-check-bucket",
                 "--s3-chunk-size", "%dM" % a.part_size_mib, "--s3-upload-cutoff", "%dM" % a.part_size_mib,
                 "--s3-upload-concurrency", str(a.parts_in_flight), "--retries", "1", "--low-level-retries", "10"]
        if a.rclone_no_check_dest:
            flags.append("--no-check-dest")
        return flags + a.rclone_extra.split()

    def aws_env(self, side, concurrency):
        """AWS CLI env for one side: path-style, `concurrency` requests in flight, part_size chunks."""
        key = concurrency
        if key not in self.aws_cfgs:
            path = os.path.join(self.work, "aws-c%d.config" % concurrency)
            with open(path, "w") as f:
                f.write("[default]\nregion = %s\ns3 =\n    addressing_style = path\n    max_concurrent_requests = %d\n"
                        "    multipart_threshold = %dMB\n    multipart_chunksize = %dMB\n"
                        % (side.region, concurrency, self.args.part_size_mib, self.args.part_size_mib))
            self.aws_cfgs[key] = path
        creds = os.path.join(self.work, "aws-credentials")
        open(creds, "a").close()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({"AWS_ACCESS_KEY_ID": side.access_key, "AWS_SECRET_ACCESS_KEY": side.secret_key,
                    "AWS_DEFAULT_REGION": side.region, "AWS_CONFIG_FILE": self.aws_cfgs[key],
                    "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""})
        if side.ca_file:
            env["AWS_CA_BUNDLE"] = side.ca_file
        return env

    def aws_argv(self, side, *args):
        return [rigmod.AWS, "--endpoint-url", side.endpoint] + list(args)

    def run_steps(self, m, steps, timeout):
        """Run steps one after the other; a step is a pipeline [(argv, env), ...] (usually one
        command). Wall time, CPU and peak RSS summed/maxed over every process (os.wait4)."""
        cpu_u = cpu_s = 0.0
        rss = 0
        commands = []
        self.settle()
        mark = self.server_mark()
        t0 = time.monotonic()
        deadline = t0 + timeout
        for n, step in enumerate(steps):
            procs, errs = [], []
            prev = None
            try:
                for i, (argv, env) in enumerate(step):
                    err = os.path.join(self.work, "%s-%s-%d-%d.stderr" % (slug(m["scenario"]), slug(m["tool"]), n, i))
                    open(err, "w").close()
                    last = i == len(step) - 1
                    p = start(argv, env, stdin=prev.stdout if prev else subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL if last else subprocess.PIPE, stderr_path=err)
                    if prev is not None:
                        prev.stdout.close()  # the next stage owns the pipe now
                    procs.append(p)
                    errs.append(err)
                    prev = p
                    commands.append(redact(" ".join(argv), self.secrets))
            except OSError as e:
                for p in procs:
                    killpg(p)
                    reap(p)
                raise RunError("cannot start %s: %s" % (step[len(procs)][0][0], e))
            stop_watching = threading.Event()

            def watchdog(ps=procs):
                # the deadline, or a dead server that would make the tool retry until then
                while not stop_watching.wait(1.0):
                    if time.monotonic() >= deadline or self.dead_servers():
                        for p in ps:
                            killpg(p)
                        return
            threading.Thread(target=watchdog, daemon=True).start()
            codes = []
            try:
                for p in procs:
                    code, ru = reap(p)
                    codes.append(code)
                    cpu_u += ru.ru_utime
                    cpu_s += ru.ru_stime
                    rss = max(rss, ru.ru_maxrss)
            except BaseException:  # Ctrl-C, SIGTERM: take the children down with us
                for p in procs:
                    if p.returncode is None:
                        killpg(p)
                        reap(p)
                raise
            finally:
                stop_watching.set()
            self.check_servers()
            if time.monotonic() >= deadline:
                raise RunError("timed out after %.0f s: %s" % (timeout, commands[-1]))
            for code, err, (argv, _) in zip(codes, errs, step):
                if code != 0:
                    raise RunError("%s exited %d: %s" % (os.path.basename(argv[0]), code,
                                                         redact(tail(err, 8), self.secrets)))
        m["wall_s"] = time.monotonic() - t0
        self.server_use(m, mark)
        m.update(cpu_user_s=cpu_u, cpu_sys_s=cpu_s, cpu_s=cpu_u + cpu_s, peak_rss_mib=rss / 1024,
                 commands=commands)

    def peer(self, scenario, tool, objects, nbytes, steps, checks, notes=""):
        """Measure one peer command set, verify, clean its destination prefix."""
        m = self.base(scenario, tool, objects, nbytes, notes=notes)
        log("%s: %s" % (scenario, tool))
        try:
            self.run_steps(m, steps, self.timeout_for(nbytes * 2, objects))
            for bucket, prefix in checks:
                self.verify(m, bucket, prefix, objects, nbytes)
            m["ok"] = True
        except RunError as e:
            m["error"] = str(e)
        except Exception as e:  # noqa: BLE001 - a broken run must not stop the others
            m["error"] = "%s: %s" % (type(e).__name__, e)
            traceback.print_exc()
        for bucket, prefix in checks:
            self.clean_dst(bucket, prefix)
        self.gc()
        return self.record(m)

    # ---- archie ------------------------------------------------------------------------
    def targets(self, buckets):
        """archie destinations on the destination side: [(store name, endpoint, bucket)]."""
        return [("dst", self.dst.endpoint, b) for b in buckets]

    def archie_config(self, targets, dest_prefix, exclude_copy=()):
        """targets: [(store name, endpoint, bucket)]; each distinct store name becomes one
        [stores.X] with the destination side's credentials, each target one route destination."""
        a = self.args
        q = json.dumps
        ca = ('ca_file = %s\n' % q(self.src.ca_file)) if self.src.ca_file else ""
        conns = max(64, a.concurrency)
        stores = {}
        for store, endpoint, _ in targets:
            stores.setdefault(store, endpoint)
        dst_stores = "".join(f"""[stores.{store}]
type = "s3"
endpoint = {q(endpoint)}
region = {q(self.dst.region)}
access_key_id = {q(self.dst.access_key)}
secret_access_key_env = "ARCHIE_BENCH_DST_SECRET"
max_connections = {conns}
{ca}""" for store, endpoint in stores.items())
        dests = "".join('[[route.destinations]]\nstore = %s\nbucket = %s\nprefix = %s\n' % (q(store), q(b), q(dest_prefix))
                        for store, _, b in targets)
        exclude = "exclude_copy = %s\n" % q(list(exclude_copy)) if exclude_copy else ""
        return f"""# written by bench/replication_bench.py
[log]
level = "info"
[http]
address = "127.0.0.1"
port = {rigmod.free_port()}
[worker]
concurrency = {a.concurrency}
shutdown_wait = "10s"
[nats]
urls = {q(self.nats_url.split(","))}
name = "archie-bench"
[queue]
fetch_expires = {q(a.fetch_expires)}
[queue.stream]
name = {q(self.stream)}
subjects = [{q(self.subject)}]
[queue.consumer]
durable = {q(self.durable)}
max_ack_pending = {max(1000, 4 * a.concurrency)}
[replication]
part_size_mib = {a.part_size_mib}
buffer_budget_mib = {a.buffer_budget_mib}
parts_in_flight = {a.parts_in_flight}
[stores.src]
type = "s3"
endpoint = {q(self.src.endpoint)}
region = {q(self.src.region)}
access_key_id = {q(self.src.access_key)}
secret_access_key_env = "ARCHIE_BENCH_SRC_SECRET"
max_connections = {conns}
{ca}{dst_stores}[[route]]
source = {{ store = "src", bucket = {q(self.src_bucket)} }}
{exclude}{dests}"""

    def start_archie(self, label, targets, dest_prefix, exclude_copy=()):
        cfg = os.path.join(self.work, "archie-%s.toml" % label)
        with open(cfg, "w") as f:
            f.write(self.archie_config(targets, dest_prefix, exclude_copy))
        log_path = os.path.join(self.work, "archie-%s.log" % label)
        open(log_path, "w").close()
        env = {k: v for k, v in os.environ.items() if k not in ("ARCHIE_CONFIG", "ARCHIE_LOG_LEVEL")}
        env.update(ARCHIE_BENCH_SRC_SECRET=self.src.secret_key, ARCHIE_BENCH_DST_SECRET=self.dst.secret_key)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
        proc = start([self.args.archie, "run", "--config", cfg], env, stderr_path=log_path)
        return proc, LogTail(log_path)

    def stop_archie(self, proc, logtail):
        """SIGTERM (graceful drain), SIGKILL after a while; scan the log for sanitizer reports."""
        if proc.poll() is None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            watchdog = threading.Timer(60, lambda: killpg(proc))
            watchdog.daemon = True
            watchdog.start()
            code, ru = reap(proc)
            watchdog.cancel()
        else:
            code, ru = proc.returncode, None
        logtail.poll()
        if logtail.sanitizer:
            self.problems.append("archie log %s has a sanitizer report: %s" % (logtail.path, logtail.sanitizer[:300]))
        if code not in (0, None):
            self.problems.append("archie exited with %s after SIGTERM (log %s)" % (code, logtail.path))
        return code, ru

    def provision(self):
        """Let archie create the stream and the durable consumer (a start and a stop), then make
        sure the stream is empty: it must be dedicated to this benchmark."""
        log("archie provisions stream %s / consumer %s" % (self.stream, self.durable))
        proc, lt = self.start_archie("provision", self.targets(self.dst_buckets[:1]), "archie/")
        try:
            wait_for(lambda: lt.poll() or lt.seen("consuming") or self.archie_dead(proc, lt), 120 * self.args.timeout_scale,
                     "archie to start consuming")
            if proc.poll() is not None:
                raise SystemExit("archie exited at start (%s); log %s:\n%s" % (proc.returncode, lt.path, tail(lt.path)))
        finally:
            self.stop_archie(proc, lt)
        self.nats.js_api("STREAM.PURGE." + self.stream)

    @staticmethod
    def archie_dead(proc, lt):
        return proc.poll() is not None

    def consumer_state(self):
        try:
            info = self.nats.consumer_info(self.stream, self.durable)
        except NatsError:
            return None
        return info.get("num_pending", 0), info.get("num_ack_pending", 0), info["delivered"]["stream_seq"]

    def ensure_idle_stream(self):
        st = self.consumer_state()
        if st and (st[0] or st[1]):
            log("stream %s still holds work from an earlier run: purging" % self.stream)
            self.nats.js_api("STREAM.PURGE." + self.stream)
            time.sleep(0.5)

    def publish(self, bodies):
        acks = self.nats.js_publish_many(self.subject, bodies, window=512, timeout=300)
        self.last_seq = acks[-1]["seq"]

    def archie_run(self, scenario, entries, targets, tool="archie", notes=""):
        """Copy `entries` (from the source listing) to every target through archie, timed."""
        nbytes = sum(s for _, s, _ in entries)
        prefix = "archie/%s/" % entries[0][0].split("/")[0]  # what this run writes: archie/<s1..s5>/
        bodies = [event_for(self.src_bucket, k, s, e, self.args.part_size_mib) for k, s, e in entries]
        m = self.archie_timed(scenario, tool, bodies, len(entries), nbytes, targets, "replicated", prefix, notes=notes)
        for _, _, b in targets:
            self.clean_dst(b, prefix)
        self.gc()
        return self.record(m)

    def archie_timed(self, scenario, tool, bodies, nobj, nbytes, targets, done_msg, prefix, exclude_copy=(), notes=""):
        """Publish every event, start archie, time until it has logged `done_msg` once per object
        and the consumer has nothing pending or ack-pending; then verify the destinations hold
        `nobj` objects and `nbytes` bytes under prefix (when nbytes)."""
        m = self.base(scenario, tool, nobj, nbytes, destinations=len(targets), notes=notes)
        log("%s: %s (%d objects, %d destination%s)" % (scenario, tool, nobj, len(targets),
                                                       "s" if len(targets) > 1 else ""))
        proc = lt = None
        try:
            self.ensure_idle_stream()
            self.publish(bodies)
            self.settle()
            mark = self.server_mark()
            t0 = time.monotonic()
            proc, lt = self.start_archie("%s-%d" % (scenario.split(":")[0], len(targets)), targets, "archie/",
                                         exclude_copy)
            deadline = t0 + self.timeout_for(nbytes * len(targets), nobj)
            startup = None
            state = None
            while True:
                lt.poll()
                if startup is None and lt.seen("consuming"):
                    startup = time.monotonic() - t0
                    m["startup_cpu_s"] = sum(proc_cpu(proc.pid) or (0, 0))
                if proc.poll() is not None:
                    raise RunError("archie exited (%s); log %s:\n%s" % (proc.returncode, lt.path, tail(lt.path, 8)))
                self.check_servers()
                if lt.count(done_msg) >= nobj:
                    state = self.consumer_state()
                    if state and state[0] == 0 and state[1] == 0 and state[2] >= self.last_seq:
                        break
                elif lt.settled() >= nobj:
                    state = self.consumer_state()
                    if state and state[0] == 0 and state[1] == 0 and state[2] >= self.last_seq:
                        raise RunError("the consumer is drained but only %d of %d events were %s "
                                       "(%s); log %s" % (lt.count(done_msg), nobj, done_msg, lt.summary(), lt.path))
                if time.monotonic() > deadline:
                    raise RunError("timed out after %.0f s: %d of %d %s, consumer %s (%s)"
                                   % (deadline - t0, lt.count(done_msg), nobj, done_msg, state, lt.summary()))
                time.sleep(0.02)
            m["wall_s"] = time.monotonic() - t0
            cpu = proc_cpu(proc.pid) or (0.0, 0.0)
            m.update(cpu_user_s=cpu[0], cpu_sys_s=cpu[1], cpu_s=cpu[0] + cpu[1],
                     peak_rss_mib=(proc_status_kib(proc.pid, "VmHWM") or 0) / 1024, startup_s=startup,
                     log=lt.path, outcomes=lt.summary(), nak_or_term=lt.count("event not done"))
            self.server_use(m, mark)
            m["archie_metrics"] = scrape_metrics(lt)
            last_ts = lt.last_ts(done_msg)
            if last_ts:
                m["last_%s_after_s" % done_msg.replace(" ", "_")] = last_ts - (time.time() - (time.monotonic() - t0))
                # archie's own view: from its 'consuming' line to its last done_msg line
                m["log_span_s"] = last_ts - lt.first_ts("consuming") if lt.seen("consuming") else None
            code, ru = self.stop_archie(proc, lt)
            proc = None
            if ru is not None:
                m["cpu_s_including_shutdown"] = ru.ru_utime + ru.ru_stime
            if nbytes:
                for _, _, b in targets:
                    self.verify(m, b, prefix, nobj, nbytes)
            m["ok"] = True
        except RunError as e:
            m["error"] = str(e)
        except Exception as e:  # noqa: BLE001
            m["error"] = "%s: %s" % (type(e).__name__, e)
            traceback.print_exc()
        finally:
            if proc is not None:
                self.stop_archie(proc, lt)
        return m

    # ---- source data -------------------------------------------------------------------
    def upload(self, local_dir, prefix, expect):
        """Setup (not measured): rclone copy a local directory to the source bucket."""
        log("uploading %d source objects to %s/%s" % (expect, self.src_bucket, prefix))
        self.src.delete_prefix(self.src_bucket, prefix)
        env = self.rclone_env()
        argv = [rigmod.RCLONE, "copy", local_dir, "src:%s/%s" % (self.src_bucket, prefix.rstrip("/"))] + \
            self.rclone_flags(self.args.concurrency) + ["--no-check-dest"]
        cp = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=self.timeout_for(0, expect) * 4)
        if cp.returncode != 0:
            raise RunError("uploading the source objects failed: %s" % redact(cp.stderr[-2000:], self.secrets))
        entries = self.src.list(self.src_bucket, prefix)
        if len(entries) != expect:
            raise RunError("source holds %d of %d objects after upload" % (len(entries), expect))
        return sorted(entries)

    def drop_source(self, prefix):
        if self.dead_servers():
            return
        try:
            self.src.delete_prefix(self.src_bucket, prefix)
        except Exception as e:  # noqa: BLE001
            self.problems.append("cleanup of the source %s failed: %s" % (prefix, e))
        self.gc()

    # ---- scenarios ---------------------------------------------------------------------
    def scenario_small(self):
        a = self.args
        n, size = a.objects, a.small_kib * KiB
        name = "1: %d x %d KiB" % (n, a.small_kib)
        local = os.path.join(self.work, "s1-local")
        os.makedirs(local)
        for i in range(n):
            with open(os.path.join(local, "obj-%06d" % i), "wb") as f:
                f.write(os.urandom(size))
        entries = self.upload(local, "s1/", n)
        shutil.rmtree(local)
        self.compare(name, entries, "s1", a.concurrency)
        self.drop_source("s1/")

    def scenario_big(self):
        a = self.args
        size = a.big_mib * MiB
        name = "2: 1 x %d MiB" % a.big_mib
        local = os.path.join(self.work, "s2-local")
        os.makedirs(local)
        with open(os.path.join(local, "big.bin"), "wb") as f:
            left = size
            while left:
                chunk = min(left, 16 * MiB)
                f.write(os.urandom(chunk))
                left -= chunk
        entries = self.upload(local, "s2/", 1)
        shutil.rmtree(local)
        self.compare(name, entries, "s2", a.concurrency, single=True)
        self.drop_source("s2/")

    def medium_objects(self):
        """How many 32 MiB source objects scenarios 3 and 4 need (4 uses the first --fanout-count)."""
        a = self.args
        return max(a.medium_count if 3 in a.scenario_set else 0, a.fanout_count if 4 in a.scenario_set else 0)

    def medium_source(self):
        a = self.args
        count = self.medium_objects()
        local = os.path.join(self.work, "s3-local")
        os.makedirs(local)
        first = os.path.join(local, "obj-000000")
        with open(first, "wb") as f:
            for _ in range(a.medium_mib):
                f.write(os.urandom(MiB))
        for i in range(1, count):
            os.link(first, os.path.join(local, "obj-%06d" % i))  # same bytes, distinct objects
        entries = self.upload(local, "s3/", count)
        shutil.rmtree(local)
        return entries

    def scenario_medium(self, entries):
        a = self.args
        self.compare("3: %d x %d MiB" % (a.medium_count, a.medium_mib), entries[:a.medium_count], "s3", a.concurrency)

    def start_links(self, count, mbps):
        """`count` bandwidth-limited links (tests/rig/throttle_proxy.py, one process each) in front
        of the destination endpoint: separate bottlenecks, like three WAN links to three sites."""
        if self.dst.scheme != "http":
            raise RunError("the fan-out links are plain TCP proxies on 127.0.0.1; the destination must be http://")
        upstream = "%s:%d" % (self.dst.host, self.dst.port or 80)
        links = []
        try:
            for _ in range(count):
                port = rigmod.free_port()
                proc = start([sys.executable, THROTTLE_PROXY, "--upstream", upstream, "--port", str(port),
                              "--mbps", str(mbps)], os.environ, stdout=subprocess.PIPE)
                links.append(proc)
                if not proc.stdout.readline().startswith(b"listening"):
                    raise RunError("throttle proxy on port %d did not start" % port)
                proc.endpoint = "http://%s:%d" % (rigmod.LOOPBACK, port)
        except BaseException:
            self.stop_links(links)
            raise
        self.link_pids = {"link-%d" % i: p.pid for i, p in enumerate(links)}
        return links

    def stop_links(self, links):
        for proc in links:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                killpg(proc)
                proc.wait()
            proc.stdout.close()
        self.link_pids = {}

    def scenario_fanout(self, entries):
        """The same objects to 1 and to 3 destinations, each destination its own [stores.X]
        behind its own --fanout-mbps link (0: no links, three buckets on the destination endpoint)."""
        a = self.args
        mbps = a.fanout_mbps
        entries = entries[:a.fanout_count]
        name = "4: fan-out %d x %d MiB" % (len(entries), a.medium_mib)  # the links: in the lines under it
        nbytes = sum(s for _, s, _ in entries)
        links = self.start_links(3, mbps) if mbps else []
        try:
            def targets(n):
                if links:
                    return [("dst%d" % (i + 1), links[i].endpoint, self.dst_buckets[i]) for i in range(n)]
                return self.targets(self.dst_buckets[:n])
            one = self.archie_run(name, entries, targets(1), tool="archie -> 1 dest")
            three = self.archie_run(name, entries, targets(3), tool="archie -> 3 dests")
        finally:
            self.stop_links(links)
        keys = ("wall_s", "cpu_s", "peak_rss_mib", "mb_per_s", "link_cpu_s")
        f = self.fanout = {"link_mbps": mbps or None, "object_bytes": nbytes,
                           "one": {k: one.get(k) for k in keys}, "three": {k: three.get(k) for k in keys}}
        for label, m in (("one", one), ("three", three)):
            read = (m.get("server_requests") or {}).get("source_bytes_read")
            f[label]["source_bytes_read"] = read
            f[label]["source_read_ratio"] = read / nbytes if read is not None and nbytes else None
            if m.get("link_cpu_s") is not None and m.get("wall_s"):
                f[label]["link_cores_busy"] = m["link_cpu_s"] / m["wall_s"]
        if mbps:
            f["link_bound_wall_s"] = nbytes / (mbps * 1e6)  # the least time one link needs for the bytes
        if one.get("ok") and three.get("ok"):
            f.update(wall_ratio=three["wall_s"] / one["wall_s"], cpu_ratio=three["cpu_s"] / one["cpu_s"],
                     written_mb_per_s_one=one["bytes"] / 1e6 / one["wall_s"],
                     written_mb_per_s_three=3 * three["bytes"] / 1e6 / three["wall_s"])
        print(fanout_text(f), flush=True)
        self.save()

    def scenario_skip_only(self):
        """A burst of events archie acknowledges without any store request: access events, lifecycle
        expiries and keys its route excludes, in turn. Timed until the consumer is drained."""
        a = self.args
        n = a.skip_events
        name = "6: skip-only %d events" % n
        excluded = "s6/excluded/"
        kinds = (lambda i: minio_event("s3:ObjectAccessed:Get", self.src_bucket, "s6/read/obj-%06d" % i, size=4096),
                 lambda i: minio_event("s3:ObjectRemoved:Delete", self.src_bucket, "s6/expired/obj-%06d" % i,
                                       user_agent="Internal: [ILM-Expiry]", host="minio-0:9000"),
                 lambda i: minio_event("s3:ObjectCreated:Put", self.src_bucket, excluded + "obj-%06d" % i, size=4096,
                                       etag="0" * 32))
        bodies = [kinds[i % len(kinds)](i) for i in range(n)]
        m = self.archie_timed(name, "archie", bodies, n, 0, self.targets(self.dst_buckets[:1]), "event skipped",
                              "archie/s6/", exclude_copy=["^" + excluded],
                              notes="ObjectAccessed:Get, lifecycle expiry, excluded key in turn; no store request")
        self.record(m)
        if m.get("ok"):
            drain = m["wall_s"] - (m.get("startup_s") or 0)
            cpu = m["cpu_s"] - (m.get("startup_cpu_s") or 0)
            self.skip_only = {"events": n, "wall_s": m["wall_s"], "startup_s": m.get("startup_s"), "drain_s": drain,
                              "msgs_per_s": n / drain if drain > 0 else None, "cpu_s_after_startup": cpu,
                              "cpu_us_per_msg": cpu / n * 1e6,
                              "server_requests": (m.get("server_requests") or {}).get("total"),
                              "log_span_s": m.get("log_span_s"),
                              "outcomes": m.get("outcomes"),
                              "method": "all events published before archie starts; drain_s runs from archie's "
                                        "'consuming' log line to the consumer having nothing pending or ack-pending"}
            m["skip_only"] = self.skip_only
            print(skip_only_text(self.skip_only), flush=True)
            self.save()

    def compare(self, name, entries, tag, concurrency, single=False):
        """archie, then rclone, then the AWS CLI, on the same source objects."""
        a = self.args
        nobj, nbytes = len(entries), sum(s for _, s, _ in entries)
        dst = self.dst_buckets[0]
        if "archie" in a.tool_set:
            self.archie_run(name, entries, self.targets([dst]))
        src_prefix = "%s/%s" % (self.src_bucket, tag)
        if "rclone" in a.tool_set:
            env = self.rclone_env()
            if single:
                key = entries[0][0]
                argv = [rigmod.RCLONE, "copyto", "src:%s/%s" % (self.src_bucket, key),
                        "dst:%s/rclone/%s" % (dst, key)] + self.rclone_flags(concurrency)
                tool = "rclone copyto"
            else:
                argv = [rigmod.RCLONE, "copy", "src:" + src_prefix, "dst:%s/rclone/%s" % (dst, tag)] + \
                    self.rclone_flags(concurrency)
                tool = "rclone copy"
            self.peer(name, tool, nobj, nbytes, [[(argv, env)]], [(dst, "rclone/%s/" % tag)],
                      notes="streams src->dst through rclone")
        if "aws" in a.tool_set:
            # awscli cannot copy between two endpoints in one command: down to local disk, then up.
            local = os.path.join(self.work, "aws-%s" % tag)
            os.makedirs(local, exist_ok=True)
            c = a.parts_in_flight if single else concurrency
            senv, denv = self.aws_env(self.src, c), self.aws_env(self.dst, c)
            if single:
                key = entries[0][0]
                fpath = os.path.join(local, os.path.basename(key))
                steps = [[(self.aws_argv(self.src, "s3", "cp", "--only-show-errors", "s3://%s/%s" % (self.src_bucket, key),
                                         fpath), senv)],
                         [(self.aws_argv(self.dst, "s3", "cp", "--only-show-errors", fpath,
                                         "s3://%s/aws/%s" % (dst, key)), denv)]]
                tool = "aws s3 cp (2 hops)"
            else:
                steps = [[(self.aws_argv(self.src, "s3", "sync", "--only-show-errors", "s3://" + src_prefix, local),
                           senv)],
                         [(self.aws_argv(self.dst, "s3", "sync", "--only-show-errors", local,
                                         "s3://%s/aws/%s" % (dst, tag)), denv)]]
                tool = "aws s3 sync (2 hops)"
            self.peer(name, tool, nobj, nbytes, steps, [(dst, "aws/%s/" % tag)],
                      notes="down to local disk, then up; both commands timed")
            shutil.rmtree(local, ignore_errors=True)
            if single:
                key, size = entries[0][0], entries[0][1]
                steps = [[(self.aws_argv(self.src, "s3", "cp", "--only-show-errors",
                                         "s3://%s/%s" % (self.src_bucket, key), "-"), senv),
                          (self.aws_argv(self.dst, "s3", "cp", "--only-show-errors", "--expected-size", str(size), "-",
                                         "s3://%s/aws-pipe/%s" % (dst, key)), denv)]]
                self.peer(name, "aws s3 cp (pipe)", nobj, nbytes, steps, [(dst, "aws-pipe/%s/" % tag)],
                          notes="one GET stream piped into a multipart upload")

    def scenario_latency(self):
        a = self.args
        count = max(1, int(round(a.latency_rate * a.latency_seconds)))
        size = a.small_kib * KiB
        name = "5: latency %g ev/s x %gs" % (a.latency_rate, a.latency_seconds)
        local = os.path.join(self.work, "s5-local")
        os.makedirs(local)
        for i in range(count):
            with open(os.path.join(local, "obj-%06d" % i), "wb") as f:
                f.write(os.urandom(size))
        entries = self.upload(local, "s5/", count)
        shutil.rmtree(local)
        dst = self.dst_buckets[0]
        m = self.base(name, "archie", count, count * size, notes="steady load; latency from publish to 'replicated'")
        log("%s: archie" % name)
        proc = lt = None
        published = {}
        try:
            self.ensure_idle_stream()
            self.settle()
            proc, lt = self.start_archie("s5", self.targets([dst]), "archie/")
            wait_for(lambda: lt.poll() or lt.seen("consuming") or proc.poll() is not None,
                     120 * a.timeout_scale, "archie to start consuming")
            if proc.poll() is not None:
                raise RunError("archie exited at start (%s); log %s" % (proc.returncode, lt.path))
            time.sleep(0.5)
            cpu0, mark = proc_cpu(proc.pid) or (0, 0), self.server_mark()
            interval = 1.0 / a.latency_rate
            t0 = time.monotonic()
            late = 0
            for i, (key, sz, etag) in enumerate(entries):
                due = t0 + i * interval
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                elif now - due > interval:
                    late += 1
                body = event_for(self.src_bucket, key, sz, etag, a.part_size_mib)
                published[key] = time.time()
                ack = self.nats.js_publish(self.subject, body)
                self.last_seq = ack["seq"]
            publish_s = time.monotonic() - t0
            deadline = time.monotonic() + self.timeout_for(count * size, count)
            while True:
                lt.poll()
                state = self.consumer_state()
                if lt.count("replicated") >= count and state and state[0] == 0 and state[1] == 0:
                    break
                if proc.poll() is not None:
                    raise RunError("archie exited (%s); log %s" % (proc.returncode, lt.path))
                self.check_servers()
                if time.monotonic() > deadline:
                    raise RunError("timed out: %d of %d replicated (%s)" % (lt.count("replicated"), count, lt.summary()))
                time.sleep(0.05)
            wall = time.monotonic() - t0
            cpu1 = proc_cpu(proc.pid) or (0, 0)
            m["archie_metrics"] = am = scrape_metrics(lt)
            lat = []
            for entry in lt.entries("replicated"):
                k = entry.get("key")
                if k in published and entry.get("ts"):
                    lat.append(parse_ts(entry["ts"]) - published[k])
            lat.sort()
            m.update(wall_s=wall, cpu_user_s=cpu1[0] - cpu0[0], cpu_sys_s=cpu1[1] - cpu0[1],
                     cpu_s=(cpu1[0] + cpu1[1]) - (cpu0[0] + cpu0[1]),
                     peak_rss_mib=(proc_status_kib(proc.pid, "VmHWM") or 0) / 1024, log=lt.path)
            self.server_use(m, mark)
            self.stop_archie(proc, lt)
            proc = None
            self.verify(m, dst, "archie/s5/", count, count * size)
            self.latency = {
                "events": count, "rate_target": a.latency_rate, "rate_achieved": count / publish_s if publish_s else None,
                "publish_s": publish_s, "late_publishes": late, "samples": len(lat),
                "p50_ms": pct(lat, 50) * 1e3, "p90_ms": pct(lat, 90) * 1e3, "p99_ms": pct(lat, 99) * 1e3,
                "max_ms": lat[-1] * 1e3, "min_ms": lat[0] * 1e3, "mean_ms": sum(lat) / len(lat) * 1e3,
                "cpu_cores_busy": m["cpu_s"] / wall if wall else None,
                "server_cores_busy": m["server_cpu_s"] / wall if wall and m["server_cpu_s"] is not None else None,
                "archie_queue_wait_avg_ms": am.get("queue_latency_avg_ms"),
                "archie_request_avg_ms": am.get("request_avg_ms"),
                "stages": stage_breakdown(lt.entries("replicated"), am),
                "method": "time.time() just before each JetStream publish; archie's 'replicated' log line "
                          "(written after every destination completed) 'ts' field, ms resolution, same host clock",
            }
            m["latency"] = self.latency
            m["ok"] = len(lat) == count
            if not m["ok"]:
                m["error"] = "only %d of %d latency samples" % (len(lat), count)
        except RunError as e:
            m["error"] = str(e)
        except Exception as e:  # noqa: BLE001
            m["error"] = "%s: %s" % (type(e).__name__, e)
            traceback.print_exc()
        finally:
            if proc is not None:
                self.stop_archie(proc, lt)
        self.clean_dst(dst, "archie/s5/")
        self.record(m)
        if self.latency:
            L = self.latency
            print("    latency publish -> at destination: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms "
                  "(%d samples, %.1f ev/s achieved, archie %.2f cores busy)"
                  % (L["p50_ms"], L["p90_ms"], L["p99_ms"], L["max_ms"], L["samples"], L["rate_achieved"] or 0,
                     L["cpu_cores_busy"] or 0), flush=True)
            if L.get("archie_queue_wait_avg_ms") is not None:
                print("    archie's own metrics: publish -> fetched avg %.1f ms; request avg ms: %s"
                      % (L["archie_queue_wait_avg_ms"], ", ".join("%s %.1f" % kv for kv in
                                                                  sorted((L["archie_request_avg_ms"] or {}).items()))),
                      flush=True)
            print_stages(L["stages"])
        self.drop_source("s5/")

    def run(self):
        sc = self.args.scenario_set
        self.provision()
        steps = []
        if 1 in sc:
            steps.append(("1", self.scenario_small))
        if 2 in sc:
            steps.append(("2", self.scenario_big))
        if 3 in sc or 4 in sc:
            def medium():
                entries = self.medium_source()
                try:
                    if 3 in sc:
                        self.scenario_medium(entries)
                    if 4 in sc:
                        self.scenario_fanout(entries)
                finally:
                    self.drop_source("s3/")
            steps.append(("3/4", medium))
        if 5 in sc:
            steps.append(("5", self.scenario_latency))
        if 6 in sc:
            steps.append(("6", self.scenario_skip_only))
        print_header()
        for label, fn in steps:
            if self.dead_servers():
                self.problems.append("scenario %s skipped: server process died: %s"
                                     % (label, ", ".join(self.dead_servers())))
                continue
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - setup of one scenario failed; go on
                self.problems.append("scenario %s: %s: %s" % (label, type(e).__name__, e))
                traceback.print_exc()
                self.save()


# --------------------------------------------------------------------------------------------
# helpers

def proc_meminfo_kib(field):
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def machine_description():
    """What the numbers were measured on: CPU, cores, RAM, kernel, OS release, load at start."""
    cpu_model, flags = "?", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and cpu_model == "?":
                    cpu_model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value
    except OSError:
        pass
    os_release = {}
    try:
        with open("/etc/os-release") as f:
            os_release = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    except OSError:
        pass
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = None
    return {"cpu_model": cpu_model, "cores": os.cpu_count(),
            "cpu_flags": [fl for fl in ("avx2", "avx512f", "sha_ni", "pclmulqdq", "sse4_2") if fl in flags.split()],
            "mem_total_kib": proc_meminfo_kib("MemTotal"), "mem_available_kib": proc_meminfo_kib("MemAvailable"),
            "kernel": platform.release(), "os": os_release.get("PRETTY_NAME", "?").strip('"'),
            "debian_version": debian, "python": platform.python_version(), "load_avg_at_start": os.getloadavg()}


def build_info(binary):
    """What kind of archie build this is: meson build options if next to it, ASan symbols."""
    info = {"buildtype": None, "b_sanitize": None, "optimization": None, "asan": False, "version": None}
    try:  # names the commit it was built from, also for a copy away from its build dir
        cp = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        info["version"] = (cp.stdout.strip().splitlines() or [None])[0]
    except (OSError, subprocess.TimeoutExpired):
        pass
    build_dir = os.path.dirname(os.path.dirname(os.path.realpath(binary)))
    opts = os.path.join(build_dir, "meson-info", "intro-buildoptions.json")
    try:
        with open(opts) as f:
            for o in json.load(f):
                if o["name"] in ("buildtype", "b_sanitize", "optimization"):
                    info[o["name"]] = o["value"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        out = subprocess.run(["nm", "-D", binary], capture_output=True, text=True, timeout=60).stdout
        info["asan"] = "__asan_init" in out
    except OSError:
        needle, tail_ = b"__asan_init", b""
        with open(binary, "rb") as f:
            for chunk in iter(lambda: f.read(8 * MiB), b""):
                if needle in tail_ + chunk:
                    info["asan"] = True
                    break
                tail_ = chunk[-len(needle):]
    if info["b_sanitize"] and info["b_sanitize"] != "none":
        info["asan"] = info["asan"] or "address" in str(info["b_sanitize"])
    slow = info["asan"] or info["buildtype"] in ("debug", "plain") or info["optimization"] in ("0", "g")
    if info["buildtype"] is None and not info["asan"] and "build-release" not in binary:
        slow = None  # unknown
    parts = [info["version"]] if info["version"] else []
    if info["buildtype"]:
        parts.append("meson buildtype=%s optimization=%s sanitize=%s" % (info["buildtype"], info["optimization"],
                                                                         info["b_sanitize"]))
    parts.append("ASan: %s" % ("yes" if info["asan"] else "no"))
    if slow:
        parts.insert(0, "SLOW BUILD (sanitizers/-O0)")
    elif slow is None:
        parts.insert(0, "build type unknown")
    info["slow"] = bool(slow)
    info["summary"] = "; ".join(parts)
    return info


def event_for(bucket, key, size, etag, part_mib):
    name = "s3:ObjectCreated:CompleteMultipartUpload" if size > part_mib * MiB else "s3:ObjectCreated:Put"
    return minio_event(name, bucket, key, size=size, etag=etag or None)


def scrape_metrics(lt):
    """A few of archie's own figures from its /metrics: publish -> fetch latency and the mean
    duration of each kind of S3 request (store:operation). {} if unavailable."""
    lt.poll()
    if not lt.admin_port:
        return {}
    try:
        conn = http.client.HTTPConnection("127.0.0.1", lt.admin_port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode("utf-8", "replace")
        conn.close()
    except (OSError, http.client.HTTPException):
        return {}
    sums, counts, out = {}, {}, {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        try:
            v = float(value)
        except ValueError:
            continue
        if name == "archie_queue_latency_seconds_sum":
            out["queue_latency_sum_s"] = v
        elif name == "archie_queue_latency_seconds_count":
            out["queue_latency_count"] = v
        elif name.startswith("archie_store_request_duration_seconds_"):
            labels = dict(kv.split("=", 1) for kv in name[name.find("{") + 1:-1].split(",") if "=" in kv)
            key = "%s:%s" % (labels.get("store", "?").strip('"'), labels.get("operation", "?").strip('"'))
            if name.startswith("archie_store_request_duration_seconds_sum"):
                sums[key] = sums.get(key, 0.0) + v
            elif name.startswith("archie_store_request_duration_seconds_count"):
                counts[key] = counts.get(key, 0.0) + v
        elif name.startswith("archie_settle_duration_seconds_sum"):
            out["settle_sum_s"] = out.get("settle_sum_s", 0.0) + v
        elif name.startswith("archie_settle_duration_seconds_count"):
            out["settle_count"] = out.get("settle_count", 0.0) + v
        elif name.startswith("archie_queue_fetch_requests_total"):
            out.setdefault("fetch_requests", {})[name[name.find("{") + 1:-1]] = v
    if out.get("queue_latency_count"):
        out["queue_latency_avg_ms"] = out["queue_latency_sum_s"] / out["queue_latency_count"] * 1e3
    if out.get("settle_count"):
        out["settle_avg_ms"] = out["settle_sum_s"] / out["settle_count"] * 1e3
    out["request_avg_ms"] = {k: sums[k] / counts[k] * 1e3 for k in sums if counts.get(k)}
    out["request_count"] = counts
    return out


# Where an event's time goes, from fields of archie's `replicated` line (when the binary logs them).
STAGES = (("queue wait", "queued_ms", "JetStream publish -> a worker starts handling"),
          ("source read", "source_ms", "time in source requests"),
          ("destination write", "write_ms", "time writing the destinations"),
          ("convergence check", "check_ms", "the re-read of the source after writing"),
          ("copy duration", "duration_ms", "archie's duration_ms, whole ms: the copy rounds and their checks"))
STAGE_FIELDS = tuple(field for _, field, _ in STAGES)


def stage_breakdown(entries, metrics):
    """p50/p99/mean of each stage over the `replicated` lines (None where the binary does not log
    that field), and the mean time to send the ack from archie_settle_duration_seconds."""
    out = {}
    for label, field, meaning in STAGES:
        values = sorted(float(e[field]) for e in entries if e.get(field) is not None)
        out[field] = {"stage": label, "meaning": meaning, "samples": len(values),
                      "p50_ms": pct(values, 50) if values else None, "p99_ms": pct(values, 99) if values else None,
                      "mean_ms": sum(values) / len(values) if values else None}
    out["settle"] = {"stage": "ack", "meaning": "sending the ack/nak (archie_settle_duration_seconds, mean only)",
                     "samples": int(metrics.get("settle_count") or 0), "p50_ms": None, "p99_ms": None,
                     "mean_ms": metrics.get("settle_avg_ms")}
    return out


def print_stages(stages):
    def cell(v):
        return "%9s" % ("-" if v is None else "%.1f" % v)
    print("    per stage, ms (archie's 'replicated' fields; '-': not logged by this binary)")
    print("      %-40s%9s%9s%9s" % ("", "p50", "p99", "mean"))
    for field, st in stages.items():
        name = "%s (%s)" % (st["stage"], field if field != "settle" else "archie_settle_duration_seconds")
        print("      %-40s%s%s%s" % (name, cell(st["p50_ms"]), cell(st["p99_ms"]), cell(st["mean_ms"])), flush=True)


def slug(text):
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


def parse_ts(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()


def pct(sorted_values, p):
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise RunError("timed out after %.0f s waiting for %s" % (timeout, what))


class LogTail:
    """Reads archie's JSON log (its stderr) incrementally."""

    SETTLED = ("replicated", "already replicated", "event skipped", "malformed event", "removed")

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.counts = {}
        self.kept = {"replicated": []}
        self.sanitizer = ""
        self.not_done = {}
        self.admin_port = None
        self.spans = {}  # msg -> [first ts, last ts]

    def poll(self):
        """Read what was appended; returns False (so it can sit in a lambda's `or` chain)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return False
        if not data:
            return False
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            if not raw.startswith(b"{"):
                text = raw.decode("utf-8", "replace")
                if ("Sanitizer" in text or "runtime error:" in text) and not self.sanitizer:
                    self.sanitizer = text.strip()
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            msg = entry.get("msg", "")
            self.counts[msg] = self.counts.get(msg, 0) + 1
            ts = entry.get("ts")
            if ts:  # ISO 8601 UTC strings of one width: they sort as text
                span = self.spans.setdefault(msg, [ts, ts])
                span[0], span[1] = min(span[0], ts), max(span[1], ts)
            if msg == "admin server listening":
                self.admin_port = entry.get("port")
            if msg in self.kept:
                self.kept[msg].append({"key": entry.get("key"), "ts": entry.get("ts"),
                                       **{f: entry[f] for f in STAGE_FIELDS if f in entry}})
            if msg == "event not done":
                k = "%s/%s" % (entry.get("outcome"), entry.get("code"))
                self.not_done[k] = self.not_done.get(k, 0) + 1
        return False

    def seen(self, msg):
        return self.counts.get(msg, 0) > 0

    def count(self, msg):
        return self.counts.get(msg, 0)

    def settled(self):
        return sum(self.counts.get(m, 0) for m in self.SETTLED) + self.not_done.get("term", 0)

    def entries(self, msg):
        return self.kept.get(msg, [])

    def first_ts(self, msg):
        return parse_ts(self.spans[msg][0]) if msg in self.spans else None

    def last_ts(self, msg):
        return parse_ts(self.spans[msg][1]) if msg in self.spans else None

    def summary(self):
        keys = ("replicated", "already replicated", "event skipped", "malformed event", "event not done")
        s = ", ".join("%s %d" % (k, self.counts[k]) for k in keys if self.counts.get(k))
        if self.not_done:
            s += " [%s]" % ", ".join("%s x%d" % kv for kv in sorted(self.not_done.items()))
        return s or "nothing logged"


# --------------------------------------------------------------------------------------------
# table

COLS = [("scenario", 26, "s"), ("tool", 20, "s"), ("wall s", 8, ".2f"), ("obj/s", 9, ".1f"), ("MB/s", 8, ".1f"),
        ("cpu s", 7, ".2f"), ("cpu ms/obj", 10, ".3f"), ("cpu s/GiB", 9, ".2f"), ("RSS MiB", 8, ".0f"),
        ("srv cpu s", 9, ".2f"), ("req/obj", 7, ".2f"), ("archie/this wall", 16, ".2f"), ("cpu", 6, ".2f")]


def finish(m):
    wall = m.get("wall_s")
    if wall:
        m["objects_per_s"] = m["objects"] / wall
        m["mb_per_s"] = m["bytes"] / 1e6 / wall
    if m.get("cpu_s") is not None:
        m["cpu_ms_per_object"] = m["cpu_s"] * 1e3 / m["objects"] if m["objects"] else None
        m["cpu_s_per_gib"] = m["cpu_s"] / (m["bytes"] / GiB) if m["bytes"] else None


def ratio(results, m, key):
    if m["tool"] == "archie" or not m.get("ok"):
        return None
    ref = [r for r in results if r["scenario"] == m["scenario"] and r["tool"] == "archie" and r.get("ok")]
    if not ref or not m.get(key) or ref[0].get(key) is None:
        return None
    return ref[0][key] / m[key]


def show(value, spec, none="-"):
    return none if value is None else format(value, spec)


def fanout_text(f):
    """The lines under scenario 4: 3 destinations against 1, and what the source was read."""
    out = []
    if f.get("wall_ratio"):
        out.append("    fan-out: 3 destinations took %.2fx the wall time (goal <= 1.2x) and %.2fx the CPU of 1 "
                   "destination; bytes written %.1f MB/s (1 dest) vs %.1f MB/s (3 dests)"
                   % (f["wall_ratio"], f["cpu_ratio"], f["written_mb_per_s_one"], f["written_mb_per_s_three"]))
    for label, n in (("one", 1), ("three", 3)):
        g = f[label]
        out.append("    %d dest%s: source bytes read %s (%sx the object bytes, goal 1.00x)%s"
                   % (n, "s" if n > 1 else " ", show(g.get("source_bytes_read"), ",d"),
                      show(g.get("source_read_ratio"), ".2f"),
                      "; links' CPU %.2f cores" % g["link_cores_busy"] if g.get("link_cores_busy") is not None else ""))
    if f.get("link_bound_wall_s"):
        out.append("    each link moves at most %g MB/s: %.1f s is the least wall time for the object bytes"
                   % (f["link_mbps"], f["link_bound_wall_s"]))
    return "\n".join(out)


def skip_only_text(k):
    return ("    skip-only: %d events drained %.2f s after 'consuming' (archie's log: last skip after %s s): %s msg/s "
            "(goal 50,000), CPU %s us per message, server requests %s (archie's bucket health checks)"
            % (k["events"], k["drain_s"] or 0, show(k.get("log_span_s"), ".2f"), show(k["msgs_per_s"], ",.0f"),
               show(k["cpu_us_per_msg"], ".1f"), show(k["server_requests"], "d")))


def requests_text(sr):
    """One line: the requests each endpoint answered, by kind, and the bytes the source sent."""
    parts = []
    for name, d in sr["endpoints"].items():
        if not d["req"]:
            continue
        kinds = ", ".join("%s %d" % kv for kv in sorted(d["by_kind"].items(), key=lambda kv: -kv[1]))
        failed = ", ".join("%s x%d" % kv for kv in sorted(d["failed_by_kind"].items()))
        parts.append("%s %d req (%s%s)" % (name, d["req"], kinds or "no access lines",
                                           "; answered " + failed if failed else ""))
    return "    at the servers: %s; source bytes read %s%s" % (
        "; ".join(parts) or "no requests", format(sr["source_bytes_read"], ",d"),
        "" if sr["log_complete"] else " (access log incomplete: kinds partial, bytes from get_b)")


def print_header():
    print()
    print("  ".join(("%-*s" if fmt == "s" else "%*s") % (w, name) for name, w, fmt in COLS))
    print("  ".join("-" * w for _, w, _ in COLS), flush=True)


def row_text(m, results):
    if m.get("ok"):
        m["ratio_wall_archie_over_this"] = ratio(results, m, "wall_s")
        m["ratio_cpu_archie_over_this"] = ratio(results, m, "cpu_s")
    vals = [m["scenario"], m["tool"], m.get("wall_s"), m.get("objects_per_s"), m.get("mb_per_s"), m.get("cpu_s"),
            m.get("cpu_ms_per_object"), m.get("cpu_s_per_gib"), m.get("peak_rss_mib"), m.get("server_cpu_s"),
            (m.get("server_requests") or {}).get("per_object"),
            m.get("ratio_wall_archie_over_this"), m.get("ratio_cpu_archie_over_this")]
    out = []
    for (name, w, fmt), v in zip(COLS, vals):
        if fmt == "s":
            out.append("%-*s" % (w, str(v)[:w]))
        else:
            out.append("%*s" % (w, "-" if v is None else format(v, fmt)))
    text = "  ".join(out)
    if m.get("server_requests"):
        text += "\n" + requests_text(m["server_requests"])
    if not m.get("ok"):
        text += "\n    FAILED: %s" % m.get("error")
    return text


def print_row(m, results):
    print(row_text(m, results), flush=True)


def print_summary(h):
    print("\n== results (%s; archie/this < 1: archie took less)" % h.mode)
    print_header()
    for m in h.results:
        print(row_text(m, h.results))
    if h.fanout:
        print("\n" + fanout_text(h.fanout).strip())
    if h.skip_only:
        print(skip_only_text(h.skip_only).strip())
    if h.latency:
        L = h.latency
        print("latency (publish -> object at the destination, %d events at %.1f/s): p50 %.1f ms  p90 %.1f ms  "
              "p99 %.1f ms  max %.1f ms" % (L["samples"], L["rate_achieved"] or 0, L["p50_ms"], L["p90_ms"],
                                            L["p99_ms"], L["max_ms"]))
        print_stages(L["stages"])
    if h.meta.get("archie", {}).get("slow"):
        print("\n!!! archie was an ASan/debug build (%s): its CPU, RSS and time are not representative."
              % h.meta["archie"]["path"])
    if h.problems:
        print("\nPROBLEMS:")
        for p in h.problems:
            print("  - " + p)
    if h.args.json:
        print("\nJSON: %s" % h.args.json)


# --------------------------------------------------------------------------------------------

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
    ap.add_argument("--scenarios", default="1,2,3,4,5,6", help="comma-separated subset of 1..6 (default all)")
    ap.add_argument("--tools", default="archie,rclone,aws", help="comma-separated subset of archie,rclone,aws")
    ap.add_argument("--json", help="write results here (default: a file under the temp dir, printed at the end)")
    ap.add_argument("--archie", default=default_archie(),
                    help="archie binary (default: $ARCHIE_BIN, else build-release/src/archie, else build/src/archie)")
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
    if not a.scenario_set or not a.scenario_set <= {1, 2, 3, 4, 5, 6}:
        ap.error("--scenarios: choose from 1,2,3,4,5,6")
    a.tool_set = {t.strip() for t in a.tools.split(",") if t.strip()}
    if not a.tool_set <= {"archie", "rclone", "aws"}:
        ap.error("--tools: choose from archie,rclone,aws")
    if not os.access(a.archie, os.X_OK):
        ap.error("no archie binary at %s (set ARCHIE_BIN or --archie)" % a.archie)
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
        h.problems.append("interrupted (SIGINT): the results are partial")
    except SystemExit as e:
        if isinstance(e.code, int) and e.code >= 128:
            h.problems.append("interrupted (signal %d): the results are partial" % (e.code - 128))
        raise
    finally:
        try:
            h.save()
            if h.results or h.problems:
                print_summary(h)
        finally:
            h.close()
            if args.keep_work:
                print("work dir kept: %s" % work)
            else:
                shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
