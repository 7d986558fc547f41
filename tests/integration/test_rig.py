#!/usr/bin/python3
"""Tests of the real-server rig itself (testkit/rig.py and the servers it composes).

Run from the repo root with the system Python:

    /usr/bin/python3 -m unittest tests.integration.test_rig -v
    /usr/bin/python3 tests/integration/test_rig.py
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from testkit.ceph_rgw import AWS, CEPH_MON, CEPH_OSD, RADOSGW  # noqa: E402
from testkit.nats_server import NATS_SERVER  # noqa: E402
from testkit.net import port_open  # noqa: E402
from testkit.rig import Rig  # noqa: E402
from testkit.sigv4 import s3_request  # noqa: E402

RIG_PY = os.path.join(REPO_ROOT, "testkit", "rig.py")


def nats_info(url, timeout=5.0):
    """Open a raw TCP connection to a NATS server and parse its INFO line."""
    hostport = url.split("://", 1)[1]
    host, port = hostport.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    line = buf.split(b"\r\n", 1)[0].decode()
    if not line.startswith("INFO "):
        raise AssertionError("not an INFO line: %r" % line)
    return json.loads(line[5:])


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as dead.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def skip_unless_tools():
    missing = [b for b in (NATS_SERVER, AWS, RADOSGW, CEPH_MON, CEPH_OSD)
               if not os.path.exists(b)]
    if missing:
        raise unittest.SkipTest("missing binaries: %s" % ", ".join(missing))


class RealServersTest(unittest.TestCase):
    """One rig (nats, 3-node nats cluster, ceph with two RGWs) for all tests."""

    rig = None

    @classmethod
    def setUpClass(cls):
        skip_unless_tools()
        cls.rig = Rig(nats=True, cluster=True, ceph=True)
        try:
            cls.rig.start()
        except BaseException:
            cls.rig.close()
            raise
        cls.ceph = cls.rig.ceph
        cls.tmp = tempfile.mkdtemp(prefix="archie-rig-test-")

    @classmethod
    def tearDownClass(cls):
        if cls.rig is not None:
            cls.rig.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def aws_ok(self, args, **kw):
        cp = self.ceph.aws(args, **kw)
        self.assertEqual(cp.returncode, 0, "aws %s failed:\n%s%s" % (args, cp.stdout, cp.stderr))
        return cp

    # ---- S3 / radosgw

    def test_s3_copy_of_1mib_random_file_round_trips_byte_for_byte(self):
        src = os.path.join(self.tmp, "up.bin")
        back = os.path.join(self.tmp, "down.bin")
        data = os.urandom(1 << 20)
        with open(src, "wb") as f:
            f.write(data)
        self.aws_ok(["s3", "mb", "s3://roundtrip-bucket"])
        self.aws_ok(["s3", "cp", "--only-show-errors", src, "s3://roundtrip-bucket/dir/up.bin"])
        self.aws_ok(["s3", "cp", "--only-show-errors", "s3://roundtrip-bucket/dir/up.bin", back])
        with open(back, "rb") as f:
            got = f.read()
        self.assertEqual(len(got), len(data))
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest())
        head = json.loads(self.aws_ok(["s3api", "head-object", "--bucket", "roundtrip-bucket",
                                       "--key", "dir/up.bin"]).stdout)
        self.assertEqual(head["ContentLength"], 1 << 20)

    def test_s3_storage_class_standard_ia_is_kept_single_and_multipart_and_an_unknown_class_refused(self):
        self.ceph.make_bucket("class-bucket")
        ia = {"x-amz-storage-class": "STANDARD_IA"}
        self.assertEqual(self.ceph.s3("PUT", "/class-bucket/plain", body=b"p")[0], 200)
        self.assertEqual(self.ceph.s3("PUT", "/class-bucket/ia", body=b"i", headers=ia)[0], 200)
        st, _, body = self.ceph.s3("POST", "/class-bucket/mp", query={"uploads": ""}, headers=ia)
        self.assertEqual(st, 200, body)
        upload = re.search(rb"<UploadId>(.+?)</UploadId>", body).group(1).decode()
        st, h, body = self.ceph.s3("PUT", "/class-bucket/mp", query={"partNumber": "1", "uploadId": upload},
                                   body=b"m" * 100)
        self.assertEqual(st, 200, body)
        done = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>"
                "</CompleteMultipartUpload>" % h["etag"])
        st, _, body = self.ceph.s3("POST", "/class-bucket/mp", query={"uploadId": upload}, body=done)
        self.assertEqual(st, 200, body)
        for index in (0, 1):  # both gateways read the zonegroup with the class
            for key, want in (("plain", None), ("ia", "STANDARD_IA"), ("mp", "STANDARD_IA")):
                for method in ("HEAD", "GET"):
                    st, h, _ = self.ceph.s3(method, "/class-bucket/" + key, endpoint_index=index)
                    self.assertEqual((st, h.get("x-amz-storage-class")), (200, want), (index, key, method))
        # A class the zonegroup lacks: 400 InvalidArgument (AWS says InvalidStorageClass).
        glacier = {"x-amz-storage-class": "GLACIER"}
        for method, key, query in (("PUT", "glacier", None), ("POST", "glacier-mp", {"uploads": ""})):
            st, _, body = self.ceph.s3(method, "/class-bucket/" + key, query=query, headers=glacier,
                                       body=b"g" if method == "PUT" else b"")
            self.assertEqual(st, 400, body)
            self.assertIn(b"<Code>InvalidArgument</Code>", body)
        self.assertEqual(self.ceph.s3("HEAD", "/class-bucket/glacier")[0], 404)

    def test_request_signed_with_wrong_secret_is_rejected_with_signature_mismatch(self):
        ak, _ = self.ceph.users["archie"]
        # aws cli with a wrong secret. --debug because aws-cli 2.9 turns any
        # RGW error with an empty <Message> into "argument of type 'NoneType'
        # is not iterable"; the debug log still shows the response body.
        cp = self.ceph.aws(["--debug", "s3api", "list-buckets"],
                           env={"AWS_SECRET_ACCESS_KEY": "definitely-not-the-secret"})
        self.assertNotEqual(cp.returncode, 0)
        self.assertIn("<Code>SignatureDoesNotMatch</Code>", cp.stderr)
        self.assertIn("403", cp.stderr)
        # the rig's own signer: wrong secret -> 403, right secret -> 200
        st, _, body = s3_request(self.ceph.endpoints[0], "GET", "/", ak, "wrong-secret")
        self.assertEqual(st, 403)
        self.assertIn(b"SignatureDoesNotMatch", body)
        st, _, _ = self.ceph.s3("GET", "/")
        self.assertEqual(st, 200)

    def test_unknown_access_key_is_rejected(self):
        st, _, body = s3_request(self.ceph.endpoints[1], "GET", "/", "NOSUCHACCESSKEY00000",
                                 "whatever")
        self.assertEqual(st, 403)
        self.assertIn(b"InvalidAccessKeyId", body)

    def test_second_endpoint_is_another_port_serving_the_same_cluster(self):
        e0, e1 = self.ceph.endpoints[:2]
        self.assertNotEqual(e0, e1)
        self.assertTrue(e0.startswith("http://127.0.0.1:") and e1.startswith("http://127.0.0.1:"))
        self.assertNotEqual(self.ceph.rgw_pid(0), self.ceph.rgw_pid(1))
        body = os.urandom(4096)
        self.ceph.make_bucket("shared-bucket", endpoint_index=0)
        st, _, _ = self.ceph.s3("PUT", "/shared-bucket/obj", endpoint_index=0, body=body)
        self.assertEqual(st, 200)
        st, _, got = self.ceph.s3("GET", "/shared-bucket/obj", endpoint_index=1)
        self.assertEqual(st, 200)
        self.assertEqual(got, body)
        listing = json.loads(self.aws_ok(["s3api", "list-buckets"], endpoint_index=1).stdout)
        self.assertIn("shared-bucket", [b["Name"] for b in listing["Buckets"]])

    def test_second_user_does_not_see_first_users_buckets(self):
        self.ceph.make_bucket("archie-private-bucket")
        listing = json.loads(self.aws_ok(["s3api", "list-buckets"], user="other").stdout)
        self.assertNotIn("archie-private-bucket", [b["Name"] for b in listing.get("Buckets", [])])
        st, _, _ = self.ceph.s3("GET", "/archie-private-bucket", user="other")
        self.assertEqual(st, 403)

    def test_rclone_copies_between_the_two_endpoints(self):
        self.ceph.make_bucket("rclone-src", endpoint_index=0)
        self.ceph.make_bucket("rclone-dst", endpoint_index=1)
        self.assertEqual(self.ceph.s3("PUT", "/rclone-src/a/b.txt", body=b"hello rclone")[0], 200)
        cp = self.ceph.rclone(["copy", "src:rclone-src", "dst:rclone-dst"])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        st, _, got = self.ceph.s3("GET", "/rclone-dst/a/b.txt", endpoint_index=1)
        self.assertEqual((st, got), (200, b"hello rclone"))

    def test_killed_rgw_refuses_connections_and_comes_back_after_start(self):
        port = self.ceph.rgw_ports[1]
        self.ceph.kill_rgw(1)
        self.assertIsNone(self.ceph.rgw_pid(1))
        self.assertFalse(port_open(port))
        self.ceph.start_rgw(1)
        self.assertTrue(port_open(port))
        self.assertEqual(self.ceph.s3("GET", "/", endpoint_index=1)[0], 200)

    # ---- NATS

    def test_nats_server_info_line_advertises_jetstream(self):
        info = nats_info(self.rig.nats.url)
        self.assertIs(info.get("jetstream"), True)
        self.assertEqual(info.get("port"), self.rig.nats.port)

    def test_nats_server_binds_loopback_only(self):
        self.assertEqual(nats_info(self.rig.nats.url).get("host"), "127.0.0.1")
        varz = self.rig.nats.monitor("/varz")[1]
        self.assertEqual(varz.get("http_host"), "127.0.0.1")

    def test_nats_restart_keeps_port_and_jetstream(self):
        old_pid = self.rig.nats.pid
        self.rig.nats.restart()
        self.assertNotEqual(self.rig.nats.pid, old_pid)
        self.assertFalse(pid_alive(old_pid))
        self.assertIs(nats_info(self.rig.nats.url).get("jetstream"), True)

    def test_nats_cluster_has_a_jetstream_meta_leader_known_to_all_nodes(self):
        cluster = self.rig.cluster
        self.assertEqual(len(cluster.urls), 3)
        leader = cluster.meta_leader()
        self.assertIn(leader, [n.name for n in cluster.nodes])
        for node in cluster.nodes:
            jsz = node.jsz()
            self.assertEqual(jsz["meta_cluster"]["leader"], leader)
            self.assertEqual(jsz["meta_cluster"]["cluster_size"], 3)
            info = nats_info(node.url)
            self.assertIs(info.get("jetstream"), True)
            self.assertEqual(info.get("cluster"), cluster.cluster_name)

    def test_nats_cluster_node_restart_rejoins_with_same_ports(self):
        cluster = self.rig.cluster
        node = cluster.nodes[0]
        port, old_pid = node.port, node.pid
        node.restart()  # waits for /healthz ok, i.e. it found the meta leader
        self.assertNotEqual(node.pid, old_pid)
        self.assertEqual(node.port, port)
        self.assertIsNotNone(cluster.meta_leader())
        self.assertIs(nats_info(node.url).get("jetstream"), True)


class RigLifecycleTest(unittest.TestCase):
    """Cheap rigs (NATS only) to check that nothing is left behind."""

    def setUp(self):
        skip_unless_tools()

    def test_context_manager_stops_processes_and_removes_its_dir(self):
        with Rig(nats=True, ceph=False, keep=False) as r:
            pid = r.nats.pid
            base = r.base_dir
            self.assertTrue(pid_alive(pid))
            self.assertTrue(os.path.isdir(base))
        self.assertFalse(pid_alive(pid))
        self.assertFalse(os.path.exists(base))

    def test_context_manager_stops_processes_when_the_body_raises(self):
        pid = None
        with self.assertRaises(ZeroDivisionError):
            with Rig(nats=True, ceph=False) as r:
                pid = r.nats.pid
                1 / 0
        self.assertFalse(pid_alive(pid))

    def start_cli(self, *args):
        tmp = tempfile.mkdtemp(prefix="archie-rig-cli-")
        self.addCleanup(shutil.rmtree, tmp, True)
        state = os.path.join(tmp, "state.json")
        env = dict(os.environ, ARCHIE_RIG_QUIET="1", ARCHIE_RIG_DIR=tmp)
        proc = subprocess.Popen([sys.executable, RIG_PY, "up", "--state", state] + list(args),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

        def cleanup():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        self.addCleanup(cleanup)
        deadline = time.monotonic() + 30
        while not os.path.exists(state):
            if proc.poll() is not None:
                self.fail("rig.py up exited: %s" % proc.stderr.read().decode())
            self.assertLess(time.monotonic(), deadline, "state file not written")
            time.sleep(0.05)
        with open(state) as f:
            return proc, state, json.load(f)

    def wait_dead(self, pid, timeout=10.0):
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return not pid_alive(pid)

    def test_daemons_die_with_a_sigkilled_owner(self):
        proc, _, desc = self.start_cli("--no-ceph", "--cluster")
        pids = [desc["nats"]["pid"]] + [n["pid"] for n in desc["nats_cluster"]["nodes"]]
        self.assertTrue(all(pid_alive(p) for p in pids))
        proc.kill()
        proc.wait()
        for pid in pids:
            self.assertTrue(self.wait_dead(pid), "pid %d outlived its owner" % pid)

    def test_cli_up_writes_state_and_stops_cleanly_on_sigterm(self):
        proc, state, desc = self.start_cli("--no-ceph")
        pid = desc["nats"]["pid"]
        self.assertIs(nats_info(desc["nats"]["url"]).get("jetstream"), True)
        self.assertNotIn("s3", desc)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(30), 0)
        self.assertFalse(pid_alive(pid))
        self.assertFalse(os.path.exists(desc["base_dir"]))
        self.assertFalse(os.path.exists(state))


if __name__ == "__main__":
    unittest.main(verbosity=2)
