#!/usr/bin/python3
"""archie's S3 client (src/store/s3, src/http/client) against a real Ceph RADOS Gateway.

Servers: one throwaway Ceph cluster with two radosgw endpoints (tests/rig/rig.py), started
once for the module. The client is driven through tests/tools/s3_probe (ARCHIE_S3_PROBE, else
build/tests/s3_probe), one operation per run, each printing one JSON line. The probe is an
ASan build: every run must exit 0 with nothing from a sanitizer on stderr.

awscli and the rig's own signer are used as reference clients, so that a key or a body the
archie client gets wrong in both directions (write and read back) still shows up. Faults
(lost, cut and 503 responses, requests held back) are injected by FaultProxy, a pass-through
TCP proxy in front of one gateway; it also shows the headers the client really sent.

A lost CreateMultipartUpload response is not re-sent (the request is not idempotent); the one
upload whose id never arrived is left for a bucket lifecycle rule to abort.

Run from the repo root with the system Python:

    /usr/bin/python3 -m unittest -v tests.integration.test_s3_client
"""

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
import unittest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from tests.integration.harness import (S3_PROBE as PROBE, BackgroundProbe, close_all, parse_probe,  # noqa: E402
                                       probe_env, require_built, run_probe, s3_probe_argv, sha256_file,
                                       start_rig, unique_name, wait_until, write_random)

MIB = 1 << 20

RIG = None
CEPH = None
WORK = None


def setUpModule():
    global RIG, CEPH, WORK
    require_built(PROBE, "ARCHIE_S3_PROBE")
    RIG = start_rig(nats=False, ceph=True)
    CEPH = RIG.ceph
    WORK = tempfile.mkdtemp(prefix="archie-s3-client-")


def tearDownModule():
    close_all(RIG, WORK)


# --------------------------------------------------------------------------
# helpers

def new_bucket(stem):
    name = unique_name(stem)
    r = probe("mkbucket", name)
    if not r["ok"]:
        raise AssertionError("mkbucket %s: %s" % (name, r))
    return name


def probe_argv(args, endpoint, user, secret):
    """endpoint: an index into the rig's endpoints, or a URL."""
    ak, sk = CEPH.users[user]
    url = endpoint if isinstance(endpoint, str) else CEPH.endpoints[endpoint]
    return s3_probe_argv(url, ak, sk if secret is None else secret, *args)


def probe(*args, env=None, endpoint=0, user="archie", secret=None, timeout=300):
    return run_probe(probe_argv(args, endpoint, user, secret), probe_env(env), timeout=timeout)


def background_probe(*args, env=None, endpoint=0):
    """One probe run in the background (for fault injection while it runs)."""
    return BackgroundProbe(probe_argv(args, endpoint, "archie", None), probe_env(env))


def aws_json(args, endpoint=0, timeout=600):
    cp = CEPH.aws(list(args) + ["--output", "json"], endpoint_index=endpoint, timeout=timeout)
    if cp.returncode != 0:
        raise AssertionError("aws %s failed (rc=%d): %s" % (args[:2], cp.returncode, cp.stderr[-2000:]))
    return json.loads(cp.stdout) if cp.stdout.strip() else {}


def aws_list_keys(bucket):
    """Every key in the bucket as awscli decodes it (it asks for encoding-type=url)."""
    keys, token = [], None
    while True:
        args = ["s3api", "list-objects-v2", "--bucket", bucket]
        if token:
            args += ["--continuation-token", token]
        page = aws_json(args)
        keys += [o["Key"] for o in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            return keys


class FaultProxy:
    """TCP pass-through to one RGW endpoint for fault injection and wire inspection.

    Bytes are forwarded unchanged (the server still verifies the client's signature), and
    every byte the client sends is kept, so a test can read the headers really sent. Rules
    match request lines ("GET /b/k?x=y HTTP/1.1") by regex and fire a given number of times:

    * truncate(pattern, keep): forward the request, pass the first `keep` bytes of the
      response, then close the connection (keep=0: the response is lost entirely).
    * respond(pattern, raw): answer with the raw bytes instead of the server, then close.
    * hold(pattern, event): forward the request only once event is set.
    * corrupt(pattern): flip the first body byte of the request on its way up (damage in
      transit that the checksums must catch).

    HTTP/1.1 without pipelining: a request starts with the first bytes going up on a new
    connection or after a response started coming down, and the next bytes coming down are
    its response."""

    def __init__(self, target_endpoint):
        host, port = target_endpoint.split("://", 1)[1].rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.endpoint = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.rules = []
        self.captured = []
        self.requests = []  # request lines seen, in order
        threading.Thread(target=self._accept, daemon=True).start()

    # ---- rules
    def _add(self, kind, pattern, arg, times):
        with self.lock:
            self.rules.append({"kind": kind, "re": re.compile(pattern), "arg": arg, "left": times})

    def truncate(self, pattern, keep=0, times=1):
        self._add("truncate", pattern, keep, times)

    def respond(self, pattern, raw, times=1):
        self._add("respond", pattern, raw, times)

    def hold(self, pattern, event, times=1):
        self._add("hold", pattern, event, times)

    def corrupt(self, pattern, times=1):
        self._add("corrupt", pattern, None, times)

    def reset(self):
        with self.lock:
            self.rules, self.captured, self.requests = [], [], []

    def sent(self):
        with self.lock:
            return b"".join(bytes(b) for b in self.captured)

    def requests_matching(self, pattern):
        with self.lock:
            return [r for r in self.requests if re.search(pattern, r)]

    def close(self):
        self.listener.close()

    # ---- plumbing
    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            conn = {"client": client, "upstream": upstream, "truncate": None, "cut": False, "left": 2,
                    "corrupt": False, "head": bytearray(),
                    "new_request": True,
                    "lock": threading.Lock(), "buf": bytearray()}
            with self.lock:
                self.captured.append(conn["buf"])
            threading.Thread(target=self._up, args=(conn,), daemon=True).start()
            threading.Thread(target=self._down, args=(conn,), daemon=True).start()

    def _fire(self, line):
        with self.lock:
            self.requests.append(line)
            for rule in self.rules:
                if rule["left"] > 0 and rule["re"].search(line):
                    rule["left"] -= 1
                    return rule
        return None

    def _up(self, conn):
        client, upstream = conn["client"], conn["upstream"]
        head = bytearray()
        try:
            while True:
                data = client.recv(256 * 1024)
                if not data:
                    break
                conn["buf"] += data
                if conn["new_request"]:
                    head += data
                    end = head.find(b"\r\n")
                    if end >= 0:
                        conn["new_request"] = False
                        line = bytes(head[:end]).decode("latin-1")
                        head.clear()
                        rule = self._fire(line)
                        if rule is None:
                            pass
                        elif rule["kind"] == "truncate":
                            conn["truncate"] = rule["arg"]
                        elif rule["kind"] == "hold":
                            rule["arg"].wait(60)
                        elif rule["kind"] == "corrupt":
                            conn["corrupt"] = True
                            conn["head"].clear()
                        elif rule["kind"] == "respond":
                            conn["cut"] = True
                            client.sendall(rule["arg"])
                            raise OSError("answered by the proxy")
                if conn["corrupt"]:
                    data = self._flip_first_body_byte(conn, data)
                upstream.sendall(data)
        except OSError:
            pass
        self._half_done(conn, upstream)

    @staticmethod
    def _flip_first_body_byte(conn, data):
        seen = len(conn["head"])
        conn["head"] += data
        end = conn["head"].find(b"\r\n\r\n")
        if end < 0 or end + 4 >= len(conn["head"]):
            return data  # the body has not started yet
        at = end + 4 - seen
        data = bytearray(data)
        data[at] ^= 0xFF
        conn["corrupt"] = False
        return bytes(data)

    def _down(self, conn):
        client, upstream = conn["client"], conn["upstream"]
        passed = 0
        try:
            while True:
                data = upstream.recv(256 * 1024)
                if not data:
                    break
                conn["new_request"] = True  # a response started: the next bytes up are a request
                keep = conn["truncate"]
                if keep is not None and passed + len(data) >= keep:
                    conn["cut"] = True
                    client.sendall(data[:keep - passed])
                    break
                if keep is not None:
                    passed += len(data)
                client.sendall(data)
        except OSError:
            pass
        self._half_done(conn, client)

    @staticmethod
    def _half_done(conn, peer):
        # A cut (truncate/respond) closes both sides; a normal end only half-closes.
        cut = conn["cut"]
        try:
            peer.shutdown(socket.SHUT_RDWR if cut else socket.SHUT_WR)
        except OSError:
            pass
        with conn["lock"]:
            conn["left"] -= 1
            last = conn["left"] == 0
        if last or cut:
            for s in (conn["client"], conn["upstream"]):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if last:
                conn["client"].close()
                conn["upstream"].close()


# --------------------------------------------------------------------------
# 1. byte-exact round trips

class RoundTripTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("roundtrip")
        cls.dir = tempfile.mkdtemp(dir=WORK)
        cls.files = {}
        for size in (0, 1, 5 * MIB - 1, 5 * MIB + 1):
            path = write_random(os.path.join(cls.dir, "src-%d" % size), size)
            cls.files[size] = (path, sha256_file(path))

    def out(self, name):
        return os.path.join(self.dir, name)

    def assert_download(self, key, size, digest, part_mib=None):
        dest = self.out("dl-%s-%s" % (key.replace("/", "_"), part_mib))
        args = ["get", self.bucket, key, dest] + ([part_mib] if part_mib is not None else [])
        r = probe(*args)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["size"], size)
        self.assertEqual(os.path.getsize(dest), size, "downloaded file size (part %s MiB)" % part_mib)
        self.assertEqual(sha256_file(dest), digest, "content of %s via %s MiB parts" % (key, part_mib))
        os.unlink(dest)
        return r

    def test_single_put_round_trips_small_and_boundary_sizes_byte_for_byte(self):
        for size, (path, digest) in self.files.items():
            with self.subTest(size=size):
                key = "single/%d" % size
                r = probe("put", self.bucket, key, path)
                self.assertTrue(r["ok"], r)
                # A single PUT's ETag is the body's MD5: the server saw exactly our bytes.
                with open(path, "rb") as f:
                    self.assertEqual(r["etag"], hashlib.md5(f.read()).hexdigest())
                head = probe("head", self.bucket, key)
                self.assertTrue(head["ok"], head)
                self.assertEqual(head["size"], size)
                self.assertEqual(head["etag"], r["etag"])
                for part in (None, 1, 2):
                    self.assert_download(key, size, digest, part)

    def test_zero_byte_object_downloads_as_an_empty_file(self):
        # HEAD says 0 bytes, so `get` sends no ranged GET at all (a "bytes=0--1" range would
        # be invalid); the output file must still be created, and empty.
        path, digest = self.files[0]
        probe("put", self.bucket, "empty/obj", path)
        dest = self.out("zero-dl")
        with open(dest, "wb") as f:
            f.write(b"stale content that must be truncated")
        r = probe("get", self.bucket, "empty/obj", dest, 1)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["size"], 0)
        self.assertEqual(os.path.getsize(dest), 0)

    def test_multipart_with_5_mib_parts_round_trips_boundary_sizes(self):
        for size, (path, digest) in self.files.items():
            with self.subTest(size=size):
                key = "multi/%d" % size
                r = probe("mput", self.bucket, key, path, 5)
                self.assertTrue(r["ok"], r)
                expected_parts = max(1, -(-size // (5 * MIB)))
                self.assertEqual(r["parts"], expected_parts)
                self.assertTrue(r["etag"].endswith("-%d" % expected_parts), r["etag"])
                head = probe("head", self.bucket, key)
                self.assertEqual(head["size"], size)
                self.assertEqual(head["etag"], r["etag"], "Complete's ETag (or the HEAD fallback)")
                for part in (None, 1, 5):
                    self.assert_download(key, size, digest, part)
        self.assertEqual(probe("uploads", self.bucket)["uploads"], [], "no upload left open")

    def test_200_mib_multipart_round_trips_and_awscli_reads_the_same_bytes(self):
        size = 200 * MIB
        path = write_random(self.out("big"), size)
        digest = sha256_file(path)
        r = probe("mput", self.bucket, "big/200m", path, 16)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["parts"], 13)
        self.assertTrue(r["etag"].endswith("-13"), r["etag"])
        for part in (16, 3, 256):  # even split, 67 uneven parts, one request for everything
            self.assert_download("big/200m", size, digest, part)
        # A reference client reads what archie wrote.
        ref = self.out("big-aws")
        cp = CEPH.aws(["s3", "cp", "--only-show-errors", "s3://%s/big/200m" % self.bucket, ref])
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(sha256_file(ref), digest, "awscli download of the archie-written object")
        head = aws_json(["s3api", "head-object", "--bucket", self.bucket, "--key", "big/200m"])
        self.assertEqual(head["ContentLength"], size)
        self.assertEqual(head["ETag"].strip('"'), r["etag"])
        os.unlink(ref)
        os.unlink(path)

    def test_object_written_by_awscli_is_read_back_exactly(self):
        # The opposite direction: a reference client writes (multipart, 8 MiB chunks), archie reads.
        path, digest = self.files[5 * MIB + 1]
        big = write_random(self.out("aws-src"), 21 * MIB + 7)
        big_digest = sha256_file(big)
        for src, key in ((path, "from-aws/small"), (big, "from-aws/multi")):
            cp = CEPH.aws(["s3", "cp", "--only-show-errors", src, "s3://%s/%s" % (self.bucket, key)])
            self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assert_download("from-aws/small", 5 * MIB + 1, digest, 2)
        self.assert_download("from-aws/multi", 21 * MIB + 7, big_digest, 4)
        os.unlink(big)


# --------------------------------------------------------------------------
# 2. awkward keys

NFC = unicodedata.normalize("NFC", "caf\u00e9-r\u00e9sum\u00e9")
NFD = unicodedata.normalize("NFD", NFC)

NASTY_KEYS = [
    "with space",
    "two  spaces and trailing  ",
    " leading space",
    "a+b plus",
    "a%2Fb looks encoded",
    "100%",
    "%25 already encoded",
    NFC,
    NFD,
    "~tilde",
    "k=v",
    "a&b",
    "what?x=1",
    "?uploads",
    "obj?acl",
    "h#fragment",
    "/leading-slash",
    "a//double-slash",
    "dir/trailing-slash/",
    "a/./b",
    "a/../b",
    "../escape",
    ".",
    "..",
    "long/" + "k" * 995,
    "tab\there",
    "line\nbreak",
    "carriage\rreturn",
    "ctl\x01char",
    "del\x7fchar",
    "nb\u00a0sp",
    "emoji-\U0001F600-\U0001F4A9",
    "\u65e5\u672c\u8a9e/\u30d5\u30a1\u30a4\u30eb",
    'say "hi"',
    "<b>tag</b>",
    "&amp; &#65; &lt; literal entities",
    "cdata]]>end",
    "st*r",
    "bang!",
    "$HOME",
    "it's",
    "(open",
    "close)",
    "a,b",
    "a;b",
    "c:d",
    "user@host",
    "[0]",
    "{x}",
    "a^b",
    "`cmd`",
    "a|b",
    "a\\b",
]


def key_body(i, key):
    """Distinct bytes per key, so a mix-up between two keys is seen."""
    return ("%03d:" % i).encode() + key.encode("utf-8") + hashlib.sha256(key.encode("utf-8")).digest()


class NastyKeyTest(unittest.TestCase):
    def test_awkward_keys_are_stored_listed_read_copied_and_deleted_verbatim(self):
        keys = NASTY_KEYS
        self.assertGreaterEqual(len(keys), 40)
        self.assertEqual(len(set(keys)), len(keys))
        self.assertNotEqual(NFC.encode(), NFD.encode())
        self.assertTrue(all(len(k.encode()) + 5 <= 1024 for k in keys), "copies must fit 1024 bytes")
        bucket = new_bucket("nasty")
        d = tempfile.mkdtemp(dir=WORK)
        failures = []
        lock = threading.Lock()

        def fail(key, what):
            with lock:
                failures.append("%r: %s" % (key, what))

        def src(i):
            return os.path.join(d, "src-%d" % i)

        for i, k in enumerate(keys):
            with open(src(i), "wb") as f:
                f.write(key_body(i, k))
        pool = concurrent.futures.ThreadPoolExecutor(4)

        def each(fn):
            list(pool.map(lambda ik: fn(*ik), list(enumerate(keys))))

        # put
        def put(i, k):
            r = probe("put", bucket, k, src(i))
            if not r["ok"]:
                fail(k, "put: %s" % r.get("describe"))
        each(put)

        # listed: the whole bucket, and each key as a prefix (exactly the keys starting with it)
        everything = probe("list", bucket, "")
        self.assertTrue(everything["ok"], everything)
        self.assertEqual(sorted(everything["keys"]), sorted(keys), "ListObjectsV2 of the bucket")

        def listed(i, k):
            r = probe("list", bucket, k)
            want = sorted(x for x in keys if x.startswith(k))
            if not r["ok"] or sorted(r["keys"]) != want:
                fail(k, "list prefix: got %s, want %s" % (r.get("keys", r.get("describe")), want))
        each(listed)

        # the bytes the server holds as key names are the ones we meant (reference client)
        self.assertEqual(sorted(aws_list_keys(bucket)), sorted(keys),
                         "keys as awscli lists them (archie consistently wrong both ways?)")

        # read back
        def get(i, k):
            dest = os.path.join(d, "dl-%d" % i)
            r = probe("get", bucket, k, dest)
            if not r["ok"]:
                fail(k, "get: %s" % r.get("describe"))
            else:
                with open(dest, "rb") as f:
                    if f.read() != key_body(i, k):
                        fail(k, "get returned other bytes")
        each(get)

        # server-side copy to key + ".copy", checked with awscli
        def copy(i, k):
            r = probe("copy", bucket, k, k + ".copy")
            if not r["ok"]:
                fail(k, "copy: %s" % r.get("describe"))
                return
            cp = CEPH.aws(["s3api", "head-object", "--bucket", bucket, "--key", k + ".copy",
                           "--output", "json"])
            if cp.returncode != 0:
                fail(k, "aws head-object of the copy failed: %s" % cp.stderr[-300:])
                return
            head = json.loads(cp.stdout)
            if head["ContentLength"] != len(key_body(i, k)):
                fail(k, "copy has %d bytes" % head["ContentLength"])
            if head["ETag"].strip('"') != hashlib.md5(key_body(i, k)).hexdigest():
                fail(k, "copy has ETag %s" % head["ETag"])
        each(copy)
        self.assertEqual(sorted(aws_list_keys(bucket)), sorted(keys + [k + ".copy" for k in keys]))

        # delete both, then they are gone
        def delete(i, k):
            for name in (k, k + ".copy"):
                r = probe("delete", bucket, name)
                if not r["ok"]:
                    fail(name, "delete: %s" % r.get("describe"))
                r = probe("head", bucket, name)
                if r["ok"] or r.get("kind") != "not_found":
                    fail(name, "after delete, head gave %s" % r)
        each(delete)
        pool.shutdown()
        left = probe("list", bucket, "")
        self.assertEqual(left.get("keys"), [], "bucket not empty after deletes")
        self.assertEqual(failures, [], "\n".join(failures))

    def test_nfc_and_nfd_spellings_are_two_objects(self):
        bucket = new_bucket("unicode")
        d = tempfile.mkdtemp(dir=WORK)
        for name, key in (("nfc", NFC), ("nfd", NFD)):
            with open(os.path.join(d, name), "wb") as f:
                f.write(name.encode())
            self.assertTrue(probe("put", bucket, key, os.path.join(d, name))["ok"])
        listed = probe("list", bucket, "caf")["keys"]
        self.assertEqual(sorted(k.encode() for k in listed), sorted([NFC.encode(), NFD.encode()]))
        for name, key in (("nfc", NFC), ("nfd", NFD)):
            dest = os.path.join(d, name + ".dl")
            self.assertTrue(probe("get", bucket, key, dest)["ok"])
            with open(dest, "rb") as f:
                self.assertEqual(f.read(), name.encode(), "%s spelling" % name)


# --------------------------------------------------------------------------
# 3. errors and failures

class ErrorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("errors")
        cls.dir = tempfile.mkdtemp(dir=WORK)
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
        cls.dir = tempfile.mkdtemp(dir=WORK)

    def tearDown(self):
        if CEPH.rgw_pid(self.VICTIM) is None:
            CEPH.start_rgw(self.VICTIM)

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
            CEPH.kill_rgw(self.VICTIM)
            r = bg.result(timeout=120)
        finally:
            bg.stop()
        self.assertFalse(r["ok"], "a download cut by a dead server must not report success: %s" % r)
        self.assertEqual(r["kind"], "retryable", r)
        self.assertEqual(r["status"], 0, "a transport failure has no HTTP status")
        CEPH.start_rgw(self.VICTIM)
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
            CEPH.kill_rgw(self.VICTIM)
            r = bg.result(timeout=300)
        finally:
            bg.stop()
        os.unlink(src)
        self.assertFalse(r["ok"], r)
        self.assertEqual(r["kind"], "retryable", r)
        CEPH.start_rgw(self.VICTIM)
        self.assertEqual(probe("head", self.bucket, "cut/upload")["kind"], "not_found")
        ups = probe("uploads", self.bucket)["uploads"]
        sys.stderr.write("\n[s3_client] open uploads after an mput cut by a killed RGW: %s\n"
                         % [u["key"] for u in ups])
        self.assertLessEqual(len(ups), 1, ups)
        self.assertTrue(all(u["key"] == "cut/upload" for u in ups), ups)
        for u in ups:  # clean up what the dead server kept
            cp = CEPH.aws(["s3api", "abort-multipart-upload", "--bucket", self.bucket,
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
        cls.dir = tempfile.mkdtemp(dir=WORK)
        cls.proxy = FaultProxy(CEPH.endpoints[0])
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


class PagingTest(unittest.TestCase):
    """Listings longer than one page (1000 entries)."""

    @staticmethod
    def fill(n_workers, fn, items):
        with concurrent.futures.ThreadPoolExecutor(n_workers) as pool:
            for status in pool.map(fn, items):
                if status != 200:
                    raise AssertionError("setup request failed: HTTP %s" % status)

    def test_listing_follows_a_continuation_token_that_needs_escaping(self):
        bucket = new_bucket("paging")
        # 999 plain keys, then awkward ones: the 1000th key, which RGW hands back as the
        # continuation token, has to survive XML unescaping and query encoding.
        keys = ["pg/%04d" % i for i in range(999)]
        keys += ["pg/~ a+b&c=d?e#f%2F\u65e5\u672c<x>", "pg/~~ second page", "pg/~~~ +"]
        self.fill(8, lambda k: CEPH.s3("PUT", "/%s/%s" % (bucket, k), body=b"x")[0], keys)
        r = probe("list", bucket, "pg/")
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(r["keys"]), len(keys), "no key lost or repeated across pages")
        self.assertEqual(sorted(r["keys"]), sorted(keys))

    def test_listing_multipart_uploads_returns_every_page(self):
        bucket = new_bucket("many-uploads")
        n = 1003
        self.fill(8, lambda i: CEPH.s3("POST", "/%s/u%04d" % (bucket, i), query=[("uploads", "")])[0],
                  range(n))
        r = probe("uploads", bucket)
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(r["uploads"]), n)


# --------------------------------------------------------------------------
# 4. connection reuse

class ConnectionReuseTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("reuse")

    def test_500_puts_then_gets_at_concurrency_8_open_at_most_8_connections(self):
        env = {"S3_MAX_CONNECTIONS": "8"}
        put = probe("bench-put", self.bucket, "obj/", 500, 4096, 8, env=env)
        self.assertTrue(put["ok"], put)
        self.assertEqual(put["failures"], 0)
        self.assertLessEqual(put["connections_opened"], 8, put)
        self.assertEqual(len(probe("list", self.bucket, "obj/")["keys"]), 500)
        get = probe("bench-get", self.bucket, "obj/", 500, 4096, 8, env=env)
        self.assertTrue(get["ok"], get)
        self.assertEqual(get["failures"], 0)
        self.assertLessEqual(get["connections_opened"], 8, get)

    def test_pool_limit_holds_when_more_requests_are_in_flight_than_connections(self):
        env = {"S3_MAX_CONNECTIONS": "2"}
        put = probe("bench-put", self.bucket, "few/", 60, 1024, 16, env=env)
        self.assertTrue(put["ok"], put)
        self.assertLessEqual(put["connections_opened"], 2, put)
        get = probe("bench-get", self.bucket, "few/", 60, 1024, 16, env=env)
        self.assertTrue(get["ok"], get)
        self.assertLessEqual(get["connections_opened"], 2, get)


# --------------------------------------------------------------------------
# 5. metadata

META_ENV = {
    "S3_CONTENT_TYPE": "text/x-archie; charset=utf-8",
    "S3_CACHE_CONTROL": "max-age=60, private",
    "S3_META": "color=blue;Mixed-Case=Some Value;spaced=a  b;empty=",
}
META_EXPECTED = {"color": "blue", "mixed-case": "Some Value", "spaced": "a  b", "empty": ""}


class MetadataTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("meta")
        cls.dir = tempfile.mkdtemp(dir=WORK)
        cls.small = write_random(os.path.join(cls.dir, "small"), 4321)
        cls.multi = write_random(os.path.join(cls.dir, "multi"), 11 * MIB)

    def assert_meta(self, key):
        h = probe("head", self.bucket, key)
        self.assertTrue(h["ok"], h)
        self.assertEqual(h["content_type"], META_ENV["S3_CONTENT_TYPE"], key)
        self.assertEqual(h["cache_control"], META_ENV["S3_CACHE_CONTROL"], key)
        self.assertEqual(h["metadata"], META_EXPECTED, key)
        return h

    def test_put_metadata_is_returned_by_head_and_kept_by_copy(self):
        self.assertTrue(probe("put", self.bucket, "m/put", self.small, env=META_ENV)["ok"])
        self.assert_meta("m/put")
        ref = aws_json(["s3api", "head-object", "--bucket", self.bucket, "--key", "m/put"])
        self.assertEqual(ref["ContentType"], META_ENV["S3_CONTENT_TYPE"])
        self.assertEqual(ref["CacheControl"], META_ENV["S3_CACHE_CONTROL"])
        self.assertEqual(ref["Metadata"], META_EXPECTED)
        self.assertTrue(probe("copy", self.bucket, "m/put", "m/put-copy")["ok"])
        self.assert_meta("m/put-copy")

    def test_multipart_upload_and_part_copy_keep_metadata(self):
        r = probe("mput", self.bucket, "m/mput", self.multi, 5, env=META_ENV)
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["parts"], 3)
        self.assert_meta("m/mput")
        self.assertTrue(probe("copy", self.bucket, "m/mput", "m/mput-copy")["ok"])
        self.assert_meta("m/mput-copy")
        r = probe("mcopy", self.bucket, "m/mput", "m/mput-mcopy", 5)
        self.assertTrue(r["ok"], r)
        h = self.assert_meta("m/mput-mcopy")
        self.assertEqual(h["size"], 11 * MIB)
        dest = os.path.join(self.dir, "mcopy.dl")
        self.assertTrue(probe("get", self.bucket, "m/mput-mcopy", dest, 2)["ok"])
        self.assertEqual(sha256_file(dest), sha256_file(self.multi))

    def test_object_without_metadata_has_none(self):
        self.assertTrue(probe("put", self.bucket, "m/plain", self.small)["ok"])
        h = probe("head", self.bucket, "m/plain")
        self.assertEqual(h["metadata"], {})
        self.assertEqual(h["cache_control"], "")


# --------------------------------------------------------------------------
# 6. payload signing modes

class PayloadSigningTest(unittest.TestCase):
    """Through a pass-through proxy, so the x-amz-content-sha256 the client sent is seen."""

    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("signing")
        cls.dir = tempfile.mkdtemp(dir=WORK)
        cls.body = write_random(os.path.join(cls.dir, "body"), 5 * MIB + 3)
        cls.digest = sha256_file(cls.body)
        cls.proxy = FaultProxy(CEPH.endpoints[0])

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
