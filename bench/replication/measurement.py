"""How the benchmark measures: CPU and memory of processes (/proc, os.wait4), pipelines of
tools run under a deadline, what the servers did during a run (their CPU and, on the rig, the
requests the RGW endpoints answered: perf counters and access log), and percentiles."""
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time

from testkit.daemons import killpg, reap

from .common import RunError, start

CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def _kib_field(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def proc_status_kib(pid, field):
    """A KiB field of /proc/PID/status (VmHWM: peak RSS), or None."""
    return _kib_field("/proc/%d/status" % pid, field)


def proc_meminfo_kib(field):
    """A KiB field of /proc/meminfo (MemTotal, MemAvailable), or None."""
    return _kib_field("/proc/meminfo", field)


def timeout_for(scale, nbytes, nobjects):
    """How long a run moving nbytes in nobjects may take before it counts as timed out."""
    return scale * (600 + nbytes / 2e6 + nobjects * 0.5)


def pct(sorted_values, p):
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def run_pipeline(step, deadline, stderr_paths, stop_early):
    """Start one pipeline [(argv, env), ...] (usually one command; each process's stderr in its
    file of stderr_paths) and reap every process with os.wait4: (exit codes, user CPU s, system
    CPU s, peak RSS KiB), the rusage covering each process's own children too. A watchdog kills
    the processes at the deadline or once stop_early() is true (a dead server would make a tool
    retry until the deadline). RunError if a process cannot start."""
    procs = []
    prev = None
    try:
        for i, ((argv, env), err) in enumerate(zip(step, stderr_paths)):
            open(err, "w").close()
            last = i == len(step) - 1
            p = start(argv, env, stdin=prev.stdout if prev else subprocess.DEVNULL,
                      stdout=subprocess.DEVNULL if last else subprocess.PIPE, stderr_path=err)
            if prev is not None:
                prev.stdout.close()  # the next stage owns the pipe now
            procs.append(p)
            prev = p
    except OSError as e:
        for p in procs:
            killpg(p)
            reap(p)
        raise RunError("cannot start %s: %s" % (step[len(procs)][0][0], e))
    stop_watching = threading.Event()

    def watchdog():
        while not stop_watching.wait(1.0):
            if time.monotonic() >= deadline or stop_early():
                for p in procs:
                    killpg(p)
                return
    threading.Thread(target=watchdog, daemon=True).start()
    codes, cpu_u, cpu_s, rss = [], 0.0, 0.0, 0
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
    return codes, cpu_u, cpu_s, rss


# --------------------------------------------------------------------------------------------
# what the servers did: CPU, and (rig only) the requests RGW answered

class ServerMeter:
    """CPU used by the server processes (and the fan-out links) and the requests the rig's RGW
    endpoints answered, between a mark() and a use(); problems found go to `problems`."""

    def __init__(self, servers, problems):
        self.servers = servers  # .server_pids, .link_pids, .rgw_requests
        self.problems = problems

    def cpu(self, pids=None):
        """CPU seconds used so far by the server processes (or by `pids`); None without any."""
        pids = self.servers.server_pids if pids is None else pids
        if not pids:
            return None
        total = 0.0
        for pid in pids.values():
            c = proc_cpu(pid) if pid else None
            if c:
                total += c[0] + c[1]
        return total

    def mark(self):
        """What the servers have done so far: CPU seconds, the fan-out links' CPU seconds and (rig)
        RGW request counters."""
        requests = None
        if self.servers.rgw_requests:
            try:
                requests = self.servers.rgw_requests.snapshot()
            except (OSError, ValueError, KeyError) as e:  # a gateway down: the row just lacks req/obj
                self.problems.append("RGW perf counters unreadable: %s" % e)
        return self.cpu(), self.cpu(self.servers.link_pids), requests

    def use(self, m, mark):
        """Row m gets what the servers did since `mark`: CPU and the requests they answered."""
        cpu0, link_cpu0, requests0 = mark
        m["server_cpu_s"] = None if cpu0 is None else self.cpu() - cpu0
        if link_cpu0 is not None:
            m["link_cpu_s"] = self.cpu(self.servers.link_pids) - link_cpu0
        if requests0 is not None:
            rgw = self.servers.rgw_requests
            try:
                m["server_requests"] = rgw.delta(requests0, rgw.snapshot(), m["objects"])
            except (OSError, ValueError, KeyError) as e:
                self.problems.append("RGW perf counters unreadable: %s" % e)

    def settle(self, quiet=0.1, window=0.5, longest=60.0):
        """Wait until the servers are quiet (rig: their CPU use below `quiet` cores over `window`
        seconds, twice in a row; external: a 2 s pause), so that one run's leftovers (RGW garbage
        collection, OSD trimming) do not slow the next one down."""
        if not self.servers.server_pids:
            time.sleep(2.0)
            return
        deadline = time.monotonic() + longest
        calm = 0
        before = self.cpu()
        while time.monotonic() < deadline and calm < 2:
            time.sleep(window)
            now = self.cpu()
            calm = calm + 1 if now - before < quiet * window else 0
            before = now


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
