#!/usr/bin/python3
"""archie's GCS client and destination (src/store/gcs) against the GCS test server.

Server: one testkit/gcs_server for the module (started by testkit/gcs_server/launcher.py),
a fresh bucket per test. The client is driven through tests/tools/gcs_probe (ARCHIE_GCS_PROBE,
else build/tests/gcs_probe), one operation per run, each printing one JSON line. The probe is
an ASan/UBSan build: every run must exit 0 with nothing from a sanitizer on stderr.

What is pinned here: byte-exact round trips (0 B .. 300 MiB) through the single-request and
the resumable paths, with the server's md5Hash/crc32c equal to the local ones; parts handed
over out of order; resuming after a chunk is cut mid-body, answered 503, or committed with its
answer lost; the three credential sources (service-account JWT flow, static token, metadata
server) and token refresh before expiry and after a 401; typed errors (not_found, permission,
precondition_failed, retryable) with no secret in them; metadata kept; sessions cancelled on
abort and a part whose predecessor never comes giving up.

Run from the repo root with the system Python:

    /usr/bin/python3 -m unittest -v tests.integration.test_gcs_client
"""

import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from testkit import files  # noqa: E402
from testkit.fixtures import close_all, require_built, unique_name  # noqa: E402
from testkit.gcs_server.checksums import Crc32c  # noqa: E402
from testkit.gcs_server.launcher import GcsTestServer  # noqa: E402
from testkit.paths import GCS_PROBE as PROBE  # noqa: E402
from testkit.probes import GCS_PROBE_VARS, BackgroundProbe, probe_env, run_probe  # noqa: E402

KIB = 1024
MIB = 1024 * KIB
Q = 256 * KIB

GCS = None
WORK = None


def setUpModule():
    global GCS, WORK
    require_built(PROBE, "ARCHIE_GCS_PROBE")
    WORK = tempfile.mkdtemp(prefix="archie-gcs-client-")
    GCS = GcsTestServer()
    GCS.start()


def tearDownModule():
    close_all(GCS, WORK)


# --------------------------------------------------------------------------
# helpers

def new_bucket(stem):
    name = unique_name(stem)
    GCS.create_bucket(name)
    return name


def creds(kind):
    if kind == "token":
        return ["token", GCS.static_token]
    if kind == "metadata":
        return ["metadata", "-"]
    if kind == "service_account":
        return ["service_account", GCS.sa_key_path]
    raise ValueError(kind)


def probe_argv(args, cred):
    cred_args = cred if isinstance(cred, list) else creds(cred)
    return [PROBE, GCS.endpoint] + cred_args + [str(a) for a in args]


def gcs_probe_env(env):
    return probe_env(dict({"GCE_METADATA_HOST": GCS.state["metadata_host"]}, **(env or {})), clear=GCS_PROBE_VARS)


def probe(*args, cred="service_account", env=None, timeout=300):
    return run_probe(probe_argv(args, cred), gcs_probe_env(env), timeout=timeout)


def background_probe(*args, cred="service_account", env=None):
    return BackgroundProbe(probe_argv(args, cred), gcs_probe_env(env))


def write_random(path, size):
    return files.write_random(path, size, chunk=8 * MIB)


def local_hashes(path):
    md5 = hashlib.md5()
    crc = Crc32c()
    with open(path, "rb") as f:
        while True:
            d = f.read(8 * MIB)
            if not d:
                break
            md5.update(d)
            crc.update(d)
    return base64.b64encode(md5.digest()).decode(), crc.b64()


def same_file(a, b):
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            da, db = fa.read(8 * MIB), fb.read(8 * MIB)
            if da != db:
                return False
            if not da:
                return True


def requests_for(bucket, kinds=None):
    """The server's request log entries touching `bucket` (session PUTs carry it in the path)."""
    out = []
    for r in GCS.requests_log():
        if "/b/%s/" % bucket not in r["path"] + "/" and r["path"] != "/storage/v1/b/%s" % bucket:
            continue
        if kinds and r["kind"] not in kinds:
            continue
        out.append(r)
    return out


def active_uploads(bucket):
    return [u for u in GCS.pending_uploads() if u["bucket"] == bucket]


class GcsCase(unittest.TestCase):
    def setUp(self):
        GCS.clear_faults()
        self.dir = tempfile.mkdtemp(dir=WORK)

    def tearDown(self):
        GCS.clear_faults()
        shutil.rmtree(self.dir, ignore_errors=True)

    def file(self, name, size):
        return write_random(os.path.join(self.dir, name), size)

    def assertOk(self, r):
        self.assertTrue(r.get("ok"), r)
        return r

    def round_trip(self, bucket, key, path, part_mib, cred="service_account", env=None):
        """put through the destination, then stat and get: bytes and the server's hashes match."""
        put = self.assertOk(probe("put", bucket, key, path, part_mib, cred=cred, env=env))
        size = os.path.getsize(path)
        md5, crc = local_hashes(path)
        st = self.assertOk(probe("stat", bucket, key, cred=cred))
        self.assertEqual(st["size"], size)
        self.assertEqual(st["md5"], md5, "server md5Hash differs from the local MD5")
        self.assertEqual(st["crc32c"], crc, "server crc32c differs from the local CRC32C")
        self.assertEqual(st["etag"], base64.b64decode(md5).hex())
        out = path + ".down"
        got = self.assertOk(probe("get", bucket, key, out, 4, cred=cred))
        self.assertTrue(same_file(path, out), "downloaded bytes differ (%d bytes)" % size)
        if size:
            self.assertEqual(got["download"]["crc32c"], crc)
            self.assertEqual(got["download"]["generation"], st["generation"])
        os.unlink(out)
        self.assertEqual(active_uploads(bucket), [], "an upload session was left open")
        return put, st


# --------------------------------------------------------------------------


class RoundTrips(GcsCase):
    def test_sizes_single_and_resumable(self):
        b = new_bucket("sizes")
        # part size 1 MiB: up to 1 MiB is one request; above, a resumable session with the last
        # part's ragged tail (or, for 2 MiB, an empty "bytes */total") sent by finish().
        for size, parts in ((0, 1), (1, 1), (Q - 1, 1), (MIB, 1), (2 * MIB, 2), (5 * Q, 2), (5 * MIB + 1, 6)):
            with self.subTest(size=size):
                key = "obj-%d" % size
                put, _ = self.round_trip(b, key, self.file(key, size), 1)
                self.assertEqual(put["parts"], parts)

    def test_300_mib_resumable(self):
        b = new_bucket("big")
        path = self.file("big", 300 * MIB)
        GCS.requests_log(clear=True)
        put, st = self.round_trip(b, "big/object", path, 16)
        self.assertEqual(put["parts"], 19)
        session = [r for r in requests_for(b, {"upload.chunk", "upload.status"}) if r["method"] == "PUT"]
        ranges = [r["headers"].get("Content-Range") for r in session]
        # 19 parts in order (the last one, 12 MiB, is 256 KiB-aligned and goes up whole), then
        # finish() finalizes with an empty "bytes */total" carrying the whole object's CRC32C.
        self.assertEqual(len(session), 20, ranges)
        starts = [int(cr.split()[1].split("-")[0]) for cr in ranges[:-1]]
        self.assertEqual(starts, [i * 16 * MIB for i in range(19)], "chunks not sent in order: %s" % ranges)
        for r in session[:-1]:
            self.assertTrue(r["headers"]["Content-Range"].endswith("/*"), r)
            self.assertNotIn("X-Goog-Hash", r["headers"])
        final = session[-1]
        self.assertEqual(final["headers"]["Content-Range"], "bytes */%d" % (300 * MIB))
        self.assertEqual(final["headers"].get("X-Goog-Hash"), "crc32c=" + st["crc32c"])

    def test_parts_arriving_in_reverse(self):
        b = new_bucket("reverse")
        path = self.file("rev", 8 * MIB + 5)
        self.round_trip(b, "rev", path, 1, env={"GCS_PART_ORDER": "reverse"})

    def test_token_and_metadata_credentials_round_trip(self):
        b = new_bucket("creds")
        self.round_trip(b, "via-token", self.file("t", 3 * MIB + 7), 1, cred="token")
        self.round_trip(b, "via-metadata", self.file("m", 3 * MIB + 7), 1, cred="metadata")

    def test_object_names_are_percent_encoded(self):
        b = new_bucket("names")
        names = ["dir/sub dir/file name.txt", "ünïcödé/ключ", "q?x=1&y=2#frag", "100%+plus", "a//double"]
        for n in names:
            with self.subTest(name=n):
                self.round_trip(b, n, self.file("n", 1000), 1)
        listed = self.assertOk(probe("list", b, ""))
        self.assertEqual(sorted(listed["names"]), sorted(names))
        st, _, doc = GCS.json_request("GET", "/storage/v1/b/%s/o" % b)
        self.assertEqual(sorted(i["name"] for i in doc["items"]), sorted(names))


class Resume(GcsCase):
    def test_chunk_dropped_mid_body_resumes_from_persisted_offset(self):
        b = new_bucket("drop")
        path = self.file("d", 6 * MIB + 123)
        GCS.requests_log(clear=True)
        # The first chunk PUT is cut after 300 KiB: the server keeps one 256 KiB block. It went
        # out on a pooled connection, which http::client re-sends once on a fresh connection by
        # itself (a reset before any answer looks like a stale keep-alive): cut that one too, so
        # that the GCS client's own recovery (status query, resend from the persisted offset) runs.
        GCS.add_fault(kind="upload.chunk", count=2, action="drop", after_bytes=300 * KIB, persist="aligned",
                      name_regex="^d$")
        self.round_trip(b, "d", path, 1, env={"GCS_PART_ORDER": "inorder"})
        log = requests_for(b, {"upload.chunk", "upload.status"})
        self.assertTrue(any(r["status"] == "dropped" for r in log), log)
        status = [r for r in log if r["kind"] == "upload.status"]
        self.assertTrue(status and status[0]["headers"]["Content-Range"] == "bytes */*", log)
        resent = [r["headers"].get("Content-Range", "") for r in log if r["kind"] == "upload.chunk"]
        self.assertTrue(any(cr.startswith("bytes %d-" % Q) for cr in resent),
                        "no chunk resent from the persisted 256 KiB: %s" % resent)

    def test_chunk_dropped_with_nothing_persisted(self):
        b = new_bucket("drop0")
        path = self.file("d0", 4 * MIB + 1)
        GCS.fail_chunks(2, mode="drop", after_bytes=700 * KIB, persist="none")  # 2: see above
        self.round_trip(b, "d0", path, 1)

    def test_chunks_answered_503_are_resumed(self):
        b = new_bucket("c503")
        GCS.fail_chunks(2, mode="503")
        self.round_trip(b, "c", self.file("c", 3 * MIB + 1), 1)

    def test_single_request_upload_dropped_midway(self):
        b = new_bucket("single")
        GCS.requests_log(clear=True)
        GCS.fail_chunks(2, mode="drop", after_bytes=300 * KIB)  # 2: see above
        self.round_trip(b, "s", self.file("s", 700 * KIB), 1)
        log = requests_for(b, {"upload.chunk", "upload.status"})
        self.assertEqual([r["kind"] for r in log], ["upload.chunk"] * 2 + ["upload.status", "upload.chunk"], log)
        self.assertEqual(log[-1]["headers"]["Content-Range"], "bytes %d-%d/%d" % (Q, 700 * KIB - 1, 700 * KIB))
        self.assertIn("md5=", log[-1]["headers"]["X-Goog-Hash"])

    def test_final_answer_lost_after_commit(self):
        # The server finalizes the object but answers 503: the status query finds it complete.
        b = new_bucket("commit")
        GCS.requests_log(clear=True)
        GCS.fail_chunks(1, mode="503", commit=True)
        self.round_trip(b, "c", self.file("c", 200 * KIB), 1)
        log = requests_for(b, {"upload.chunk", "upload.status"})
        self.assertEqual([(r["kind"], r["status"]) for r in log], [("upload.chunk", 503), ("upload.status", 200)])
        GCS.requests_log(clear=True)
        GCS.fail_chunks(1, mode="503", commit=True, status=503)
        path = self.file("r", 2 * MIB + 3)
        put = probe("put", b, "r", path, 1, env={"GCS_PART_ORDER": "inorder"})
        self.assertOk(put)
        md5, crc = local_hashes(path)
        st = self.assertOk(probe("stat", b, "r"))
        self.assertEqual((st["md5"], st["crc32c"]), (md5, crc))

    def test_session_gone_fails_retryably(self):
        b = new_bucket("gone")
        path = self.file("g", 3 * MIB)
        # Every chunk 410: the session is over and the upload fails (the next delivery starts anew).
        GCS.fail_chunks(20, mode="410")
        r = probe("put", b, "g", path, 1)
        self.assertFalse(r["ok"], r)
        self.assertEqual((r["kind"], r["status"]), ("retryable", 410), r)
        self.assertEqual(r["operation"], "UploadChunk")
        self.assertNotIn("upload_id", r["describe"])


class Credentials(GcsCase):
    def setUp(self):
        super().setUp()
        self.bucket = new_bucket("auth")
        self.assertOk(probe("put", self.bucket, "k", self.file("k", 10), 1, cred="token"))

    def object_gets(self):
        return [r for r in requests_for(self.bucket, {"object.get"})]

    def test_service_account_jwt_bearer_flow(self):
        GCS.requests_log(clear=True)
        r = self.assertOk(probe("stat", self.bucket, "k", cred="service_account"))
        self.assertEqual(r["token_fetches"], 1)
        self.assertIn(GCS.sa_key_path, r["credential_source"])
        tokens = [x for x in GCS.requests_log() if x["kind"] == "token"]
        self.assertEqual([(t["method"], t["status"]) for t in tokens], [("POST", 200)], tokens)
        self.assertEqual(tokens[0]["headers"]["Content-Type"], "application/x-www-form-urlencoded")
        self.assertEqual([g["principal"] for g in self.object_gets()], [GCS.sa_email])

    def test_static_token(self):
        GCS.requests_log(clear=True)
        r = self.assertOk(probe("stat", self.bucket, "k", cred="token"))
        self.assertEqual(r["token_fetches"], 0)
        self.assertFalse([x for x in GCS.requests_log() if x["kind"] in ("token", "metadata.token")])
        self.assertEqual([g["principal"] for g in self.object_gets()], [GCS.state["static_principal"]])

    def test_metadata_server(self):
        GCS.requests_log(clear=True)
        r = self.assertOk(probe("stat", self.bucket, "k", cred="metadata"))
        self.assertEqual(r["token_fetches"], 1)
        self.assertEqual(r["credential_source"], "metadata server " + GCS.state["metadata_host"])
        meta = [x for x in GCS.requests_log() if x["kind"] == "metadata.token"]
        self.assertEqual(len(meta), 1)
        self.assertEqual(meta[0]["headers"].get("Metadata-Flavor"), "Google")
        self.assertEqual([g["principal"] for g in self.object_gets()], [GCS.state["metadata_email"]])

    def test_token_refreshed_before_expiry(self):
        GCS.set_token_lifetime(2)
        try:
            GCS.requests_log(clear=True)
            for cred in ("service_account", "metadata"):
                with self.subTest(cred=cred):
                    r = self.assertOk(probe("stat-loop", self.bucket, "k", 8, 500, cred=cred))
                    self.assertEqual(r["succeeded"], 8)
                    self.assertGreaterEqual(r["token_fetches"], 2, r)
                    self.assertLessEqual(r["token_fetches"], 4, r)
            refused = [x for x in GCS.requests_log() if x["status"] == 401]
            self.assertEqual(refused, [], "a request went out with an expired token")
        finally:
            GCS.set_token_lifetime(3600)

    def test_401_refreshes_once(self):
        GCS.requests_log(clear=True)
        bg = background_probe("stat-loop", self.bucket, "k", 8, 400, cred="service_account")
        time.sleep(1.2)
        GCS.expire_tokens()
        r = bg.result(timeout=120)
        self.assertOk(r)
        self.assertEqual(r["succeeded"], 8)
        self.assertEqual(r["token_fetches"], 2, r)
        gets = self.object_gets()
        self.assertEqual(sum(1 for g in gets if g["status"] == 401), 1, gets)

    def test_token_endpoint_refusal_is_a_permission_error_naming_the_key_file(self):
        GCS.add_fault(kind="token", count=5, action="status", status=400, error="invalid_grant",
                      message="Invalid JWT Signature.")
        r = probe("stat", self.bucket, "k", cred="service_account")
        self.assertFalse(r["ok"])
        self.assertEqual((r["kind"], r["code"]), ("permission", "invalid_grant"), r)
        self.assertIn(GCS.sa_key_path, r["message"])
        self.assertIn("Invalid JWT Signature", r["message"])
        self.assertEqual(r["operation"], "GetObjectMetadata")

    def test_token_endpoint_503_is_retried(self):
        GCS.requests_log(clear=True)
        GCS.add_fault(kind="token", count=1, action="status", status=503)
        r = self.assertOk(probe("stat", self.bucket, "k", cred="service_account"))
        self.assertEqual(r["token_fetches"], 1)
        self.assertEqual([x["status"] for x in GCS.requests_log() if x["kind"] == "token"], [503, 200])

    def test_metadata_server_down_is_retryable(self):
        GCS.add_fault(kind="metadata.token", count=10, action="status", status=503)
        r = probe("stat", self.bucket, "k", cred="metadata")
        self.assertFalse(r["ok"])
        self.assertEqual(r["kind"], "retryable", r)
        self.assertIn("metadata server " + GCS.state["metadata_host"], r["message"])

    def test_missing_key_file(self):
        missing = os.path.join(self.dir, "no-such-key.json")
        r = probe("stat", self.bucket, "k", cred=["service_account", missing])
        self.assertFalse(r["ok"])
        self.assertEqual(r["kind"], "permission")
        self.assertIn(missing, r["message"])
        self.assertIn("No such file", r["message"])

    def test_key_file_with_a_bad_private_key(self):
        with open(GCS.sa_key_path) as f:
            key = json.load(f)
        key["private_key"] = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
        bad = os.path.join(self.dir, "bad-key.json")
        with open(bad, "w") as f:
            json.dump(key, f)
        r = probe("stat", self.bucket, "k", cred=["service_account", bad])
        self.assertEqual((r["ok"], r["kind"], r["code"]), (False, "permission", "InvalidServiceAccountKey"), r)
        self.assertIn(bad, r["message"])

    def test_refused_static_token_is_not_in_the_error(self):
        secret = "ya29.not-a-valid-token-" + "x" * 20
        r = probe("stat", self.bucket, "k", cred=["token", secret])
        self.assertEqual((r["ok"], r["kind"], r["status"]), (False, "permission", 401), r)
        self.assertIn("static token", r["message"])
        self.assertNotIn(secret, json.dumps(r))


class Errors(GcsCase):
    def test_not_found(self):
        b = new_bucket("nf")
        r = probe("stat", b, "missing")
        self.assertEqual((r["ok"], r["kind"], r["status"], r["code"]), (False, "not_found", 404, "notFound"), r)
        self.assertEqual((r["operation"], r["bucket"], r["key"]), ("GetObjectMetadata", b, "missing"))
        self.assertEqual(r["describe"], "store probe: GetObjectMetadata %s/missing: HTTP 404 notFound: "
                                        "No such object: %s/missing" % (b, b))
        r = probe("get", b, "missing", os.path.join(self.dir, "x"))
        self.assertEqual(r["kind"], "not_found")
        r = probe("delete", b, "missing")
        self.assertEqual(r["kind"], "not_found")
        self.assertOk(probe("remove", b, "missing"))  # the destination: already gone is done
        self.assertEqual(self.assertOk(probe("recorded", b, "missing"))["source_etag"], "")
        r = probe("stat", "no-such-bucket-x", "k")
        self.assertEqual((r["kind"], r["status"]), ("not_found", 404), r)
        r = probe("bucket", "no-such-bucket-x")
        self.assertEqual((r["ok"], r["kind"], r["operation"]), (False, "not_found", "ListObjects"), r)
        self.assertOk(probe("bucket", b))

    def test_the_readiness_probe_needs_only_the_object_permissions_of_roles_storage_object_admin(self):
        b = new_bucket("objadmin")
        # roles/storage.objectAdmin: every storage.objects.* permission, no storage.buckets.get.
        GCS.set_permission(b, "objects", principal=GCS.sa_email)
        self.addCleanup(GCS.set_permission, b, "full", principal=GCS.sa_email)
        status, _, _ = GCS.request("GET", "/storage/v1/b/%s" % b, token=GCS.fetch_token())
        self.assertEqual(status, 403, "the test server must refuse bucket metadata to an object admin")
        self.assertOk(probe("bucket", b))
        self.assertOk(probe("put", b, "k", self.file("k", 10), 1))

    def test_permission(self):
        b = new_bucket("perm")
        self.assertOk(probe("put", b, "k", self.file("k", 10), 1, cred="token"))
        GCS.set_permission(b, "readonly", principal=GCS.sa_email)
        self.assertOk(probe("stat", b, "k"))
        for size, part in ((10, 1), (3 * MIB, 1)):
            with self.subTest(size=size):
                r = probe("put", b, "w", self.file("w", size), part)
                self.assertEqual((r["ok"], r["kind"], r["status"], r["code"]), (False, "permission", 403, "forbidden"), r)
                self.assertIn("service account key", r["message"])
        r = probe("remove", b, "k")
        self.assertEqual((r["kind"], r["status"]), ("permission", 403), r)
        GCS.set_permission(b, "none", principal=GCS.sa_email)
        r = probe("stat", b, "k")
        self.assertEqual((r["kind"], r["status"]), ("permission", 403), r)
        r = probe("bucket", b)
        self.assertEqual(r["kind"], "permission", r)
        GCS.set_permission(b, "full", principal=GCS.sa_email)
        self.assertOk(probe("stat", b, "k"))

    def test_precondition_failed(self):
        b = new_bucket("pre")
        path = self.file("p", 1000)
        first = self.assertOk(probe("put-if-absent", b, "p", path))
        r = probe("put-if-absent", b, "p", path)
        self.assertEqual((r["ok"], r["kind"], r["status"], r["code"]),
                         (False, "precondition_failed", 412, "conditionNotMet"), r)
        self.assertEqual(self.assertOk(probe("stat", b, "p"))["generation"], first["generation"])
        self.assertEqual(active_uploads(b), [])

    def test_transient_errors_are_retried(self):
        b = new_bucket("retry")
        self.assertOk(probe("put", b, "k", self.file("k", 10), 1))
        GCS.fail_next(2, status=503, kind="object.get")
        self.assertOk(probe("stat", b, "k"))
        GCS.fail_next(1, status=429, kind="object.get", retry_after=1)
        t0 = time.time()
        self.assertOk(probe("stat", b, "k"))
        self.assertGreaterEqual(time.time() - t0, 0.9, "Retry-After not honoured")
        GCS.fail_next(10, status=503, kind="object.get")
        r = probe("stat", b, "k")
        self.assertEqual((r["ok"], r["kind"], r["status"], r["code"]), (False, "retryable", 503, "backendError"), r)
        GCS.clear_faults()
        GCS.fail_next(1, status=400, kind="object.get")
        r = probe("stat", b, "k")
        self.assertEqual((r["kind"], r["status"]), ("permanent", 400), r)


class Metadata(GcsCase):
    META_ENV = {
        "GCS_CONTENT_TYPE": "text/csv; charset=utf-8",
        "GCS_CACHE_CONTROL": "public, max-age=600",
        "GCS_CONTENT_DISPOSITION": 'attachment; filename="r.csv"',
        "GCS_CONTENT_ENCODING": "gzip",
        "GCS_META": "archie-source-etag=9b2cf535f27731c974343645a3985328-3;owner=team a",
    }

    def test_metadata_preserved_single_and_resumable(self):
        b = new_bucket("meta")
        for key, size in (("small", 1000), ("large", 3 * MIB + 11)):
            with self.subTest(key=key):
                self.round_trip(b, key, self.file(key, size), 1, env=self.META_ENV)
                st = self.assertOk(probe("stat", b, key))
                self.assertEqual(st["content_type"], "text/csv; charset=utf-8")
                self.assertEqual(st["cache_control"], "public, max-age=600")
                self.assertEqual(st["content_disposition"], 'attachment; filename="r.csv"')
                self.assertEqual(st["content_encoding"], "gzip")
                self.assertEqual(st["metadata"], {"archie-source-etag": "9b2cf535f27731c974343645a3985328-3",
                                                  "owner": "team a"})
                rec = self.assertOk(probe("recorded", b, key))
                self.assertEqual(rec["source_etag"], "9b2cf535f27731c974343645a3985328-3")
                # And as Google's API shows it.
                _, _, doc = GCS.json_request("GET", "/storage/v1/b/%s/o/%s" % (b, key))
                self.assertEqual(doc["metadata"]["owner"], "team a")
                self.assertEqual(doc["cacheControl"], "public, max-age=600")

    def test_utf8_metadata_through_the_json_api(self):
        # Checked with the JSON API only: the test server would put a non-ASCII key into an
        # X-Goog-Meta- header name on downloads, which no HTTP parser accepts.
        b = new_bucket("utf8")
        env = {"GCS_META": "ümlaut=wert ☃;note=ключ", "GCS_CONTENT_TYPE": "text/plain; charset=utf-8"}
        for key, size in (("small", 10), ("large", 2 * MIB + 1)):
            with self.subTest(key=key):
                self.assertOk(probe("put", b, key, self.file(key, size), 1, env=env))
                st = self.assertOk(probe("stat", b, key))
                self.assertEqual(st["metadata"], {"ümlaut": "wert ☃", "note": "ключ"})

    def test_recorded_source_etag_absent_when_not_written_by_archie(self):
        b = new_bucket("foreign")
        self.assertOk(probe("put", b, "k", self.file("k", 10), 1))
        self.assertEqual(self.assertOk(probe("recorded", b, "k"))["source_etag"], "")


class Lifecycle(GcsCase):
    def test_abort_cancels_the_session(self):
        b = new_bucket("abort")
        path = self.file("a", 4 * MIB)
        r = self.assertOk(probe("abort-after", b, "a", path, 1, 2))
        self.assertEqual(r["aborted_after"], 2)
        self.assertEqual(active_uploads(b), [])
        states = [u["state"] for u in GCS.pending_uploads(include_finished=True) if u["bucket"] == b]
        self.assertEqual(states, ["cancelled"])
        self.assertEqual(probe("stat", b, "a")["kind"], "not_found")

    def test_part_whose_predecessor_never_comes_gives_up(self):
        b = new_bucket("gap")
        path = self.file("g", 4 * MIB)
        r = probe("gap", b, "g", path, 1, 1500)
        self.assertEqual((r["ok"], r["kind"], r["code"]), (False, "retryable", "PartNeverArrived"), r)
        self.assertGreaterEqual(r["waited_seconds"], 1.4)
        self.assertEqual(active_uploads(b), [])
        self.assertEqual(probe("stat", b, "g")["kind"], "not_found")

    def test_list_pages(self):
        b = new_bucket("list")
        path = self.file("x", 1)
        names = ["p/%d" % i for i in range(5)] + ["q/0"]
        for n in names:
            self.assertOk(probe("put", b, n, path, 1, cred="token"))
        r = self.assertOk(probe("list", b, "p/", 2, cred="token"))
        self.assertEqual(r["names"], names[:5])
        self.assertEqual(r["pages"], 3)
        r = self.assertOk(probe("list", b, "", cred="token"))
        self.assertEqual(r["names"], names)

    def test_remove(self):
        b = new_bucket("rm")
        self.assertOk(probe("put", b, "k", self.file("k", 10), 1))
        self.assertOk(probe("remove", b, "k"))
        self.assertEqual(probe("stat", b, "k")["kind"], "not_found")


if __name__ == "__main__":
    unittest.main()
