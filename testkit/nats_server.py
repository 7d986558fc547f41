"""nats-server with JetStream on 127.0.0.1: one server (NatsServer) or n of them forming a
JetStream cluster (NatsCluster), each with its monitoring port, store dir and log below its
own work dir."""
import json
import os
import time

from testkit.daemons import RigError, kill, spawn, terminate, wait_for
from testkit.net import LOOPBACK, free_port, http_answer, port_open
from testkit.paths import find_binary

NATS_SERVER = find_binary("ARCHIE_NATS_SERVER", "/usr/sbin/nats-server", "nats-server")


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
        r = http_answer(self.monitor_url + path, timeout=timeout)
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
        wait_for(pred, timeout, "nats %s %s" % (self.name, "/healthz ok" if healthy else "up"),
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
        wait_for(self.meta_leader, timeout, "JetStream meta leader", alive=alive)
        wait_for(lambda: all(n.healthy() for n in self.nodes if n.running), timeout,
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
