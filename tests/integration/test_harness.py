"""The shared test kit (testkit/) does what the other tests rely on: the configs it builds
(config_builder) are the TOML meant and archie accepts them, its events (events) spell keys as
MinIO does, its process wrapper (archie_process) reads archie's log and metrics and gives up
when archie has exited, and its reference S3 client (rgw_user) round-trips objects. Servers:
archie itself (its admin HTTP server on 127.0.0.1) and a Ceph RGW for the S3 client; the
proxy tests run their own little HTTP server."""
import base64
import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import tempfile
import threading
import time
import tomllib
import unittest
import urllib.error
import urllib.request

from testkit.archie_process import ArchieProcess, run_cli, write_config
from testkit.config_builder import archie_config, fs_store, queue_section, route, s3_store
from testkit.events import minio_event
from testkit.fixtures import close_all, start_rig
from testkit.metrics import metric
from testkit.net import LOOPBACK, free_port
from testkit.paths import REPO
from testkit.proxies.forward_proxy import ForwardProxy
from testkit.proxies.tls_front import TlsFront
from testkit.rgw_user import RgwUser
from testkit.waiting import wait_until

FIXTURES = os.path.join(REPO, "tests", "fixtures", "events")


def closed_nats():
    """A NATS URL nothing listens on: these processes are about the process, not the queue."""
    return f"nats://127.0.0.1:{free_port()}"


class ConfigBuilderTest(unittest.TestCase):
    def full_config(self, fs_root):
        return archie_config(
            [closed_nats()], http_port=0, log_level="debug", concurrency=3, shutdown_wait="2s",
            queue=queue_section(["minio.events"], stream="minio-events", durable="archie", ack_wait="10s",
                                dead_letter_subject="archie.dead", nak_backoff={"base": "200ms", "ceiling": "2s"}),
            replication={"part_size_mib": 5, "buffer_budget_mib": 64},
            stores={"src": s3_store("http://127.0.0.1:1", "AKIDSOURCE", secret_env="HARNESS_TEST_SECRET"),
                    "local": fs_store(fs_root, fsync=False)},
            routes=[route("src", "photos", [("local", "mirror"), ("src", "copy")], exclude_copy=["^tmp/"]),
                    route("src", "music", [("local", "tunes")])])

    def test_configs_parse_to_the_tables_routes_and_destinations_asked_for(self):
        doc = tomllib.loads(self.full_config("/srv/replica"))
        self.assertEqual(doc["worker"], {"concurrency": 3, "shutdown_wait": "2s"})
        self.assertEqual(doc["queue"]["stream"], {"name": "minio-events", "subjects": ["minio.events"]})
        self.assertEqual(doc["queue"]["consumer"], {"durable": "archie", "ack_wait": "10s"})
        self.assertEqual(doc["queue"]["nak_backoff"], {"base": "200ms", "ceiling": "2s"})
        self.assertNotIn("secret_access_key", doc["stores"]["src"])
        self.assertEqual(doc["stores"]["local"], {"type": "fs", "root": "/srv/replica", "fsync": False})
        self.assertEqual([(r["source"], r.get("exclude_copy"), [(d["store"], d["bucket"]) for d in r["destinations"]])
                          for r in doc["route"]],
                         [({"store": "src", "bucket": "photos"}, ["^tmp/"], [("local", "mirror"), ("src", "copy")]),
                          ({"store": "src", "bucket": "music"}, None, [("local", "tunes")])])

    def test_archie_check_config_accepts_a_built_config(self):
        root = tempfile.mkdtemp(prefix="archie-harness-")
        self.addCleanup(shutil.rmtree, root, True)
        path = write_config(self.full_config(root), directory=root)
        r = run_cli("check-config", "--config", path, env={"HARNESS_TEST_SECRET": "not-a-real-secret"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("<redacted, env HARNESS_TEST_SECRET>", r.stdout)
        self.assertNotIn("not-a-real-secret", r.stdout + r.stderr)


class MinioEventTest(unittest.TestCase):
    def test_keys_are_spelled_as_minio_spells_them(self):
        with open(os.path.join(FIXTURES, "special-chars.json")) as f:
            recorded = json.load(f)
        record = recorded["Records"][0]
        bucket, key = recorded["Key"].split("/", 1)
        ours = json.loads(minio_event(record["eventName"], bucket, key))
        self.assertEqual(ours["Key"], recorded["Key"])
        self.assertEqual(ours["Records"][0]["s3"]["object"]["key"], record["s3"]["object"]["key"])
        self.assertEqual(ours["Records"][0]["s3"]["bucket"]["name"], record["s3"]["bucket"]["name"])


class ProcessTest(unittest.TestCase):
    def test_the_admin_port_and_metrics_of_a_running_archie_are_read_from_its_log(self):
        archie = ArchieProcess(archie_config([closed_nats()], http_port=0, shutdown_wait="2s"))
        self.addCleanup(archie.stop)
        port = archie.admin_port()
        self.assertGreater(port, 0)  # port 0 in the config: the kernel's choice, as logged
        self.assertEqual(metric(archie.metrics(), "archie_build_info"), 1)
        self.assertTrue(archie.logged("admin server listening", port=port))

    def test_waiting_for_a_log_line_stops_as_soon_as_archie_has_exited(self):
        archie = ArchieProcess("[worker]\nconcurrency = 0\n")  # refused at load: exits 3
        self.addCleanup(archie.stop)
        started = time.monotonic()
        with self.assertRaises(AssertionError) as failed:
            archie.wait_for_log("consuming", timeout=60)
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(archie.proc.returncode, 3)
        self.assertIn("'consuming'", str(failed.exception))


class WaitUntilTest(unittest.TestCase):
    def test_returns_the_first_true_value(self):
        calls = iter([0, None, "", "third"])
        self.assertEqual(wait_until(lambda: next(calls), 5, "the third call", interval=0.01), "third")

    def test_times_out_naming_the_condition_and_the_last_retried_error(self):
        def refused():
            raise ConnectionRefusedError("nobody home")
        with self.assertRaises(AssertionError) as failed:
            wait_until(refused, 0.2, "a server to answer", interval=0.01, retry_on=(OSError,),
                       context=lambda: "context text")
        self.assertIn("a server to answer", str(failed.exception))
        self.assertIn("nobody home", str(failed.exception))
        self.assertIn("context text", str(failed.exception))


class RgwUserTest(unittest.TestCase):
    rig = None

    @classmethod
    def setUpClass(cls):
        cls.rig = start_rig([("harness-bucket", "archie", 0)], nats=False, ceph=True)

    @classmethod
    def tearDownClass(cls):
        close_all(cls.rig)

    def test_put_head_get_list_and_delete_round_trip_as_the_rig_user(self):
        s3 = RgwUser(self.rig, "archie", 0)
        other_endpoint = RgwUser(self.rig, "archie", 1)  # both gateways serve the same cluster
        body = os.urandom(70_000)
        etag = s3.put("harness-bucket", "dir/a key+plus ü", body, content_type="image/x-test",
                      metadata={"origin": "harness"})
        for i in range(3):
            s3.put("harness-bucket", f"dir/n{i}", b"x")
        status, headers, _ = other_endpoint.head("harness-bucket", "dir/a key+plus ü")
        self.assertEqual((status, headers["etag"].strip('"'), headers["content-type"], headers["x-amz-meta-origin"]),
                         (200, etag, "image/x-test", "harness"))
        self.assertEqual(s3.get("harness-bucket", "dir/a key+plus ü")[2], body)
        self.assertEqual(sorted(s3.list_keys("harness-bucket", "dir/", page_size=2)),
                         ["dir/a key+plus ü", "dir/n0", "dir/n1", "dir/n2"])
        s3.delete("harness-bucket", "dir/a key+plus ü")
        self.assertEqual(s3.head("harness-bucket", "dir/a key+plus ü")[0], 404)


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers with what it was sent: method, target, Host and body, as JSON."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, send_body=True):
        length = int(self.headers.get("Content-Length") or 0)
        seen = {"method": self.command, "path": self.path, "host": self.headers.get("Host"),
                "body": self.rfile.read(length).decode() if length else "",
                "proxy_headers": sorted(h for h in self.headers if h.lower().startswith("proxy-"))}
        body = json.dumps(seen).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = _answer

    def do_HEAD(self):
        self._answer(send_body=False)


class ProxyServersTest(unittest.TestCase):
    """ForwardProxy and TlsFront in front of a plain HTTP server that echoes what reached it."""

    NAME = "s3.archie.test"

    def setUp(self):
        self.origin = http.server.ThreadingHTTPServer((LOOPBACK, 0), _EchoHandler)
        self.origin.daemon_threads = True
        threading.Thread(target=self.origin.serve_forever, args=(0.05,), daemon=True).start()
        self.addCleanup(self.origin.server_close)
        self.addCleanup(self.origin.shutdown)
        self.origin_port = self.origin.server_address[1]

    def forward_proxy(self, hosts):
        proxy = ForwardProxy(hosts, credentials=("archie", "pr0xy pass")).start()
        self.addCleanup(proxy.stop)
        return proxy

    def tls_front(self):
        directory = tempfile.mkdtemp(prefix="archie-tls-front-")
        self.addCleanup(shutil.rmtree, directory, True)
        front = TlsFront(LOOPBACK, self.origin_port, directory, name=self.NAME).start()
        self.addCleanup(front.stop)
        return front

    def test_forward_proxy_asks_for_credentials_resolves_names_and_forwards_origin_form(self):
        authority = f"{self.NAME}:{self.origin_port}"
        proxy = self.forward_proxy({authority: (LOOPBACK, self.origin_port)})
        expected_auth = "Basic " + base64.b64encode(b"archie:pr0xy pass").decode()
        self.assertEqual(proxy.authorization(), expected_auth)

        with_credentials = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": proxy.url("archie", "pr0xy pass")}))
        with with_credentials.open(f"http://{authority}/bucket/key?list-type=2", timeout=5) as r:
            self.assertEqual(r.status, 200)
            seen = json.load(r)
        self.assertEqual(seen, {"method": "GET", "path": "/bucket/key?list-type=2", "host": authority,
                                "body": "", "proxy_headers": []})
        self.assertEqual(proxy.requests, [{"method": "GET", "authority": authority,
                                           "target": f"http://{authority}/bucket/key?list-type=2",
                                           "proxy_authorization": expected_auth}])

        without = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy.url()}))
        with self.assertRaises(urllib.error.HTTPError) as refused:
            without.open(f"http://{authority}/bucket/key", timeout=5)
        self.assertEqual(refused.exception.code, 407)
        self.assertEqual(refused.exception.headers["Proxy-Authenticate"], 'Basic realm="archie-test"')

        with self.assertRaises(urllib.error.HTTPError) as unknown:
            with_credentials.open(f"http://nowhere.archie.test:{self.origin_port}/", timeout=5)
        self.assertEqual(unknown.exception.code, 502)
        self.assertEqual([(r["authority"], r["proxy_authorization"]) for r in proxy.requests[1:]],
                         [(authority, None), (f"nowhere.archie.test:{self.origin_port}", expected_auth)])

    def test_forward_proxy_serves_request_after_request_on_one_client_connection(self):
        authority = f"{self.NAME}:{self.origin_port}"
        proxy = self.forward_proxy({authority: (LOOPBACK, self.origin_port)})
        conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=5)
        self.addCleanup(conn.close)
        auth = {"Proxy-Authorization": proxy.authorization(), "Proxy-Connection": "keep-alive"}
        answers = []
        for method, path, body in [("PUT", "/b/k1", b"first body"), ("HEAD", "/b/k1", None),
                                   ("GET", "/b/k2?x=1", None), ("POST", "/b?delete", b"x" * 100_000)]:
            conn.request(method, f"http://{authority}{path}", body=body, headers=auth)
            r = conn.getresponse()
            answers.append((r.status, r.read()))
        sock = conn.sock
        self.assertIsNotNone(sock)  # still the first connection
        self.assertEqual([s for s, _ in answers], [200] * 4)
        self.assertEqual(answers[1][1], b"")
        self.assertEqual([(a["method"], a["path"], a["host"], len(a["body"]), a["proxy_headers"])
                          for a in (json.loads(b) for _, b in answers if b)],
                         [("PUT", "/b/k1", authority, 10, []), ("GET", "/b/k2?x=1", authority, 0, []),
                          ("POST", "/b?delete", authority, 100_000, [])])
        conn.request("GET", f"http://{authority}/again", headers={})  # no credentials, same connection
        r = conn.getresponse()
        r.read()
        self.assertEqual((r.status, conn.sock), (407, sock))
        self.assertEqual([r["method"] for r in proxy.requests], ["PUT", "HEAD", "GET", "POST", "GET"])

    def test_tls_front_serves_its_name_with_a_certificate_the_client_trusts(self):
        front = self.tls_front()
        self.assertEqual((front.authority, front.address), (f"{self.NAME}:{front.port}", (LOOPBACK, front.port)))
        trusting = ssl.create_default_context(cafile=front.ca_file)
        with socket.create_connection(front.address, timeout=5) as raw:
            with trusting.wrap_socket(raw, server_hostname=self.NAME) as tls:
                tls.sendall(f"GET /over/tls HTTP/1.1\r\nHost: {front.authority}\r\n"
                            "Connection: close\r\n\r\n".encode())
                answer = _read_to_eof(tls)
        head, _, body = answer.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        self.assertEqual(json.loads(body)["path"], "/over/tls")
        self.assertEqual(json.loads(body)["host"], front.authority)

        with socket.create_connection(front.address, timeout=5) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                trusting.wrap_socket(raw, server_hostname="other.archie.test")

    def test_connect_through_the_forward_proxy_tunnels_tls_to_the_front(self):
        front = self.tls_front()
        proxy = self.forward_proxy({front.authority: front.address})
        trusting = ssl.create_default_context(cafile=front.ca_file)
        conn = http.client.HTTPSConnection(LOOPBACK, proxy.port, timeout=5, context=trusting)
        self.addCleanup(conn.close)
        conn.set_tunnel(self.NAME, front.port, headers={"Proxy-Authorization": proxy.authorization()})
        for path in ("/tunnelled/1", "/tunnelled/2"):  # keep-alive inside the tunnel
            conn.request("GET", path)
            r = conn.getresponse()
            seen = json.loads(r.read())
            self.assertEqual((r.status, seen["path"], seen["host"]), (200, path, front.authority))
        self.assertEqual(proxy.requests, [{"method": "CONNECT", "authority": front.authority,
                                           "target": front.authority,
                                           "proxy_authorization": proxy.authorization()}])
        self.assertEqual(front.connections, 1)


def _read_to_eof(sock):
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


if __name__ == "__main__":
    unittest.main()
