"""archie's S3 client (src/store/s3, src/http/client) doing its normal work against a real
Ceph RADOS Gateway: byte-exact round trips (single and multipart, read back by awscli too),
awkward keys, listings longer than a page, connection reuse within the pool limit, and
metadata kept by uploads and copies.

Servers, and the probe that drives the client: tests/integration/s3_client_servers.py. Run
from the repo root: /usr/bin/python3 -m unittest -v tests.integration.test_s3_client_ops"""

import concurrent.futures
import hashlib
import os
import tempfile
import threading
import unicodedata
import unittest

from testkit.files import MiB as MIB, sha256_file, write_random
from tests.integration import s3_client_servers as servers
from tests.integration.s3_client_servers import aws_json, aws_list_keys, aws_list_objects, new_bucket, probe

setUpModule, tearDownModule = servers.setUpModule, servers.tearDownModule  # this module's own rig


# --------------------------------------------------------------------------
# 1. byte-exact round trips

class RoundTripTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bucket = new_bucket("roundtrip")
        cls.dir = tempfile.mkdtemp(dir=servers.WORK)
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
        cp = servers.CEPH.aws(["s3", "cp", "--only-show-errors", "s3://%s/big/200m" % self.bucket, ref])
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
            cp = servers.CEPH.aws(["s3", "cp", "--only-show-errors", src, "s3://%s/%s" % (self.bucket, key)])
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
        d = tempfile.mkdtemp(dir=servers.WORK)
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

        # server-side copy to key + ".copy", checked with awscli (one listing: size and ETag
        # of every copy, where a head-object per key would cost a second of awscli each)
        def copy(i, k):
            r = probe("copy", bucket, k, k + ".copy")
            if not r["ok"]:
                fail(k, "copy: %s" % r.get("describe"))
        each(copy)
        objects = {o["Key"]: o for o in aws_list_objects(bucket)}
        self.assertEqual(sorted(objects), sorted(keys + [k + ".copy" for k in keys]))
        for i, k in enumerate(keys):
            listed = objects[k + ".copy"]
            if listed["Size"] != len(key_body(i, k)):
                fail(k, "copy has %d bytes" % listed["Size"])
            if listed["ETag"].strip('"') != hashlib.md5(key_body(i, k)).hexdigest():
                fail(k, "copy has ETag %s" % listed["ETag"])

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
        d = tempfile.mkdtemp(dir=servers.WORK)
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
# 3. listings longer than a page

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
        self.fill(8, lambda k: servers.CEPH.s3("PUT", "/%s/%s" % (bucket, k), body=b"x")[0], keys)
        r = probe("list", bucket, "pg/")
        self.assertTrue(r["ok"], r)
        self.assertEqual(len(r["keys"]), len(keys), "no key lost or repeated across pages")
        self.assertEqual(sorted(r["keys"]), sorted(keys))

    def test_listing_multipart_uploads_returns_every_page(self):
        bucket = new_bucket("many-uploads")
        n = 1003
        self.fill(8, lambda i: servers.CEPH.s3("POST", "/%s/u%04d" % (bucket, i), query=[("uploads", "")])[0],
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
        cls.dir = tempfile.mkdtemp(dir=servers.WORK)
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


if __name__ == "__main__":
    unittest.main(verbosity=2)
