"""archie's S3 client (src/store/s3, src/http/client) when things go wrong, against a real Ceph
RADOS Gateway: how errors are classified, a gateway SIGKILLed mid-transfer, a DNS server that
never answers, and faults (lost, cut and 503 responses, requests held back, bodies damaged on
the way up) injected by FaultProxy (testkit/proxies/fault_proxy.py), a pass-through TCP proxy
in front of one gateway that also shows the headers the client really sent, e.g. the payload
signing mode's x-amz-content-sha256.

A lost CreateMultipartUpload response is not re-sent (the request is not idempotent); the one
upload whose id never arrived is left for a bucket lifecycle rule to abort.

Servers, and the probe that drives the client: tests/integration/s3_client_servers.py. Run
from the repo root: /usr/bin/python3 -m unittest -v tests.integration.test_s3_client_faults"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from testkit.files import MiB as MIB, sha256_file, write_random
from testkit.paths import S3_PROBE as PROBE
from testkit.probes import parse_probe, probe_env, run_probe
from testkit.proxies.fault_proxy import FaultProxy
from testkit.waiting import wait_until
from tests.integration import s3_client_servers as servers
from tests.integration.s3_client_servers import background_probe, new_bucket, probe, probe_argv

setUpModule, tearDownModule = servers.setUpModule, servers.tearDownModule  # this module's own rig


# --------------------------------------------------------------------------
# 1. errors and failures

class ErrorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("errors")
        cls.dir = tempfile.mkdtemp(dir=servers.WORK)
        cls.small = write_random(os.path.join(cls.dir, "small"), 1000)
        probe("put", cls.bucket, "present", cls.small)

    def test_wrong_secret_is_a_permission_error_with_signature_mismatch(self):
        r = probe("list", self.bucket, "", secret="not-the-secret-key-at-all-0000000000")
        self.assertFalse(r["ok"])
        self.assertEqual((r["kind"], r["status"], r["code"]), ("permission", 403, "SignatureDoesNotMatch"), r)

    def test_unknown_access_key_is_a_permission_error(self):
        argv = probe_argv(["list", self.bucket, ""], 0, "archie", None)
        argv[2] = "NOSUCHACCESSKEY00000"
        r = run_probe(argv, probe_env(), timeout=60)
        self.assertFalse(r["ok"])
        self.assertEqual((r["kind"], r["status"], r["code"]), ("permission", 403, "InvalidAccessKeyId"), r)

    def test_other_users_bucket_is_a_permission_error(self):
        r = probe("list", self.bucket, "", user="other")
        self.assertFalse(r["ok"])
        self.assertEqual((r["kind"], r["status"], r["code"]), ("permission", 403, "AccessDenied"), r)

    def test_missing_key_is_not_found_for_head_and_get(self):
        r = probe("head", self.bucket, "absent/key")
        self.assertFalse(r["ok"])
        self.assertEqual((r["kind"], r["status"]), ("not_found", 404), r)
        dest = os.path.join(self.dir, "absent.dl")
        r = probe("get", self.bucket, "absent/key", dest)
        self.assertFalse(r["ok"])
        self.assertEqual((r["kind"], r["status"]), ("not_found", 404), r)
        self.assertFalse(os.path.exists(dest), "no output file for a missing object")

    def test_missing_bucket_is_not_found_no_such_bucket(self):
        r = probe("list", "no-such-bucket-here", "")
        self.assertFalse(r["ok"])
        self.assertEqual((r["kind"], r["status"], r["code"]), ("not_found", 404, "NoSuchBucket"), r)
        r = probe("put", "no-such-bucket-here", "k", self.small)
        self.assertEqual((r["kind"], r["code"]), ("not_found", "NoSuchBucket"), r)

    def test_copy_of_missing_source_is_not_found(self):
        r = probe("copy", self.bucket, "absent/src", "dst")
        self.assertFalse(r["ok"])
        self.assertEqual((r["kind"], r["code"]), ("not_found", "NoSuchKey"), r)

    def test_abort_after_parts_leaves_no_upload_behind(self):
        path = write_random(os.path.join(self.dir, "abort-src"), 12 * MIB)
        r = probe("abort-after-parts", self.bucket, "aborted/obj", path, 5, 2)
        self.assertTrue(r["ok"], r)
        self.assertTrue(r["aborted"])
        self.assertEqual(probe("uploads", self.bucket)["uploads"], [])
        self.assertEqual(probe("head", self.bucket, "aborted/obj")["kind"], "not_found")

    def test_failed_complete_is_aborted_and_leaves_no_upload(self):
        # 1 MiB parts are below S3's 5 MiB minimum: the server takes the parts and refuses the
        # Complete (EntityTooSmall). The server is alive, so the client's abort must land.
        path = write_random(os.path.join(self.dir, "toosmall"), 3 * MIB)
        r = probe("mput", self.bucket, "too-small-parts", path, 1)
        self.assertFalse(r["ok"])
        self.assertEqual((r["kind"], r["code"]), ("permanent", "EntityTooSmall"), r)
        self.assertEqual(probe("uploads", self.bucket)["uploads"], [])
        self.assertEqual(probe("head", self.bucket, "too-small-parts")["kind"], "not_found")


class ServerKilledTest(unittest.TestCase):
    """radosgw b (endpoint 1) is SIGKILLed while a transfer runs, then restarted."""

    VICTIM = 1

    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("killed")
        cls.dir = tempfile.mkdtemp(dir=servers.WORK)

    def tearDown(self):
        if servers.CEPH.rgw_pid(self.VICTIM) is None:
            servers.CEPH.start_rgw(self.VICTIM)

    def test_download_fails_cleanly_as_retryable_when_the_server_dies_mid_transfer(self):
        size = 400 * MIB
        src = write_random(os.path.join(self.dir, "big"), size)
        digest = sha256_file(src)
        self.assertTrue(probe("mput", self.bucket, "big", src, 16)["ok"])
        os.unlink(src)
        dest = os.path.join(self.dir, "big.dl")
        bg = background_probe("get", self.bucket, "big", dest, 64, endpoint=self.VICTIM)
        try:
            # The output file appears after the HEAD; its blocks fill as the ranged GETs land.
            def receiving():
                try:
                    return os.stat(dest).st_blocks * 512 >= 24 * MIB
                except FileNotFoundError:
                    return False
            wait_until(receiving, 60, "the download to start", interval=0.01)
            self.assertTrue(bg.running(), "download finished before the kill; make it bigger")
            servers.CEPH.kill_rgw(self.VICTIM)
            r = bg.result(timeout=120)
        finally:
            bg.stop()
        self.assertFalse(r["ok"], "a download cut by a dead server must not report success: %s" % r)
        self.assertEqual(r["kind"], "retryable", r)
        self.assertEqual(r["status"], 0, "a transport failure has no HTTP status")
        servers.CEPH.start_rgw(self.VICTIM)
        # The restarted gateway serves the whole object again, intact.
        r = probe("get", self.bucket, "big", dest, 64, endpoint=self.VICTIM)
        self.assertTrue(r["ok"], r)
        self.assertEqual(sha256_file(dest), digest)
        os.unlink(dest)

    def test_upload_cut_by_a_dead_server_fails_retryable_and_the_leak_is_visible(self):
        # The client aborts a failed multipart upload, but with the server dead the abort
        # cannot land: the upload is expected to stay open until something aborts it. What
        # must hold: the failure is reported (retryable), no object appears, and the leaked
        # upload is only this one, visible to `uploads` so a janitor can abort it.
        src = write_random(os.path.join(self.dir, "up"), 400 * MIB)
        bg = background_probe("mput", self.bucket, "cut/upload", src, 8, endpoint=self.VICTIM)
        try:
            def upload_open():
                r = probe("uploads", self.bucket)
                return r["ok"] and r["uploads"]
            wait_until(upload_open, 60, "the upload to be created")
            time.sleep(0.5)  # some parts in, most still to go
            self.assertTrue(bg.running(), "upload finished before the kill; make it bigger")
            servers.CEPH.kill_rgw(self.VICTIM)
            r = bg.result(timeout=300)
        finally:
            bg.stop()
        os.unlink(src)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["kind"], "retryable", r)
        servers.CEPH.start_rgw(self.VICTIM)
        self.assertEqual(probe("head", self.bucket, "cut/upload")["kind"], "not_found")
        ups = probe("uploads", self.bucket)["uploads"]
        sys.stderr.write("\n[s3_client] open uploads after an mput cut by a killed RGW: %s\n"
                         % [u["key"] for u in ups])
        self.assertLessEqual(len(ups), 1, ups)
        self.assertTrue(all(u["key"] == "cut/upload" for u in ups), ups)
        for u in ups:  # clean up what the dead server kept
            cp = servers.CEPH.aws(["s3api", "abort-multipart-upload", "--bucket", self.bucket,
                           "--key", u["key"], "--upload-id", u["upload_id"]])
            self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(probe("uploads", self.bucket)["uploads"], [])


def slow_down(body_code="SlowDown"):
    body = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code>'
            '<Message>injected by the test proxy</Message></Error>' % body_code).encode()
    return (b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(body)) + body


SILENT_DNS = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
print("listening", flush=True)
while True:
    s.recvfrom(4096)  # read every query, answer none
"""


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("ip"), "needs root and iproute2 for a network namespace")
class DnsTimeoutTest(unittest.TestCase):
    """A DNS server that never answers, in a network namespace of the test's own (its
    /etc/netns resolv.conf names a server on the namespace's 127.0.0.1): no real server can
    be made to hang on demand."""

    def test_a_dns_server_that_never_answers_fails_within_connect_timeout(self):
        ns = "archie-dns-%d" % os.getpid()
        made = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
        if made.returncode != 0:  # a sandbox without CAP_SYS_ADMIN: nothing to test here
            self.skipTest("cannot create a network namespace: " + made.stderr.strip())
        self.addCleanup(subprocess.run, ["ip", "netns", "delete", ns])
        etc = "/etc/netns/" + ns
        os.makedirs(etc, exist_ok=True)
        self.addCleanup(shutil.rmtree, etc, True)
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:5 attempts:2\n")  # glibc waits 5 s x 2 per lookup
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        dns = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SILENT_DNS],
                               stdout=subprocess.PIPE, text=True)
        self.addCleanup(dns.wait)
        self.addCleanup(dns.kill)
        self.assertEqual(dns.stdout.readline().strip(), "listening")
        argv = ["ip", "netns", "exec", ns, PROBE, "http://s3.silent-dns.test:7480", "AK", "SK", "head", "b", "k"]
        started = time.monotonic()
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                            env=probe_env({"S3_CONNECT_TIMEOUT_MS": "1000"}))
        elapsed = time.monotonic() - started
        r = parse_probe(argv, cp.returncode, cp.stdout, cp.stderr)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["kind"], "retryable", r)
        self.assertIn("timed out", r["message"], r)
        # 4 attempts of 1 s plus backoff; without the bound one attempt alone waits 10 s.
        self.assertLess(elapsed, 12, r)


class FaultInjectionTest(unittest.TestCase):
    """Lost, cut and refused responses, injected by a proxy in front of radosgw a."""

    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("faults")
        cls.dir = tempfile.mkdtemp(dir=servers.WORK)
        cls.proxy = FaultProxy(servers.CEPH.endpoints[0])
        cls.data = write_random(os.path.join(cls.dir, "data"), 12 * MIB + 5)
        cls.digest = sha256_file(cls.data)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.close()

    def setUp(self):
        self.proxy.reset()

    def via_proxy(self, *args, **kw):
        return probe(*args, endpoint=self.proxy.endpoint, **kw)

    def path(self, key):
        return "/%s/%s" % (self.bucket, key)

    def test_download_cut_mid_body_is_retried_into_an_exact_file(self):
        self.assertTrue(probe("mput", self.bucket, "cut-get", self.data, 5)["ok"])
        # Three ranged GETs lose their connection 300 kB into the body.
        self.proxy.truncate(r"^GET %s HTTP" % re.escape(self.path("cut-get")), keep=300000, times=3)
        dest = os.path.join(self.dir, "cut-get.dl")
        r = self.via_proxy("get", self.bucket, "cut-get", dest, 2)
        self.assertTrue(r["ok"], r)
        self.assertEqual(sha256_file(dest), self.digest)
        self.assertEqual(len(self.proxy.requests_matching(r"^GET ")), 7 + 3, "7 ranges, 3 repeats")

    def test_download_that_always_breaks_fails_retryable_instead_of_truncated(self):
        self.assertTrue(probe("put", self.bucket, "always-cut", self.data)["ok"])
        self.proxy.truncate(r"^GET %s HTTP" % re.escape(self.path("always-cut")), keep=100000, times=1000)
        r = self.via_proxy("get", self.bucket, "always-cut", os.path.join(self.dir, "ac.dl"), 16)
        self.assertFalse(r["ok"], r)
        self.assertEqual((r["kind"], r["status"]), ("retryable", 0), r)

    def test_503_slow_down_is_retried_then_succeeds(self):
        self.proxy.respond(r"^GET /%s/\?" % self.bucket, slow_down(), times=2)
        r = self.via_proxy("list", self.bucket, "")
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(self.proxy.requests_matching(r"^GET /%s/\?" % self.bucket)), 3)

    def test_persistent_503_gives_up_after_four_attempts_as_retryable(self):
        self.proxy.respond(r"^GET /%s/\?" % self.bucket, slow_down(), times=1000)
        r = self.via_proxy("list", self.bucket, "")
        self.assertFalse(r["ok"], r)
        self.assertEqual((r["kind"], r["status"], r["code"]), ("retryable", 503, "SlowDown"), r)
        self.assertEqual(len(self.proxy.requests_matching(r"^GET /%s/\?" % self.bucket)), 4)

    def test_interim_1xx_answers_are_skipped_and_the_real_answer_is_read(self):
        raw = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
               b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 200 OK\r\nETag: \"0123abcd\"\r\nContent-Length: 5\r\nContent-Type: text/x-hint\r\n"
               b"Connection: close\r\n\r\n")
        self.proxy.respond(r"^HEAD %s HTTP" % re.escape(self.path("hinted")), raw)
        r = self.via_proxy("head", self.bucket, "hinted")
        self.assertTrue(r["ok"], r)
        self.assertEqual((r["etag"], r["size"], r["content_type"]), ("0123abcd", 5, "text/x-hint"))

    def test_a_huge_error_body_is_read_only_up_to_a_cap_and_the_error_still_classified(self):
        # Content-Length says 100 MiB (above any in-memory limit); the first 64 KiB carry the
        # error document, which is all the client needs.
        doc = b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>big</Message></Error>"
        raw = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
               b"Content-Length: 104857600\r\n\r\n" + doc + b" " * (200 * 1024))
        self.proxy.respond(r"^GET /%s/\?" % self.bucket, raw, times=1000)
        r = self.via_proxy("list", self.bucket, "")
        self.assertFalse(r["ok"], r)
        self.assertEqual((r["kind"], r["status"], r["code"]), ("retryable", 500, "InternalError"), r)

    def test_a_head_answer_without_content_length_is_refused_not_taken_as_empty(self):
        raw = b"HTTP/1.1 200 OK\r\nETag: \"feed\"\r\nConnection: close\r\n\r\n"
        self.proxy.respond(r"^HEAD %s HTTP" % re.escape(self.path("no-length")), raw, times=1000)
        r = self.via_proxy("head", self.bucket, "no-length")
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["code"], "MissingContentLength", r)

    def test_download_of_an_object_replaced_midway_fails_precondition_not_mixed(self):
        self.assertTrue(probe("mput", self.bucket, "replaced", self.data, 5)["ok"])
        release = threading.Event()
        self.proxy.hold(r"^GET %s HTTP" % re.escape(self.path("replaced")), release, times=1000)
        dest = os.path.join(self.dir, "replaced.dl")
        bg = background_probe("get", self.bucket, "replaced", dest, 4, endpoint=self.proxy.endpoint)
        try:
            # HEAD went through (ETag of version 1); the ranged GETs wait in the proxy.
            wait_until(lambda: self.proxy.requests_matching(r"^GET "), 30, "the ranged GETs to reach the proxy",
                       interval=0.01)
            small = write_random(os.path.join(self.dir, "v2"), 3000)
            self.assertTrue(probe("put", self.bucket, "replaced", small)["ok"])
            release.set()
            r = bg.result(timeout=120)
        finally:
            release.set()
            bg.stop()
        self.assertFalse(r["ok"], r)
        self.assertEqual((r["kind"], r["status"]), ("precondition_failed", 412), r)

    def test_lost_put_delete_and_complete_responses_are_retried_to_success(self):
        self.proxy.truncate(r"^PUT %s HTTP" % re.escape(self.path("lost-put")), keep=0)
        r = self.via_proxy("put", self.bucket, "lost-put", self.data)
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(self.proxy.requests_matching(r"^PUT ")), 2)
        self.proxy.truncate(r"^DELETE %s HTTP" % re.escape(self.path("lost-put")), keep=0)
        self.assertTrue(self.via_proxy("delete", self.bucket, "lost-put")["ok"])
        self.assertEqual(probe("head", self.bucket, "lost-put")["kind"], "not_found")
        # CompleteMultipartUpload done by the server, its answer lost: the repeat must not
        # turn a stored object into a reported failure.
        self.proxy.truncate(r"^POST %s\?uploadId=" % re.escape(self.path("lost-complete")), keep=0)
        r = self.via_proxy("mput", self.bucket, "lost-complete", self.data, 5)
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(self.proxy.requests_matching(r"^POST \S+\?uploadId=")), 2)
        dest = os.path.join(self.dir, "lost-complete.dl")
        self.assertTrue(probe("get", self.bucket, "lost-complete", dest)["ok"])
        self.assertEqual(sha256_file(dest), self.digest)

    # CreateMultipartUpload is not idempotent, so a lost response is not re-sent: the call
    # fails as retryable (the message is nak'ed and redone later) and at most the one upload
    # whose id never reached us is left open. No client can abort an id it never saw; a
    # bucket lifecycle rule (AbortIncompleteMultipartUpload) cleans those up.
    def test_a_lost_create_multipart_upload_response_is_not_resent(self):
        bucket = new_bucket("orphan")
        self.proxy.truncate(r"^POST /%s/obj\?uploads" % bucket, keep=0)
        r = self.via_proxy("mput", bucket, "obj", self.data, 5)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["kind"], "retryable")
        self.assertEqual(len(self.proxy.requests_matching(r"^POST \S+\?uploads")), 1, "re-sent")
        self.assertLessEqual(len(probe("uploads", bucket)["uploads"]), 1)


# --------------------------------------------------------------------------
# 2. payload signing modes

class PayloadSigningTest(unittest.TestCase):
    """Through a pass-through proxy, so the x-amz-content-sha256 the client sent is seen."""

    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("signing")
        cls.dir = tempfile.mkdtemp(dir=servers.WORK)
        cls.body = write_random(os.path.join(cls.dir, "body"), 5 * MIB + 3)
        cls.digest = sha256_file(cls.body)
        cls.proxy = FaultProxy(servers.CEPH.endpoints[0])

    @classmethod
    def tearDownClass(cls):
        cls.proxy.close()

    def content_sha256_values(self):
        return re.findall(rb"(?im)^x-amz-content-sha256:[ \t]*([^\r\n]*)\r$", self.proxy.sent())

    def round_trip(self, mode):
        env = {"S3_PAYLOAD_SIGNING": mode} if mode else {}
        self.proxy.reset()
        key = "mode/%s" % mode
        r = probe("put", self.bucket, key, self.body, env=env, endpoint=self.proxy.endpoint)
        self.assertTrue(r["ok"], r)
        put_values = self.content_sha256_values()
        self.assertEqual(len(put_values), 1, put_values)
        r = probe("mput", self.bucket, key + "-multi", self.body, 5, env=env, endpoint=self.proxy.endpoint)
        self.assertTrue(r["ok"], r)
        for k in (key, key + "-multi"):
            dest = os.path.join(self.dir, "dl")
            r = probe("get", self.bucket, k, dest, 2, env=env, endpoint=self.proxy.endpoint)
            self.assertTrue(r["ok"], r)
            self.assertEqual(sha256_file(dest), self.digest, k)
        return put_values[0].decode()

    def test_signed_payload_sends_the_body_hash_and_works(self):
        self.assertEqual(self.round_trip("signed"), self.digest)

    def test_unsigned_payload_sends_unsigned_payload_and_works(self):
        self.assertEqual(self.round_trip("unsigned"), "UNSIGNED-PAYLOAD")
        values = set(self.content_sha256_values())
        self.assertEqual(values, {b"UNSIGNED-PAYLOAD"}, "every request of the run is unsigned")

    def damaged_put_is_refused_then_resent(self, mode, verb, *args):
        """The proxy flips one body byte of the first upload request: the server must refuse
        it (the checksum archie sent no longer matches), and archie must send it again."""
        self.proxy.reset()
        self.proxy.corrupt(r"^PUT /%s/damaged" % self.bucket)
        key = "damaged/%s/%s" % (mode, verb)
        r = probe(verb, self.bucket, key, self.body, *args, env={"S3_PAYLOAD_SIGNING": mode},
                  endpoint=self.proxy.endpoint)
        self.assertTrue(r["ok"], r)
        refused_then_sent = self.proxy.requests_matching(r"^PUT /%s/%s" % (self.bucket, re.escape(key)))
        expected = 2 if verb == "put" else 3  # multipart: the damaged part twice, the other once
        self.assertEqual(len(refused_then_sent), expected, refused_then_sent)
        dest = os.path.join(self.dir, "dl-damaged")
        r = probe("get", self.bucket, key, dest, 2)
        self.assertTrue(r["ok"], r)
        self.assertEqual(sha256_file(dest), self.digest)

    def test_signed_payload_hash_alone_makes_the_server_refuse_a_damaged_body(self):
        self.damaged_put_is_refused_then_resent("signed", "put")
        self.damaged_put_is_refused_then_resent("signed", "mput", 5)
        self.assertNotIn(b"content-md5", self.proxy.sent().lower(), "one checksum per body, not two")

    def test_unsigned_payload_content_md5_makes_the_server_refuse_a_damaged_body(self):
        self.damaged_put_is_refused_then_resent("unsigned", "put")
        self.damaged_put_is_refused_then_resent("unsigned", "mput", 5)

    def test_auto_signs_the_payload_over_plain_http(self):
        self.assertEqual(self.round_trip("auto"), self.digest)
        self.assertEqual(self.round_trip(""), self.digest)

if __name__ == "__main__":
    unittest.main(verbosity=2)
