#!/usr/bin/python3
"""Real-server test rig for archie.

Starts throwaway servers on 127.0.0.1 only:

* ``NatsServer``  - a single nats-server with JetStream.
* ``NatsCluster`` - n nats-servers (default 3) forming a JetStream cluster.
* ``CephRgw``     - a one-mon / one-OSD (memstore) Ceph cluster with two
                    radosgw daemons, i.e. two distinct S3 endpoints that
                    serve the same data.
* ``Rig``         - a context manager composing the above.

Every daemon is a child of this process (started in its own session and,
on Linux, with PR_SET_PDEATHSIG=SIGKILL so that nothing outlives the Python
process that owns it, even if that process is SIGKILLed).  Daemons must
therefore be started from the thread that lives as long as the rig (the main
thread in practice).  Everything is written below one temporary directory.

Python 3 standard library only; run with /usr/bin/python3.

CLI::

    /usr/bin/python3 tests/rig/rig.py up [--no-ceph] [--no-nats] [--cluster] \
        [--state FILE]

starts the rig, writes a JSON description to FILE (and stdout), then stays in
the foreground until SIGTERM/SIGINT and stops everything cleanly.
"""

import argparse
import atexit
import ctypes
import datetime
import hashlib
import hmac
import http.client
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

LOOPBACK = "127.0.0.1"


def _binary(env_name, default, name):
    value = os.environ.get(env_name)
    if value:
        return value
    if os.path.exists(default):
        return default
    return shutil.which(name) or default


NATS_SERVER = _binary("ARCHIE_NATS_SERVER", "/usr/sbin/nats-server", "nats-server")
AWS = _binary("ARCHIE_AWS", "/usr/bin/aws", "aws")
RCLONE = _binary("ARCHIE_RCLONE", "/usr/bin/rclone", "rclone")
CEPH = "/usr/bin/ceph"
CEPH_MON = "/usr/bin/ceph-mon"
CEPH_OSD = "/usr/bin/ceph-osd"
RADOSGW = "/usr/bin/radosgw"
RADOSGW_ADMIN = "/usr/bin/radosgw-admin"
MONMAPTOOL = "/usr/bin/monmaptool"

# Fixed cluster identity: every rig is a private cluster with its own
# monitor port, so they never see each other even with the same fsid.
CEPH_FSID = "5d1c0e3a-7f0b-4b8e-9a4c-a4c41e000001"
S3_REGION = "us-east-1"
DEFAULT_USERS = {
    "archie": ("ARCHIEACCESSKEY0001", "archie-secret-key-0001-do-not-use"),
    "other": ("OTHERACCESSKEY00002", "other-secret-key-0002-do-not-use"),
}


class RigError(RuntimeError):
    pass


def _log(msg):
    if os.environ.get("ARCHIE_RIG_QUIET") != "1":
        sys.stderr.write("[rig %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
        sys.stderr.flush()


# --------------------------------------------------------------------------
# ports

_handed_out = set()
_port_lock = threading.Lock()


def free_port():
    """A TCP port that is currently free on 127.0.0.1.

    Chosen below the kernel's ephemeral range (so outgoing connections made
    by clients cannot grab it between now and the server's bind) and never
    handed out twice by this process.
    """
    lo, hi = 20000, 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
        hi = min(hi, eph_lo - 1)
    except (OSError, ValueError, IndexError):
        pass
    with _port_lock:
        for _ in range(2000):
            port = random.randint(lo, hi)
            if port in _handed_out:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
            finally:
                s.close()
            _handed_out.add(port)
            return port
    # Fall back to whatever the kernel gives us.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    finally:
        s.close()
    with _port_lock:
        _handed_out.add(port)
    return port


def port_open(port, host=LOOPBACK, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# process management

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


def spawn(argv, log_path, env=None, cwd=None):
    """Start a daemon in the background; stdout+stderr appended to log_path."""
    logf = open(log_path, "ab")
    try:
        logf.write(("\n=== %s %s\n" % (datetime.datetime.now().isoformat(),
                                      " ".join(shlex.quote(a) for a in argv))).encode())
        logf.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True, close_fds=True,
                                preexec_fn=_child_setup)
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
            _log("pid %d ignored %s for %.1fs, sending SIGKILL"
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


def _tail(path, n=30):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return "(no log at %s)" % path


def _check_alive(proc, what):
    if proc is None or proc.poll() is not None:
        code = None if proc is None else proc.returncode
        log = getattr(proc, "rig_log", None)
        raise RigError("%s exited early (rc=%s); log %s:\n%s"
                       % (what, code, log, _tail(log) if log else ""))


def _run(argv, timeout=60, check=True, env=None, input=None):
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


def _http_get(url, timeout=2.0):
    """(status, body) or None if there is no HTTP answer."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", u.path or "/")
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _wait(pred, timeout, what, interval=0.05, alive=()):
    deadline = time.monotonic() + timeout
    while True:
        for proc, name in alive:
            _check_alive(proc, name)
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RigError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# --------------------------------------------------------------------------
# S3 SigV4 (enough for readiness checks and negative-auth tests)

def _uri_encode(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def s3_request(endpoint, method, path="/", access_key=None, secret_key=None,
               body=b"", headers=None, query=None, region=S3_REGION, timeout=30.0):
    """Send one S3 request, SigV4-signed when keys are given.

    path is the unencoded "/bucket/key"; query is a dict or list of pairs.
    Returns (status, headers dict with lower-case names, body bytes).
    """
    u = urllib.parse.urlsplit(endpoint)
    host = u.netloc
    if isinstance(body, str):
        body = body.encode()
    enc_path = _uri_encode(path, safe="/-_.~")
    pairs = list(query.items()) if isinstance(query, dict) else list(query or [])
    canon_query = "&".join("%s=%s" % (_uri_encode(str(k)), _uri_encode(str(v)))
                           for k, v in sorted((str(k), str(v)) for k, v in pairs))
    hdrs = {k.lower(): str(v).strip() for k, v in (headers or {}).items()}
    hdrs["host"] = host
    if access_key is not None:
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        payload = hashlib.sha256(body).hexdigest()
        hdrs["x-amz-date"] = amz_date
        hdrs["x-amz-content-sha256"] = payload
        names = sorted(hdrs)
        canon_headers = "".join("%s:%s\n" % (n, hdrs[n]) for n in names)
        signed = ";".join(names)
        canon_req = "\n".join([method, enc_path, canon_query, canon_headers, signed, payload])
        scope = "%s/%s/s3/aws4_request" % (day, region)
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canon_req.encode()).hexdigest()])
        key = ("AWS4" + secret_key).encode()
        for part in (day, region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        hdrs["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                                 % (access_key, scope, signed, sig))
    target = enc_path + ("?" + canon_query if canon_query else "")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        send = dict(hdrs)
        del send["host"]  # http.client adds Host itself (same value)
        conn.request(method, target, body=body if body or method in ("PUT", "POST") else None,
                     headers=send)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


# --------------------------------------------------------------------------
# NATS

class NatsServer:
    """One nats-server with JetStream, bound to 127.0.0.1."""

    def __init__(self, workdir, port=None, name=None, cluster_port=None, routes=None,
                 cluster_name=None, monitor_port=None):
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.name = name or "archie-nats-%d" % self.port
        self.cluster_port = cluster_port
        self.routes = list(routes or [])
        self.cluster_name = cluster_name
        self.store_dir = os.path.join(self.workdir, "store")
        self.log_path = os.path.join(self.workdir, "nats-server.log")
        self.proc = None
        self.timings = {}

    @property
    def url(self):
        return "nats://%s:%d" % (LOOPBACK, self.port)

    @property
    def monitor_url(self):
        return "http://%s:%d" % (LOOPBACK, self.monitor_port)

    @property
    def pid(self):
        return self.proc.pid if self.running else None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def clustered(self):
        return self.cluster_port is not None

    def command(self):
        argv = [NATS_SERVER, "-js", "-a", LOOPBACK, "-p", str(self.port),
                "-m", str(self.monitor_port), "-sd", self.store_dir, "-n", self.name]
        if self.cluster_port is not None:
            argv += ["--cluster", "nats://%s:%d" % (LOOPBACK, self.cluster_port)]
            if self.cluster_name:
                argv += ["--cluster_name", self.cluster_name]
            if self.routes:
                argv += ["--routes", ",".join(self.routes)]
        return argv

    def launch(self):
        """Spawn without waiting."""
        if self.running:
            raise RigError("%s already running (pid %d)" % (self.name, self.proc.pid))
        os.makedirs(self.store_dir, exist_ok=True)
        self._t0 = time.monotonic()
        self.proc = spawn(self.command(), self.log_path)

    def monitor(self, path, timeout=2.0):
        """GET a monitoring endpoint; returns (status, parsed-json-or-bytes) or None."""
        r = _http_get(self.monitor_url + path, timeout=timeout)
        if r is None:
            return None
        status, body = r
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def healthy(self):
        r = self.monitor("/healthz")
        return bool(r and r[0] == 200 and isinstance(r[1], dict) and r[1].get("status") == "ok")

    def up(self):
        r = self.monitor("/varz")
        return bool(r and r[0] == 200) and port_open(self.port)

    def jsz(self):
        r = self.monitor("/jsz")
        return r[1] if r and r[0] == 200 and isinstance(r[1], dict) else None

    def meta_leader(self):
        """Name of the JetStream meta leader as this node sees it (clustered only)."""
        j = self.jsz()
        return ((j or {}).get("meta_cluster") or {}).get("leader") or None

    def wait_ready(self, timeout=30.0, healthy=None):
        """healthy=None: /healthz ok for standalone, only "up" for cluster nodes
        (a lone cluster node has no meta leader and stays unhealthy)."""
        if healthy is None:
            healthy = not self.clustered
        pred = self.healthy if healthy else self.up
        _wait(pred, timeout, "nats %s %s" % (self.name, "/healthz ok" if healthy else "up"),
              alive=[(self.proc, "nats-server %s" % self.name)])
        self.timings["start"] = time.monotonic() - self._t0

    def start(self, timeout=30.0, healthy=None):
        self.launch()
        try:
            self.wait_ready(timeout, healthy)
        except BaseException:
            self.kill()
            raise
        return self

    def stop(self, timeout=15.0):
        """SIGTERM, wait, SIGKILL fallback."""
        if self.proc is not None:
            self.timings["stop"] = terminate(self.proc, timeout)

    def kill(self):
        if self.proc is not None:
            kill(self.proc)

    def restart(self, timeout=30.0, healthy=True):
        """Stop and start again with the same ports and store dir."""
        self.stop()
        return self.start(timeout, healthy)

    def describe(self):
        return {"name": self.name, "url": self.url, "monitor_url": self.monitor_url,
                "port": self.port, "monitor_port": self.monitor_port,
                "cluster_port": self.cluster_port, "pid": self.pid,
                "store_dir": self.store_dir, "log": self.log_path}


class NatsCluster:
    """n nats-servers forming one JetStream cluster on 127.0.0.1."""

    def __init__(self, workdir, n=3, cluster_name="archie-rig"):
        self.workdir = os.path.abspath(workdir)
        self.cluster_name = cluster_name
        cports = [free_port() for _ in range(n)]
        self.nodes = []
        for i in range(n):
            routes = ["nats://%s:%d" % (LOOPBACK, p) for j, p in enumerate(cports) if j != i]
            self.nodes.append(NatsServer(os.path.join(self.workdir, "n%d" % (i + 1)),
                                         name="n%d" % (i + 1), cluster_port=cports[i],
                                         routes=routes, cluster_name=cluster_name))
        self.timings = {}

    @property
    def urls(self):
        return [n.url for n in self.nodes]

    @property
    def url(self):
        """Comma separated server list, as NATS clients accept it."""
        return ",".join(self.urls)

    def launch(self):
        self._t0 = time.monotonic()
        for node in self.nodes:
            node.launch()

    def meta_leader(self):
        """Leader name if every running node agrees on one, else None."""
        seen = set()
        for node in self.nodes:
            if not node.running:
                continue
            seen.add(node.meta_leader())
        if len(seen) == 1:
            return seen.pop()
        return None

    def wait_ready(self, timeout=60.0):
        alive = [(n.proc, "nats-server %s" % n.name) for n in self.nodes if n.proc]
        _wait(self.meta_leader, timeout, "JetStream meta leader", alive=alive)
        _wait(lambda: all(n.healthy() for n in self.nodes if n.running), timeout,
              "all cluster nodes /healthz ok", alive=alive)
        self.timings["start"] = time.monotonic() - self._t0

    def start(self, timeout=60.0):
        self.launch()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout=15.0):
        t0 = time.monotonic()
        for node in reversed(self.nodes):
            node.stop(timeout)
        self.timings["stop"] = time.monotonic() - t0

    def describe(self):
        return {"cluster_name": self.cluster_name, "urls": self.urls, "url": self.url,
                "meta_leader": self.meta_leader(), "nodes": [n.describe() for n in self.nodes]}


# --------------------------------------------------------------------------
# Ceph + radosgw

class CephRgw:
    """Throwaway single-node Ceph (1 mon, 1 memstore OSD, no mgr) with
    `num_rgw` radosgw daemons, each a distinct S3 endpoint on 127.0.0.1."""

    def __init__(self, workdir, num_rgw=2, users=None, memstore_bytes=8 << 30,
                 mon_port=None, rgw_ports=None, fsid=CEPH_FSID):
        self.workdir = os.path.abspath(workdir)
        self.fsid = fsid
        self.mon_port = mon_port or free_port()
        self.rgw_ports = list(rgw_ports or [free_port() for _ in range(num_rgw)])
        self.rgw_names = ["client.rgw.%s" % chr(ord("a") + i) for i in range(len(self.rgw_ports))]
        self.users = dict(users or DEFAULT_USERS)
        self.memstore_bytes = int(memstore_bytes)
        self.conf = os.path.join(self.workdir, "ceph.conf")
        self.run_dir = os.path.join(self.workdir, "run")
        self.log_dir = os.path.join(self.workdir, "log")
        self.mon_dir = os.path.join(self.workdir, "mon.a")
        self.osd_dir = os.path.join(self.workdir, "osd.0")
        self.aws_dir = os.path.join(self.workdir, "aws")
        self.osd_uuid = str(uuid.uuid5(uuid.UUID(fsid), "osd.0"))
        self.mon = None
        self.osd = None
        self.rgws = [None] * len(self.rgw_ports)
        self.timings = {}

    # ---- addresses / credentials
    @property
    def endpoints(self):
        return ["http://%s:%d" % (LOOPBACK, p) for p in self.rgw_ports]

    def keys(self, user="archie"):
        return self.users[user]

    # ---- config
    def _write_conf(self):
        for d in (self.run_dir, self.log_dir, self.mon_dir, self.osd_dir, self.aws_dir,
                  os.path.join(self.workdir, "crash")):
            os.makedirs(d, exist_ok=True)
        w = self.workdir
        g = {
            "fsid": self.fsid,
            "mon_host": "[v2:%s:%d]" % (LOOPBACK, self.mon_port),
            "public_addr": LOOPBACK,
            "cluster_addr": LOOPBACK,
            "ms_bind_ipv4": "true",
            "ms_bind_ipv6": "false",
            "auth_cluster_required": "none",
            "auth_service_required": "none",
            "auth_client_required": "none",
            "ms_mon_client_mode": "crc secure",
            "osd_pool_default_size": "1",
            "osd_pool_default_min_size": "1",
            "mon_allow_pool_size_one": "true",
            "mon_warn_on_pool_no_redundancy": "false",
            "osd_crush_chooseleaf_type": "0",
            "osd_pool_default_pg_num": "8",
            "osd_pool_default_pgp_num": "8",
            "paxos_propose_interval": "0.01",
            "paxos_min_wait": "0.01",
            # A SIGKILLed radosgw leaves its watches on the control objects;
            # until the OSD times them out, metadata writes (create bucket,
            # user) on the surviving gateway block in notify (~30 s by
            # default). Clients ping their watches every objecter tick.
            "osd_client_watch_timeout": "5",
            "objecter_tick_interval": "1",
            # every path under the rig dir
            "run_dir": self.run_dir,
            "pid_file": os.path.join(self.run_dir, "$name.pid"),
            "admin_socket": os.path.join(self.run_dir, "$name.asok"),
            "log_file": os.path.join(self.log_dir, "$name.log"),
            "log_to_stderr": "false",
            "err_to_stderr": "true",
            "mon_cluster_log_file": "default=%s cluster=%s" % (
                os.path.join(self.log_dir, "cluster.$channel.log"),
                os.path.join(self.log_dir, "cluster.log")),
            "crash_dir": os.path.join(w, "crash"),
            "keyring": os.path.join(w, "keyring"),
            "mon_data": self.mon_dir,
            "osd_data": self.osd_dir,
            "mgr_data": os.path.join(w, "mgr.$id"),
            "mds_data": os.path.join(w, "mds.$id"),
            "rgw_data": os.path.join(w, "rgw.$id"),
            "exporter_sock_dir": self.run_dir,
        }
        osd = {
            "osd_objectstore": "memstore",
            "memstore_device_bytes": str(self.memstore_bytes),
            "osd_crush_update_on_start": "true",
            "crush_location": "root=default host=archie-rig",
        }
        client = {
            # CLI tools (ceph, radosgw-admin) must not fight over one socket
            "admin_socket": os.path.join(self.run_dir, "$name.$pid.asok"),
        }
        lines = ["# generated by archie tests/rig/rig.py", "[global]"]
        lines += ["%s = %s" % kv for kv in g.items()]
        lines += ["", "[osd]"] + ["%s = %s" % kv for kv in osd.items()]
        lines += ["", "[client]"] + ["%s = %s" % kv for kv in client.items()]
        for name, port in zip(self.rgw_names, self.rgw_ports):
            lines += ["", "[%s]" % name,
                      # tcp_nodelay: without it RGW answers small GETs on a kept-alive
                      # connection ~44 ms late (Nagle meets the client's delayed ACK).
                      "rgw_frontends = beast endpoint=%s:%d tcp_nodelay=1" % (LOOPBACK, port),
                      "admin_socket = %s" % os.path.join(self.run_dir, "%s.asok" % name),
                      "rgw_gc_obj_min_wait = 2",
                      "rgw_gc_processor_period = 5",
                      "rgw_gc_processor_max_time = 5",
                      "rgw_crypt_require_ssl = false",
                      "rgw_enable_usage_log = false",
                      # LC threads of two gateways fight over the same
                      # locks, sleep 5 s on failure and delay shutdown.
                      "rgw_enable_lc_threads = false",
                      "rgw_thread_pool_size = 128"]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        # aws cli config: path-style, no user profile
        with open(os.path.join(self.aws_dir, "config"), "w") as f:
            f.write("[default]\nregion = %s\ns3 =\n    addressing_style = path\n" % S3_REGION)
        open(os.path.join(self.aws_dir, "credentials"), "w").close()
        open(os.path.join(self.workdir, "rclone.conf"), "w").close()

    def ceph_env(self):
        env = dict(os.environ)
        env["CEPH_CONF"] = self.conf
        env.pop("CEPH_ARGS", None)
        return env

    def ceph(self, *args, timeout=60, check=True):
        """Run the `ceph` CLI against this cluster; returns CompletedProcess."""
        return _run([CEPH, "-c", self.conf, "--connect-timeout", str(int(timeout))] + list(args),
                    timeout=timeout + 10, check=check, env=self.ceph_env())

    def radosgw_admin(self, *args, timeout=60, check=True):
        return _run([RADOSGW_ADMIN, "-c", self.conf] + list(args), timeout=timeout,
                    check=check, env=self.ceph_env())

    # ---- lifecycle
    def _phase(self, name, t0):
        self.timings[name] = round(time.monotonic() - t0, 3)
        return time.monotonic()

    def start(self, timeout=60.0):
        t_start = t = time.monotonic()
        try:
            self._write_conf()
            monmap = os.path.join(self.workdir, "monmap")
            _run([MONMAPTOOL, "--create", "--clobber", "--fsid", self.fsid,
                  "--addv", "a", "[v2:%s:%d]" % (LOOPBACK, self.mon_port), monmap])
            mkfs_mon = subprocess.Popen([CEPH_MON, "-c", self.conf, "--mkfs", "-i", "a",
                                         "--monmap", monmap],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env=self.ceph_env())
            # --no-mon-config: otherwise mkfs blocks for minutes asking a mon
            mkfs_osd = subprocess.Popen([CEPH_OSD, "-c", self.conf, "-i", "0", "--mkfs",
                                         "--no-mon-config", "--osd-uuid", self.osd_uuid],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env=self.ceph_env())
            for p, what in ((mkfs_mon, "ceph-mon --mkfs"), (mkfs_osd, "ceph-osd --mkfs")):
                try:
                    out, _ = p.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
                    raise RigError("%s timed out" % what)
                if p.returncode != 0:
                    raise RigError("%s failed: %s" % (what, out.decode(errors="replace")))
            t = self._phase("mkfs", t)

            self.mon = spawn([CEPH_MON, "-c", self.conf, "-f", "-i", "a"],
                             os.path.join(self.log_dir, "mon.a.out"), env=self.ceph_env())
            # `osd new` doubles as the wait for the mon to form quorum.
            self.ceph("osd", "new", self.osd_uuid, "0", timeout=timeout)
            t = self._phase("mon", t)

            self.osd = spawn([CEPH_OSD, "-c", self.conf, "-f", "-i", "0"],
                             os.path.join(self.log_dir, "osd.0.out"), env=self.ceph_env())
            # No need to wait for "osd up" here: radosgw blocks creating its
            # pools until the OSD is up and its PGs are active.
            self._spawn_rgw(0)
            self._wait_rgw(0, timeout)
            t = self._phase("osd+rgw.a", t)

            # Further gateways only once the first one has created the zone
            # and pools: started together, one of them stalls for ~5 s.
            for i in range(1, len(self.rgws)):
                self._spawn_rgw(i)
            for uid, (ak, sk) in self.users.items():
                self.radosgw_admin("user", "create", "--uid", uid, "--display-name", uid,
                                   "--access-key", ak, "--secret", sk)
            t = self._phase("users", t)

            for i in range(1, len(self.rgws)):
                self._wait_rgw(i, timeout)
            for i in range(len(self.rgws)):
                self._wait_users(i, timeout)
            t = self._phase("rgw_ready", t)
        except BaseException:
            _log("ceph start failed; stopping what was started (logs in %s)" % self.log_dir)
            self.stop()
            raise
        self.timings["start"] = round(time.monotonic() - t_start, 3)
        return self

    def _spawn_rgw(self, i):
        if self.rgws[i] is not None and self.rgws[i].poll() is None:
            raise RigError("%s already running" % self.rgw_names[i])
        name = self.rgw_names[i]
        self.rgws[i] = spawn([RADOSGW, "-c", self.conf, "-f", "-n", name],
                             os.path.join(self.log_dir, "%s.out" % name), env=self.ceph_env())

    def rgw_answers(self, i):
        return _http_get(self.endpoints[i] + "/", timeout=2.0) is not None

    def _wait_rgw(self, i, timeout):
        alive = [(self.mon, "ceph-mon"), (self.osd, "ceph-osd"),
                 (self.rgws[i], "radosgw %s" % self.rgw_names[i])]
        _wait(lambda: self.rgw_answers(i), timeout,
              "radosgw %s answering on %s" % (self.rgw_names[i], self.endpoints[i]),
              alive=alive)

    def _wait_users(self, i, timeout):
        def ok():
            for uid in self.users:
                ak, sk = self.users[uid]
                try:
                    st, _, _ = s3_request(self.endpoints[i], "GET", "/", ak, sk, timeout=5)
                except (OSError, http.client.HTTPException):
                    return False
                if st != 200:
                    return False
            return True
        _wait(ok, timeout, "users known to %s" % self.rgw_names[i], interval=0.1,
              alive=[(self.rgws[i], "radosgw %s" % self.rgw_names[i])])

    def start_rgw(self, i, timeout=60.0):
        """(Re)start radosgw i and wait until it serves signed requests."""
        t0 = time.monotonic()
        self._spawn_rgw(i)
        self._wait_rgw(i, timeout)
        self._wait_users(i, timeout)
        return time.monotonic() - t0

    def stop_rgw(self, i, timeout=15.0):
        """Graceful stop (SIGTERM, SIGKILL fallback) of radosgw i."""
        return terminate(self.rgws[i], timeout)

    def kill_rgw(self, i):
        """SIGKILL radosgw i (fault injection)."""
        return kill(self.rgws[i])

    def rgw_pid(self, i):
        p = self.rgws[i]
        return p.pid if p is not None and p.poll() is None else None

    def stop(self, timeout=15.0):
        """Stop rgw(s), then osd, then mon; one at a time."""
        t0 = time.monotonic()
        for i, p in enumerate(self.rgws):
            if p is not None:
                self.timings["stop_%s" % self.rgw_names[i]] = round(terminate(p, timeout), 3)
        if self.osd is not None:
            self.timings["stop_osd"] = round(terminate(self.osd, timeout), 3)
        if self.mon is not None:
            self.timings["stop_mon"] = round(terminate(self.mon, timeout), 3)
        self.timings["stop"] = round(time.monotonic() - t0, 3)

    # ---- client helpers
    def aws_env(self, user="archie"):
        ak, sk = self.users[user]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_ACCESS_KEY_ID": ak,
            "AWS_SECRET_ACCESS_KEY": sk,
            "AWS_DEFAULT_REGION": S3_REGION,
            "AWS_REGION": S3_REGION,
            "AWS_CONFIG_FILE": os.path.join(self.aws_dir, "config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.aws_dir, "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
        })
        return env

    def aws(self, args, user="archie", endpoint_index=0, check=False, timeout=600,
            input=None, env=None):
        """Run /usr/bin/aws --endpoint-url <rgw i> ARGS (list or string)."""
        if isinstance(args, str):
            args = shlex.split(args)
        e = self.aws_env(user)
        if env:
            e.update(env)
        argv = [AWS, "--endpoint-url", self.endpoints[endpoint_index]] + list(args)
        return subprocess.run(argv, env=e, capture_output=True, text=True, check=check,
                              timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def rclone_env(self, src_user="archie", dst_user="archie", src_index=0, dst_index=None):
        """Env for /usr/bin/rclone with remotes `src:` and `dst:` (S3, provider Ceph)."""
        if dst_index is None:
            dst_index = 1 if len(self.endpoints) > 1 else 0
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") and not k.startswith("RCLONE_")}
        env["RCLONE_CONFIG"] = os.path.join(self.workdir, "rclone.conf")
        for remote, user, idx in (("SRC", src_user, src_index), ("DST", dst_user, dst_index)):
            ak, sk = self.users[user]
            p = "RCLONE_CONFIG_%s_" % remote
            env.update({p + "TYPE": "s3", p + "PROVIDER": "Ceph", p + "ENV_AUTH": "false",
                        p + "ACCESS_KEY_ID": ak, p + "SECRET_ACCESS_KEY": sk,
                        p + "ENDPOINT": self.endpoints[idx], p + "REGION": S3_REGION,
                        p + "FORCE_PATH_STYLE": "true"})
        return env

    def rclone(self, args, check=False, timeout=600, **kw):
        if isinstance(args, str):
            args = shlex.split(args)
        return subprocess.run([RCLONE] + list(args), env=self.rclone_env(**kw),
                              capture_output=True, text=True, check=check, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def s3(self, method, path="/", user="archie", endpoint_index=0, **kw):
        """Signed raw S3 request; returns (status, headers, body)."""
        ak, sk = self.users[user]
        return s3_request(self.endpoints[endpoint_index], method, path, ak, sk, **kw)

    def make_bucket(self, name, user="archie", endpoint_index=0):
        self.aws(["s3api", "create-bucket", "--bucket", name], user=user,
                 endpoint_index=endpoint_index, check=True)
        return name

    def describe(self):
        return {
            "endpoints": self.endpoints,
            "region": S3_REGION,
            "users": {u: {"access_key": a, "secret_key": s} for u, (a, s) in self.users.items()},
            "fsid": self.fsid,
            "conf": self.conf,
            "mon": "v2:%s:%d" % (LOOPBACK, self.mon_port),
            "pids": {"mon.a": self.mon.pid if self.mon else None,
                     "osd.0": self.osd.pid if self.osd else None,
                     **{n: self.rgw_pid(i) for i, n in enumerate(self.rgw_names)}},
            "dirs": {"base": self.workdir, "log": self.log_dir, "run": self.run_dir},
            "aws_config_file": os.path.join(self.aws_dir, "config"),
        }


# --------------------------------------------------------------------------
# Rig

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
        _log("rig up in %.2fs (%s)" % (self.timings["start"], self.base_dir))
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
                _log("keeping rig dir %s" % self.base_dir)
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
            for proc in list(_live):
                if proc.poll() is not None:
                    _log("warning: pid %d exited with %s" % (proc.pid, proc.returncode))
                    _forget(proc)
        _log("signal received, stopping")
    finally:
        rig.close()
        _log("rig stopped in %.2fs" % rig.timings.get("stop", 0.0))
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
