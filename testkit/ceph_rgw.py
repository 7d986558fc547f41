"""A throwaway Ceph cluster on 127.0.0.1 with radosgw S3 endpoints (CephRgw): one mon, one
memstore OSD, no mgr, and num_rgw gateways that serve the same data, each its own endpoint;
plus the reference S3 clients pointed at it (awscli, rclone and the test kit's own signer).

Beyond a bare RGW, every gateway offers what a destination's write options need:
* SSE-KMS through RGW's "testing" KMS backend, which holds one key, testkey-1 (KMS_TEST_KEY);
* the storage class STANDARD_IA besides STANDARD in the default placement (STORAGE_CLASSES),
  with a data pool of its own. A PUT or CreateMultipartUpload with x-amz-storage-class:
  STANDARD_IA makes an object whose HEAD and GET answer that header. RGW 16 answers it for
  an object written with an explicit STANDARD too, and not for one written without the
  header; a class the zonegroup lacks (GLACIER, or a lower-case name) is refused at write
  time with 400 InvalidArgument (AWS would say InvalidStorageClass)."""
import http.client
import os
import shlex
import subprocess
import time
import uuid

from testkit.daemons import RigError, kill, log, run_tool, spawn, terminate, wait_for
from testkit.net import LOOPBACK, free_port, http_answer
from testkit.paths import find_binary
from testkit.sigv4 import S3_REGION, s3_request

AWS = find_binary("ARCHIE_AWS", "/usr/bin/aws", "aws")
RCLONE = find_binary("ARCHIE_RCLONE", "/usr/bin/rclone", "rclone")
CEPH = "/usr/bin/ceph"
CEPH_MON = "/usr/bin/ceph-mon"
CEPH_OSD = "/usr/bin/ceph-osd"
RADOSGW = "/usr/bin/radosgw"
RADOSGW_ADMIN = "/usr/bin/radosgw-admin"
MONMAPTOOL = "/usr/bin/monmaptool"

# Fixed cluster identity: every rig is a private cluster with its own
# monitor port, so they never see each other even with the same fsid.
CEPH_FSID = "5d1c0e3a-7f0b-4b8e-9a4c-a4c41e000001"
DEFAULT_USERS = {
    "archie": ("ARCHIEACCESSKEY0001", "archie-secret-key-0001-do-not-use"),
    "other": ("OTHERACCESSKEY00002", "other-secret-key-0002-do-not-use"),
}


# 32 bytes, base64: the key RGW's "testing" KMS backend holds as testkey-1.
KMS_TEST_KEY = "YXJjaGllLXRlc3Qta21zLWtleS0zMi1ieXRlcyEhISE="

# Storage classes the default placement offers besides STANDARD, each with the data pool
# the zone keeps it in (made by RGW on the class's first write). Declared with radosgw-admin
# before any gateway starts: a gateway reads its zonegroup only when it starts.
STORAGE_CLASSES = {"STANDARD_IA": "default.rgw.standard-ia.data"}


class CephRgw:
    """Throwaway single-node Ceph (1 mon, 1 memstore OSD, no mgr) with
    `num_rgw` radosgw daemons, each a distinct S3 endpoint on 127.0.0.1."""

    def __init__(self, workdir, num_rgw=2, users=None, memstore_bytes=8 << 30,
                 mon_port=None, rgw_ports=None, fsid=CEPH_FSID, storage_classes=None):
        self.workdir = os.path.abspath(workdir)
        self.fsid = fsid
        self.mon_port = mon_port or free_port()
        self.rgw_ports = list(rgw_ports or [free_port() for _ in range(num_rgw)])
        self.rgw_names = ["client.rgw.%s" % chr(ord("a") + i) for i in range(len(self.rgw_ports))]
        self.users = dict(users or DEFAULT_USERS)
        self.memstore_bytes = int(memstore_bytes)
        self.storage_classes = dict(STORAGE_CLASSES if storage_classes is None else storage_classes)
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
        lines = ["# generated by archie testkit/ceph_rgw.py", "[global]"]
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
                      # SSE-KMS with RGW's built-in test key store (key "testkey-1"):
                      # aws:kms writes are encrypted and report their key, as on AWS.
                      "rgw_crypt_s3_kms_backend = testing",
                      "rgw_crypt_s3_kms_encryption_keys = testkey-1=" + KMS_TEST_KEY,
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
        return run_tool([CEPH, "-c", self.conf, "--connect-timeout", str(int(timeout))] + list(args),
                        timeout=timeout + 10, check=check, env=self.ceph_env())

    def radosgw_admin(self, *args, timeout=60, check=True):
        return run_tool([RADOSGW_ADMIN, "-c", self.conf] + list(args), timeout=timeout,
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
            run_tool([MONMAPTOOL, "--create", "--clobber", "--fsid", self.fsid,
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
            # The first `user create` makes the default zonegroup, zone and pools as a first
            # gateway would (waiting for the OSD to come up and its PGs to go active), so that
            # the storage classes are in place before any gateway reads its zonegroup.
            users = list(self.users.items())
            self._create_user(*users[0], timeout=timeout)
            t = self._phase("osd+zone", t)
            self._add_storage_classes()
            t = self._phase("storage_classes", t)

            # All gateways at once: the zone and its pools exist already, so none waits for
            # another to make them (gateways started together on a bare cluster stall ~5 s).
            for i in range(len(self.rgws)):
                self._spawn_rgw(i)
            for uid, keys in users[1:]:
                self._create_user(uid, keys)
            t = self._phase("users", t)

            for i in range(len(self.rgws)):
                self._wait_rgw(i, timeout)
            for i in range(len(self.rgws)):
                self._wait_users(i, timeout)
            t = self._phase("rgw_ready", t)
        except BaseException:
            log("ceph start failed; stopping what was started (logs in %s)" % self.log_dir)
            self.stop()
            raise
        self.timings["start"] = round(time.monotonic() - t_start, 3)
        return self

    def _create_user(self, uid, keys, timeout=60):
        self.radosgw_admin("user", "create", "--uid", uid, "--display-name", uid,
                           "--access-key", keys[0], "--secret", keys[1], timeout=timeout)

    def _add_storage_classes(self):
        """Each of self.storage_classes in the zonegroup's default placement target, then its
        data pool in the zone's (radosgw-admin refuses a zone class its zonegroup lacks). No
        realm, so no period to commit: gateways started afterwards see them."""
        for storage_class, data_pool in self.storage_classes.items():
            self.radosgw_admin("zonegroup", "placement", "add", "--rgw-zonegroup", "default",
                               "--placement-id", "default-placement", "--storage-class", storage_class)
            self.radosgw_admin("zone", "placement", "add", "--rgw-zone", "default",
                               "--placement-id", "default-placement", "--storage-class", storage_class,
                               "--data-pool", data_pool)

    def _spawn_rgw(self, i):
        if self.rgws[i] is not None and self.rgws[i].poll() is None:
            raise RigError("%s already running" % self.rgw_names[i])
        name = self.rgw_names[i]
        self.rgws[i] = spawn([RADOSGW, "-c", self.conf, "-f", "-n", name],
                             os.path.join(self.log_dir, "%s.out" % name), env=self.ceph_env())

    def rgw_answers(self, i):
        return http_answer(self.endpoints[i] + "/", timeout=2.0) is not None

    def _wait_rgw(self, i, timeout):
        alive = [(self.mon, "ceph-mon"), (self.osd, "ceph-osd"),
                 (self.rgws[i], "radosgw %s" % self.rgw_names[i])]
        wait_for(lambda: self.rgw_answers(i), timeout,
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
        wait_for(ok, timeout, "users known to %s" % self.rgw_names[i], interval=0.1,
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
            "storage_classes": ["STANDARD"] + list(self.storage_classes),
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
