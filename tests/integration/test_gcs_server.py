#!/usr/bin/python3
"""The GCS test server (tests/gcs/gcs_test_server.py) checked directly and with Google's clients.

Servers: one gcs_test_server.py on 127.0.0.1 for the module (tests/gcs/gcs_server.py starts it).

- Direct HTTP tests pin the protocol facts archie's C++ client will rely on: resumable
  sessions (308 + Range, status queries, 256 KiB rule, overlap and gap handling, hash checks,
  cancel, dropped and failed chunks), simple and multipart uploads, ranged downloads,
  preconditions, listing, error JSON, keep-alive, OAuth2 JWT-bearer tokens, the metadata
  server, permissions, and a 1 GiB object streamed through with bounded server memory.
- tests/gcs/fidelity.mjs runs Google's Node.js client (@google-cloud/storage, installed into
  tests/gcs/node_modules by scripts/install-deps; `npm ci` here if it is missing) against the
  server. Skipped only when node_modules is missing and npm is not installed.
- gcloud storage (skipped when /usr/bin/gcloud is absent) copies a 200 MiB file up and down
  in an isolated CLOUDSDK_CONFIG, once with its defaults (parallel composite upload + sliced
  download) and once as a single stream, and authenticates once through the server's /token
  with the generated service-account key.

Run from the repo root with the system Python:

    /usr/bin/python3 -m unittest -v tests.integration.test_gcs_server
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from tests.gcs.gcs_server import GcsTestServer, make_jwt  # noqa: E402
from tests.integration.harness import rss_kib  # noqa: E402

KIB = 1024
MIB = 1024 * KIB
Q = 256 * KIB
GCS_DIR = os.path.join(REPO_ROOT, "tests", "gcs")

GCS = None


def setUpModule():
    global GCS
    GCS = GcsTestServer()
    GCS.start()


def tearDownModule():
    if GCS is not None:
        GCS.close()


# --------------------------------------------------------------------------
# helpers


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c_b64(data):
    """Independent (byte-at-a-time) CRC32C, base64 of the big-endian value, as GCS shows it."""
    c = 0xFFFFFFFF
    for b in data:
        c = (c >> 8) ^ _TABLE[(c ^ b) & 0xFF]
    return base64.b64encode((c ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def blob(n, seed=1):
    out = bytearray()
    block = hashlib.sha256(b"seed%d" % seed).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


_seq = [0]


def new_bucket(prefix="t"):
    _seq[0] += 1
    name = "%s-%d-%d" % (prefix, os.getpid(), _seq[0])
    GCS.create_bucket(name)
    return name


def raw(method, url_or_path, body=None, headers=None, token="static"):
    """A request on a fresh connection; url may be absolute (a session URI)."""
    if url_or_path.startswith("http"):
        u = urllib.parse.urlsplit(url_or_path)
        path = u.path + ("?" + u.query if u.query else "")
    else:
        path = url_or_path
    return GCS.request(method, path, body=body, headers=headers, token=token)


def initiate(bucket, name, metadata=None, headers=None, query=None):
    q = {"uploadType": "resumable", "name": name}
    q.update(query or {})
    path = "/upload/storage/v1/b/%s/o?%s" % (bucket, urllib.parse.urlencode(q))
    body = json.dumps(metadata).encode() if metadata is not None else b""
    h = {"Content-Type": "application/json; charset=UTF-8"}
    h.update(headers or {})
    return raw("POST", path, body, h)


def session(bucket, name, **kw):
    status, hdrs, body = initiate(bucket, name, **kw)
    assert status == 200, (status, body)
    return hdrs["location"]


def put_chunk(uri, data, content_range, headers=None):
    h = {"Content-Range": content_range}
    h.update(headers or {})
    return raw("PUT", uri, data, h, token=None)


def status_query(uri, total="*"):
    return put_chunk(uri, b"", "bytes */%s" % total)


def error_of(body):
    doc = json.loads(body)
    err = doc["error"]
    return err["code"], err["errors"][0]["reason"], err["message"]


def object_path(bucket, name):
    return "/storage/v1/b/%s/o/%s" % (bucket, urllib.parse.quote(name, safe=""))


def download(bucket, name, headers=None):
    return raw("GET", object_path(bucket, name) + "?alt=media", headers=headers)


def get_meta(bucket, name, query=""):
    status, _, body = raw("GET", object_path(bucket, name) + query)
    return status, (json.loads(body) if body.strip() else None)


def simple_upload(bucket, name, data, headers=None, query=None):
    q = {"uploadType": "media", "name": name}
    q.update(query or {})
    return raw("POST", "/upload/storage/v1/b/%s/o?%s" % (bucket, urllib.parse.urlencode(q)), data,
               dict({"Content-Type": "application/octet-stream"}, **(headers or {})))


# --------------------------------------------------------------------------
# resumable protocol


class ResumableProtocolTest(unittest.TestCase):
    def setUp(self):
        self.bucket = new_bucket("rp")

    def tearDown(self):
        GCS.clear_faults()
        GCS.set_config(chunk_policy="reject")

    def test_initiate_gives_session_uri(self):
        status, hdrs, body = initiate(self.bucket, "a/b c.bin", {"contentType": "text/plain"})
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        loc = hdrs["location"]
        self.assertTrue(loc.startswith(GCS.endpoint + "/upload/storage/v1/b/%s/o?" % self.bucket), loc)
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query))
        self.assertEqual(q["uploadType"], "resumable")
        self.assertEqual(q["name"], "a/b c.bin")
        self.assertTrue(q["upload_id"])
        self.assertEqual(hdrs["x-guploader-uploadid"], q["upload_id"])

    def test_fresh_session_status_query_has_no_range(self):
        uri = session(self.bucket, "fresh")
        status, hdrs, body = status_query(uri)
        self.assertEqual(status, 308)
        self.assertNotIn("range", hdrs)
        self.assertEqual(body, b"")

    def test_chunks_answer_308_with_range_then_final_object(self):
        data = blob(3 * Q + 1000, 2)
        uri = session(self.bucket, "obj.bin", metadata={"contentType": "application/x-archie",
                                                        "metadata": {"k": "v"}, "cacheControl": "no-cache"})
        status, hdrs, _ = put_chunk(uri, data[:Q], "bytes 0-%d/*" % (Q - 1))
        self.assertEqual((status, hdrs.get("range")), (308, "bytes=0-262143"))
        status, hdrs, _ = status_query(uri)
        self.assertEqual((status, hdrs.get("range")), (308, "bytes=0-262143"))
        status, hdrs, _ = put_chunk(uri, data[Q:3 * Q], "bytes %d-%d/*" % (Q, 3 * Q - 1))
        self.assertEqual((status, hdrs.get("range")), (308, "bytes=0-%d" % (3 * Q - 1)))
        status, hdrs, body = put_chunk(uri, data[3 * Q:], "bytes %d-%d/%d" % (3 * Q, len(data) - 1, len(data)))
        self.assertEqual(status, 200, body)
        res = json.loads(body)
        self.assertEqual(res["kind"], "storage#object")
        self.assertEqual(res["name"], "obj.bin")
        self.assertEqual(res["bucket"], self.bucket)
        self.assertEqual(res["size"], str(len(data)))
        self.assertEqual(res["md5Hash"], md5_b64(data))
        self.assertEqual(res["crc32c"], crc32c_b64(data))
        self.assertEqual(res["contentType"], "application/x-archie")
        self.assertEqual(res["cacheControl"], "no-cache")
        self.assertEqual(res["metadata"], {"k": "v"})
        self.assertEqual(res["metageneration"], "1")
        self.assertRegex(res["generation"], r"^\d{16}$")
        self.assertRegex(res["timeCreated"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        status, _, got = download(self.bucket, "obj.bin")
        self.assertEqual((status, got), (200, data))
        # Any later request on the finished session answers with the object.
        status, _, body = status_query(uri)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["generation"], res["generation"])

    def test_status_query_with_total_completes_a_fully_sent_upload(self):
        data = blob(2 * Q, 3)
        uri = session(self.bucket, "exact")
        self.assertEqual(put_chunk(uri, data, "bytes 0-%d/*" % (2 * Q - 1))[0], 308)
        status, _, body = status_query(uri, total=2 * Q)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["md5Hash"], md5_b64(data))

    def test_final_chunk_may_be_small_and_whole_object_in_one_put(self):
        uri = session(self.bucket, "one-put")
        data = b"tiny object"
        status, _, body = put_chunk(uri, data, "bytes 0-%d/%d" % (len(data) - 1, len(data)))
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["crc32c"], crc32c_b64(data))
        # Without Content-Range the body is the whole object.
        uri = session(self.bucket, "no-range")
        status, _, body = raw("PUT", uri, data, {}, token=None)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["size"], str(len(data)))
        # An empty object: a status query with total 0.
        uri = session(self.bucket, "empty")
        status, _, body = status_query(uri, total=0)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["size"], "0")

    def test_small_non_final_chunk_is_rejected(self):
        uri = session(self.bucket, "small")
        status, _, body = put_chunk(uri, blob(100 * KIB), "bytes 0-%d/*" % (100 * KIB - 1))
        self.assertEqual(status, 400)
        code, reason, msg = error_of(body)
        self.assertEqual(reason, "invalid")
        self.assertIn("The number of bytes uploaded is required to be equal or greater than 262144", msg)
        self.assertIn("The received request contained 102400 bytes", msg)
        self.assertEqual(status_query(uri)[0], 308)      # session still usable

    def test_non_multiple_non_final_chunk_rejected_or_truncated(self):
        uri = session(self.bucket, "ragged")
        n = Q + 44 * KIB
        status, _, body = put_chunk(uri, blob(n), "bytes 0-%d/*" % (n - 1))
        self.assertEqual(status, 400)
        self.assertIn("multiple of 262144", error_of(body)[2])
        GCS.set_config(chunk_policy="truncate")
        status, hdrs, _ = put_chunk(uri, blob(n), "bytes 0-%d/*" % (n - 1))
        self.assertEqual((status, hdrs.get("range")), (308, "bytes=0-262143"))

    def test_md5_mismatch_on_final_chunk_is_rejected(self):
        data = blob(Q + 5, 4)
        uri = session(self.bucket, "bad-md5")
        put_chunk(uri, data[:Q], "bytes 0-%d/*" % (Q - 1))
        wrong = md5_b64(b"something else")
        status, _, body = put_chunk(uri, data[Q:], "bytes %d-%d/%d" % (Q, len(data) - 1, len(data)),
                                    {"X-Goog-Hash": "crc32c=%s,md5=%s" % (crc32c_b64(data), wrong)})
        self.assertEqual(status, 400)
        code, reason, msg = error_of(body)
        self.assertEqual((code, reason), (400, "invalid"))
        self.assertEqual(msg, 'Provided MD5 hash "%s" doesn\'t match calculated MD5 hash "%s".' % (wrong, md5_b64(data)))
        self.assertEqual(get_meta(self.bucket, "bad-md5")[0], 404)
        self.assertEqual(status_query(uri)[0], 410)

    def test_crc32c_from_initiate_metadata_is_verified(self):
        data = blob(1000, 5)
        uri = session(self.bucket, "bad-crc", metadata={"crc32c": "AAAAAA=="})
        status, _, body = put_chunk(uri, data, "bytes 0-999/1000")
        self.assertEqual(status, 400)
        self.assertEqual(error_of(body)[2],
                         'Provided CRC32C "AAAAAA==" doesn\'t match calculated CRC32C "%s".' % crc32c_b64(data))
        uri = session(self.bucket, "good-crc", metadata={"crc32c": crc32c_b64(data), "md5Hash": md5_b64(data)})
        self.assertEqual(put_chunk(uri, data, "bytes 0-999/1000")[0], 200)

    def test_x_upload_content_length_must_match(self):
        uri = session(self.bucket, "declared", headers={"X-Upload-Content-Length": "1000",
                                                         "X-Upload-Content-Type": "image/png"})
        status, _, body = put_chunk(uri, b"x" * 100, "bytes 0-99/100")
        self.assertEqual(status, 400, body)
        status, _, body = put_chunk(uri, b"x" * 1000, "bytes 0-999/1000")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["contentType"], "image/png")

    def test_cancel_answers_499_then_the_session_is_gone(self):
        uri = session(self.bucket, "cancelled")
        put_chunk(uri, blob(Q), "bytes 0-%d/*" % (Q - 1))
        status, _, body = raw("DELETE", uri, None, {"Content-Length": "0"}, token=None)
        self.assertEqual((status, body), (499, b""))
        status, _, body = status_query(uri)
        self.assertEqual(status, 410)
        self.assertEqual(get_meta(self.bucket, "cancelled")[0], 404)
        self.assertNotIn(uri.split("upload_id=")[1], [u["upload_id"] for u in GCS.pending_uploads()])

    def test_unknown_session_is_404(self):
        status, _, body = raw("PUT", "/upload/storage/v1/b/%s/o?uploadType=resumable&upload_id=nope" % self.bucket,
                              b"", {"Content-Range": "bytes */*"}, token=None)
        self.assertEqual(status, 404)

    def test_resent_overlap_is_ignored_and_gap_rejected(self):
        data = blob(3 * Q + 7, 6)
        uri = session(self.bucket, "overlap")
        put_chunk(uri, data[:Q], "bytes 0-%d/*" % (Q - 1))
        status, hdrs, _ = put_chunk(uri, data[:2 * Q], "bytes 0-%d/*" % (2 * Q - 1))
        self.assertEqual((status, hdrs.get("range")), (308, "bytes=0-%d" % (2 * Q - 1)))
        status, _, body = put_chunk(uri, data[3 * Q:], "bytes %d-%d/%d" % (3 * Q, len(data) - 1, len(data)))
        self.assertEqual(status, 400, body)
        self.assertIn("only %d byte(s) have been persisted" % (2 * Q), error_of(body)[2])
        status, _, body = put_chunk(uri, data[2 * Q:], "bytes %d-%d/%d" % (2 * Q, len(data) - 1, len(data)))
        self.assertEqual(status, 200, body)
        self.assertEqual(download(self.bucket, "overlap")[2], data)

    def test_body_length_must_match_content_range(self):
        uri = session(self.bucket, "short")
        status, _, body = put_chunk(uri, blob(1000), "bytes 0-%d/*" % (Q - 1))
        self.assertEqual(status, 400)
        self.assertIn("There were 1000 byte(s) in the request body", error_of(body)[2])
        status, _, body = put_chunk(uri, b"", "bytes 0-x/*")
        self.assertEqual((status, error_of(body)[2]), (400, "Failed to parse Content-Range header."))

    def test_dropped_chunk_keeps_whole_blocks_received(self):
        data = blob(4 * MIB + 3, 7)
        uri = session(self.bucket, "dropped")
        GCS.fail_chunks(1, mode="drop", after_bytes=600 * KIB)
        with self.assertRaises((OSError, http.client.HTTPException)):
            put_chunk(uri, data[:MIB], "bytes 0-%d/*" % (MIB - 1))
        status, hdrs, _ = status_query(uri)
        self.assertEqual((status, hdrs.get("range")), (308, "bytes=0-%d" % (2 * Q - 1)))
        sess = [u for u in GCS.pending_uploads() if u["name"] == "dropped"][0]
        self.assertEqual(sess["persisted"], 2 * Q)
        # persist=none: the cut chunk leaves nothing behind.
        GCS.fail_chunks(1, mode="drop", after_bytes=900 * KIB, persist="none")
        with self.assertRaises((OSError, http.client.HTTPException)):
            put_chunk(uri, data[2 * Q:2 * Q + MIB], "bytes %d-%d/*" % (2 * Q, 2 * Q + MIB - 1))
        self.assertEqual(status_query(uri)[1].get("range"), "bytes=0-%d" % (2 * Q - 1))
        status, _, body = put_chunk(uri, data[2 * Q:], "bytes %d-%d/%d" % (2 * Q, len(data) - 1, len(data)))
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["md5Hash"], md5_b64(data))

    def test_503_chunk_then_resume(self):
        data = blob(2 * Q + 1, 8)
        uri = session(self.bucket, "flaky")
        GCS.fail_chunks(1, mode="503")
        status, _, body = put_chunk(uri, data[:Q], "bytes 0-%d/*" % (Q - 1))
        self.assertEqual(status, 503)
        self.assertEqual(error_of(body)[:2], (503, "backendError"))
        self.assertNotIn("range", status_query(uri)[1])
        # commit=True: the chunk is stored but the answer is lost as a 503.
        GCS.fail_chunks(1, mode="503", commit=True)
        self.assertEqual(put_chunk(uri, data[:Q], "bytes 0-%d/*" % (Q - 1))[0], 503)
        self.assertEqual(status_query(uri)[1].get("range"), "bytes=0-%d" % (Q - 1))
        status, _, body = put_chunk(uri, data[Q:], "bytes %d-%d/%d" % (Q, len(data) - 1, len(data)))
        self.assertEqual(status, 200, body)

    def test_chunked_transfer_encoding_and_open_ended_range(self):
        data = blob(2 * Q + 123, 9)
        uri = session(self.bucket, "chunked")
        u = urllib.parse.urlsplit(uri)
        conn = GCS.connection()
        try:
            conn.request("PUT", u.path + "?" + u.query, body=iter([data[:1000], data[1000:]]),
                         headers={"Content-Range": "bytes 0-*/%d" % len(data)}, encode_chunked=True)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        self.assertEqual(resp.status, 200, body)
        self.assertEqual(json.loads(body)["crc32c"], crc32c_b64(data))

    def test_session_uri_needs_no_credentials_but_initiate_does(self):
        status, _, body = raw("POST", "/upload/storage/v1/b/%s/o?uploadType=resumable&name=x" % self.bucket,
                              b"", token=None)
        self.assertEqual(status, 401)
        self.assertEqual(error_of(body)[1], "required")
        uri = session(self.bucket, "anon-put")
        status, _, _ = raw("PUT", uri, b"abc", {"Content-Range": "bytes 0-2/3"}, token="ya29.bogus")
        self.assertEqual(status, 200)

    def test_initiate_checks_preconditions_and_finalize_rechecks(self):
        simple_upload(self.bucket, "exists", b"1")
        status, _, body = initiate(self.bucket, "exists", query={"ifGenerationMatch": "0"})
        self.assertEqual(status, 412)
        self.assertEqual(error_of(body)[1], "conditionNotMet")
        uri = session(self.bucket, "race", query={"ifGenerationMatch": "0"})
        simple_upload(self.bucket, "race", b"someone else")
        status, _, body = put_chunk(uri, b"mine", "bytes 0-3/4")
        self.assertEqual(status, 412, body)
        self.assertEqual(download(self.bucket, "race")[2], b"someone else")

    def test_pending_sessions_are_listed(self):
        uri = session(self.bucket, "pending")
        put_chunk(uri, blob(Q), "bytes 0-%d/*" % (Q - 1))
        uid = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(uri).query))["upload_id"]
        found = [u for u in GCS.pending_uploads() if u["upload_id"] == uid]
        self.assertEqual(len(found), 1)
        self.assertEqual((found[0]["bucket"], found[0]["persisted"], found[0]["state"]), (self.bucket, Q, "active"))
        GCS.expire_upload(uid)
        self.assertEqual(status_query(uri)[0], 410)


# --------------------------------------------------------------------------
# objects, buckets, errors


class ObjectApiTest(unittest.TestCase):
    def setUp(self):
        self.bucket = new_bucket("oa")

    def tearDown(self):
        GCS.clear_faults()

    def test_simple_upload_and_hash_header_check(self):
        data = blob(70000, 10)
        status, _, body = simple_upload(self.bucket, "s.bin", data, {"Content-Type": "text/x-a"})
        self.assertEqual(status, 200, body)
        res = json.loads(body)
        self.assertEqual((res["size"], res["contentType"], res["md5Hash"], res["crc32c"]),
                         (str(len(data)), "text/x-a", md5_b64(data), crc32c_b64(data)))
        status, _, body = simple_upload(self.bucket, "s2.bin", data, {"X-Goog-Hash": "crc32c=AAAAAA=="})
        self.assertEqual(status, 400)
        self.assertIn('Provided CRC32C "AAAAAA=="', error_of(body)[2])
        self.assertEqual(get_meta(self.bucket, "s2.bin")[0], 404)

    def _multipart(self, meta, data, boundary="b0undary", nl=b"\r\n", query=None):
        b = boundary.encode()
        body = (b"--" + b + nl + b"Content-Type: application/json; charset=UTF-8" + nl + nl +
                json.dumps(meta).encode() + nl + b"--" + b + nl + b"Content-Type: image/jpeg" + nl + nl +
                data + nl + b"--" + b + b"--" + nl)
        q = {"uploadType": "multipart"}
        q.update(query or {})
        return raw("POST", "/upload/storage/v1/b/%s/o?%s" % (self.bucket, urllib.parse.urlencode(q)), body,
                   {"Content-Type": 'multipart/related; boundary="%s"' % boundary})

    def test_multipart_upload(self):
        data = blob(200000, 11) + b"\r\n--b0undar"     # boundary-like bytes inside the media
        status, _, body = self._multipart({"name": "m/p.jpg", "metadata": {"a": "1"}, "contentDisposition": "inline"},
                                          data)
        self.assertEqual(status, 200, body)
        res = json.loads(body)
        self.assertEqual((res["name"], res["contentType"], res["metadata"], res["contentDisposition"]),
                         ("m/p.jpg", "image/jpeg", {"a": "1"}, "inline"))
        self.assertEqual(download(self.bucket, "m/p.jpg")[2], data)
        status, _, body = self._multipart({"name": "lf", "md5Hash": md5_b64(data)}, data, nl=b"\n")
        self.assertEqual(status, 200, body)
        self.assertEqual(download(self.bucket, "lf")[2], data)
        status, _, body = self._multipart({"name": "bad", "md5Hash": md5_b64(b"x")}, data)
        self.assertEqual(status, 400)
        self.assertIn("Provided MD5 hash", error_of(body)[2])
        status, _, body = self._multipart({"name": "a"}, data, query={"name": "b"})
        self.assertEqual(status, 400)

    def test_metadata_and_fields_selector(self):
        simple_upload(self.bucket, "f", b"12345")
        status, m = get_meta(self.bucket, "f")
        self.assertEqual(status, 200)
        for key in ("kind", "id", "selfLink", "mediaLink", "name", "bucket", "generation", "metageneration",
                    "contentType", "storageClass", "size", "md5Hash", "crc32c", "etag", "timeCreated", "updated"):
            self.assertIn(key, m)
        self.assertEqual(m["id"], "%s/f/%s" % (self.bucket, m["generation"]))
        status, m2 = get_meta(self.bucket, "f", "?fields=name,size,generation")
        self.assertEqual(m2, {"name": "f", "size": "5", "generation": m["generation"]})
        # mediaLink is a /download/storage/v1/ URL that serves the bytes.
        u = urllib.parse.urlsplit(m["mediaLink"])
        self.assertEqual(raw("GET", u.path + "?" + u.query)[2], b"12345")

    def test_ranged_downloads(self):
        data = blob(100000, 12)
        simple_upload(self.bucket, "r", data)
        status, hdrs, body = download(self.bucket, "r")
        self.assertEqual((status, body), (200, data))
        self.assertEqual(hdrs["x-goog-hash"], "crc32c=%s,md5=%s" % (crc32c_b64(data), md5_b64(data)))
        self.assertEqual(hdrs["x-goog-stored-content-length"], "100000")
        self.assertRegex(hdrs["x-goog-generation"], r"^\d+$")
        for rng, lo, hi in (("bytes=10-19", 10, 19), ("bytes=99990-", 99990, 99999), ("bytes=-5", 99995, 99999),
                            ("bytes=99990-200000", 99990, 99999)):
            status, hdrs, body = download(self.bucket, "r", {"Range": rng})
            self.assertEqual(status, 206, rng)
            self.assertEqual(hdrs["content-range"], "bytes %d-%d/100000" % (lo, hi))
            self.assertEqual(body, data[lo:hi + 1])
        status, hdrs, body = download(self.bucket, "r", {"Range": "bytes=100000-"})
        self.assertEqual(status, 416)
        self.assertEqual(hdrs["content-range"], "bytes */100000")
        self.assertEqual(error_of(body)[1], "requestedRangeNotSatisfiable")

    def test_preconditions(self):
        simple_upload(self.bucket, "p", b"v1")
        gen = get_meta(self.bucket, "p")[1]["generation"]
        status, _, body = raw("GET", object_path(self.bucket, "p") + "?ifGenerationMatch=1")
        self.assertEqual(status, 412)
        doc = json.loads(body)
        self.assertEqual(doc, {"error": {"code": 412,
                                         "message": "At least one of the pre-conditions you specified did not hold.",
                                         "errors": [{"message": "At least one of the pre-conditions you specified "
                                                                "did not hold.",
                                                     "domain": "global", "reason": "conditionNotMet",
                                                     "locationType": "header", "location": "If-Match"}]}})
        self.assertEqual(raw("GET", object_path(self.bucket, "p") + "?ifGenerationNotMatch=" + gen)[0], 304)
        self.assertEqual(raw("GET", object_path(self.bucket, "p") + "?alt=media&ifGenerationMatch=" + gen)[2], b"v1")
        self.assertEqual(simple_upload(self.bucket, "p", b"v2", query={"ifGenerationMatch": "0"})[0], 412)
        self.assertEqual(simple_upload(self.bucket, "p", b"v2", query={"ifGenerationMatch": gen})[0], 200)
        self.assertEqual(raw("DELETE", object_path(self.bucket, "p") + "?ifGenerationMatch=" + gen)[0], 412)
        self.assertEqual(raw("DELETE", object_path(self.bucket, "p") + "?ifMetagenerationMatch=2")[0], 412)
        status, _, body = raw("DELETE", object_path(self.bucket, "p"))
        self.assertEqual((status, body), (204, b""))
        status, _, body = raw("DELETE", object_path(self.bucket, "p"))
        self.assertEqual(status, 404)
        self.assertEqual(error_of(body), (404, "notFound", "No such object: %s/p" % self.bucket))

    def test_listing(self):
        names = ["a/1", "a/2", "a/b/3", "b/1", "c", "d/", "d/x"]
        for n in names:
            simple_upload(self.bucket, n, n.encode())
        lp = "/storage/v1/b/%s/o" % self.bucket
        status, _, body = raw("GET", lp)
        doc = json.loads(body)
        self.assertEqual(doc["kind"], "storage#objects")
        self.assertEqual([i["name"] for i in doc["items"]], sorted(names))
        self.assertNotIn("nextPageToken", doc)
        doc = json.loads(raw("GET", lp + "?delimiter=/")[2])
        self.assertEqual(doc["prefixes"], ["a/", "b/", "d/"])
        self.assertEqual([i["name"] for i in doc["items"]], ["c"])
        doc = json.loads(raw("GET", lp + "?delimiter=/&prefix=d/&includeTrailingDelimiter=true")[2])
        self.assertEqual([i["name"] for i in doc["items"]], ["d/", "d/x"])
        doc = json.loads(raw("GET", lp + "?delimiter=/&prefix=d/")[2])
        self.assertEqual([i["name"] for i in doc["items"]], ["d/", "d/x"])
        # Pages: maxResults counts items and prefixes together.
        seen, token, pages = [], None, 0
        while True:
            q = "?delimiter=/&maxResults=2" + ("&pageToken=" + urllib.parse.quote(token) if token else "")
            doc = json.loads(raw("GET", lp + q)[2])
            pages += 1
            seen += doc.get("prefixes", []) + [i["name"] for i in doc.get("items", [])]
            self.assertLessEqual(len(doc.get("prefixes", [])) + len(doc.get("items", [])), 2)
            token = doc.get("nextPageToken")
            if not token:
                break
        self.assertEqual(sorted(seen), ["a/", "b/", "c", "d/"])
        self.assertEqual(pages, 2)
        doc = json.loads(raw("GET", lp + "?prefix=a/&maxResults=1")[2])
        self.assertEqual([i["name"] for i in doc["items"]], ["a/1"])
        doc = json.loads(raw("GET", lp + "?prefix=a/&pageToken=" + doc["nextPageToken"])[2])
        self.assertEqual([i["name"] for i in doc["items"]], ["a/2", "a/b/3"])
        doc = json.loads(raw("GET", lp + "?startOffset=b&endOffset=d")[2])
        self.assertEqual([i["name"] for i in doc["items"]], ["b/1", "c"])
        doc = json.loads(raw("GET", lp + "?prefix=zzz")[2])
        self.assertEqual(doc, {"kind": "storage#objects"})

    def test_buckets(self):
        status, _, body = raw("GET", "/storage/v1/b/%s" % self.bucket)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["name"], self.bucket)
        status, _, body = raw("GET", "/storage/v1/b/no-such-bucket-here")
        self.assertEqual(error_of(body), (404, "notFound", "The specified bucket does not exist."))
        name = "ins-%d" % os.getpid()
        status, _, body = raw("POST", "/storage/v1/b?project=archie-test", json.dumps({"name": name}).encode(),
                              {"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["kind"], "storage#bucket")
        status, _, body = raw("POST", "/storage/v1/b?project=archie-test", json.dumps({"name": name}).encode(),
                              {"Content-Type": "application/json"})
        self.assertEqual(error_of(body)[:2], (409, "conflict"))
        status, _, body = raw("POST", "/storage/v1/b", json.dumps({"name": "x" + name}).encode(),
                              {"Content-Type": "application/json"})
        self.assertEqual(error_of(body)[:2], (400, "required"))
        status, _, body = raw("POST", "/storage/v1/b?project=p", json.dumps({"name": "Bad_Name!"}).encode(),
                              {"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertEqual(raw("DELETE", "/storage/v1/b/" + name)[0], 204)

    def test_injected_429_and_503(self):
        GCS.fail_next(1, status=429, kind="object.get")
        status, hdrs, body = raw("GET", "/storage/v1/b/%s" % self.bucket)
        self.assertEqual(status, 200)            # not an object.get
        status, doc = get_meta(self.bucket, "anything")
        self.assertEqual(status, 429)
        self.assertEqual(doc["error"]["errors"][0]["reason"], "rateLimitExceeded")
        GCS.fail_next(2, status=503, retry_after=1)
        status, hdrs, body = raw("GET", "/storage/v1/b/%s/o" % self.bucket)
        self.assertEqual((status, hdrs.get("retry-after")), (503, "1"))
        self.assertEqual(error_of(body)[1], "backendError")
        self.assertEqual(raw("GET", "/storage/v1/b/%s" % self.bucket)[0], 503)
        self.assertEqual(raw("GET", "/storage/v1/b/%s" % self.bucket)[0], 200)

    def test_keep_alive_survives_errors_with_unread_bodies(self):
        conn = GCS.connection()
        try:
            auth = {"Authorization": "Bearer " + GCS.static_token}
            conn.request("POST", "/upload/storage/v1/b/%s/o?uploadType=media&name=k" % self.bucket,
                         body=blob(MIB), headers={"Authorization": "Bearer wrong"})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 401)
            self.assertEqual(r.getheader("WWW-Authenticate"), 'Bearer realm="https://accounts.google.com/"')
            for i in range(3):
                conn.request("POST", "/upload/storage/v1/b/%s/o?uploadType=media&name=k%d" % (self.bucket, i),
                             body=b"data%d" % i, headers=auth)
                r = conn.getresponse()
                self.assertEqual(r.status, 200, r.read())
                r.read()
            conn.request("GET", object_path(self.bucket, "k2") + "?alt=media", headers=auth)
            r = conn.getresponse()
            self.assertEqual(r.read(), b"data2")
        finally:
            conn.close()

    def test_compose(self):
        a, b = blob(300000, 13), blob(5000, 14)
        simple_upload(self.bucket, "c1", a)
        simple_upload(self.bucket, "c2", b)
        status, _, body = raw("POST", object_path(self.bucket, "joined") + "/compose",
                              json.dumps({"sourceObjects": [{"name": "c1"}, {"name": "c2"}],
                                          "destination": {"contentType": "x/y"}}).encode(),
                              {"Content-Type": "application/json"})
        self.assertEqual(status, 200, body)
        res = json.loads(body)
        self.assertEqual((res["componentCount"], res["crc32c"], res["size"]), (2, crc32c_b64(a + b), str(len(a + b))))
        self.assertNotIn("md5Hash", res)
        self.assertEqual(download(self.bucket, "joined")[2], a + b)


# --------------------------------------------------------------------------
# auth


class AuthTest(unittest.TestCase):
    def setUp(self):
        self.bucket = new_bucket("au")
        self.bpath = "/storage/v1/b/%s" % self.bucket

    def tearDown(self):
        GCS.set_token_lifetime(3600)

    def test_missing_and_malformed_authorization(self):
        status, _, body = raw("GET", self.bpath, token=None)
        self.assertEqual(status, 401)
        code, reason, msg = error_of(body)
        self.assertEqual(reason, "required")
        self.assertIn("Anonymous caller does not have storage.buckets.get access", msg)
        status, hdrs, body = raw("GET", self.bpath, headers={"Authorization": "Basic Zm9v"}, token=None)
        self.assertEqual(error_of(body), (401, "authError", "Invalid Credentials"))

    def test_jwt_bearer_flow(self):
        status, doc = GCS.token_request(GCS.make_assertion())
        self.assertEqual(status, 200, doc)
        self.assertEqual(set(doc), {"access_token", "expires_in", "token_type"})
        self.assertEqual((doc["token_type"], doc["expires_in"]), ("Bearer", 3600))
        self.assertEqual(raw("GET", self.bpath, token=doc["access_token"])[0], 200)
        # The audience may be the key's token_uri or Google's token URLs.
        status, doc = GCS.token_request(GCS.make_assertion(aud="https://oauth2.googleapis.com/token"))
        self.assertEqual(status, 200, doc)

    def test_jwt_with_wrong_signature_is_rejected(self):
        other = os.path.join(GCS.dir, "other-key.pem")
        if not os.path.exists(other):
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                            "-out", other], check=True, capture_output=True)
        status, doc = GCS.token_request(GCS.make_assertion(key_pem=other))
        self.assertEqual((status, doc), (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}))
        # The same forged JWT used directly as a self-signed bearer token.
        forged = make_jwt({"iss": GCS.sa_email, "sub": GCS.sa_email, "aud": "https://storage.googleapis.com/",
                           "iat": int(time.time()), "exp": int(time.time()) + 600}, other)
        self.assertEqual(raw("GET", self.bpath, token=forged)[0], 401)

    def test_jwt_claim_checks(self):
        now = int(time.time())
        status, doc = GCS.token_request(GCS.make_assertion(iat=now - 7200, lifetime=3600))
        self.assertEqual((status, doc["error"]), (400, "invalid_grant"))
        self.assertIn("Token must be a short-lived token", doc["error_description"])
        status, doc = GCS.token_request(GCS.make_assertion(lifetime=7200))
        self.assertEqual((status, doc["error"]), (400, "invalid_grant"))
        status, doc = GCS.token_request(GCS.make_assertion(scope=""))
        self.assertEqual((status, doc["error"]), (400, "invalid_scope"))
        status, doc = GCS.token_request(GCS.make_assertion(aud="https://example.com/token"))
        self.assertEqual((status, doc["error"]), (400, "invalid_grant"))
        status, doc = GCS.token_request(GCS.make_assertion(iss="someone@else.iam.gserviceaccount.com"))
        self.assertEqual((status, doc["error"]), (400, "invalid_grant"))
        status, doc = GCS.token_request(GCS.make_assertion(), grant_type="client_credentials")
        self.assertEqual((status, doc["error"]), (400, "unsupported_grant_type"))

    def test_expired_token_is_401(self):
        GCS.set_token_lifetime(1)
        status, doc = GCS.token_request(GCS.make_assertion())
        self.assertEqual(doc["expires_in"], 1)
        tok = doc["access_token"]
        self.assertEqual(raw("GET", self.bpath, token=tok)[0], 200)
        time.sleep(1.2)
        status, hdrs, body = raw("GET", self.bpath, token=tok)
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body), {"error": {"code": 401, "message": "Invalid Credentials", "errors": [
            {"message": "Invalid Credentials", "domain": "global", "reason": "authError",
             "locationType": "header", "location": "Authorization"}]}})
        self.assertEqual(hdrs["www-authenticate"], 'Bearer realm="https://accounts.google.com/"')
        # A refresh gives a working token again.
        GCS.set_token_lifetime(3600)
        self.assertEqual(raw("GET", self.bpath, token=GCS.fetch_token())[0], 200)
        tok = GCS.fetch_token()
        GCS.expire_tokens(tok)
        self.assertEqual(raw("GET", self.bpath, token=tok)[0], 401)

    def test_scopes(self):
        ro = GCS.fetch_token(scope="https://www.googleapis.com/auth/devstorage.read_only")
        self.assertEqual(raw("GET", self.bpath, token=ro)[0], 200)
        status, _, body = raw("POST", "/upload/storage/v1/b/%s/o?uploadType=media&name=x" % self.bucket, b"x",
                              token=ro)
        self.assertEqual(error_of(body), (403, "forbidden", "Provided scope(s) are not authorized"))

    def test_bucket_marked_read_only_for_a_token(self):
        tok = GCS.add_token(principal="replicator@archie.test")
        simple_upload(self.bucket, "seed", b"seed")
        GCS.set_permission(self.bucket, "readonly", token=tok)
        self.assertEqual(raw("GET", object_path(self.bucket, "seed") + "?alt=media", token=tok)[2], b"seed")
        status, _, body = raw("POST", "/upload/storage/v1/b/%s/o?uploadType=media&name=w" % self.bucket, b"w",
                              token=tok)
        code, reason, msg = error_of(body)
        self.assertEqual((code, reason), (403, "forbidden"))
        self.assertEqual(msg, "replicator@archie.test does not have storage.objects.create access to the Google "
                              "Cloud Storage object. Permission 'storage.objects.create' denied on resource (or it "
                              "may not exist).")
        self.assertEqual(raw("DELETE", object_path(self.bucket, "seed"), token=tok)[0], 403)
        self.assertEqual(simple_upload(self.bucket, "w", b"w")[0], 200)     # other tokens unaffected
        GCS.set_permission(self.bucket, "none", token=tok)
        self.assertEqual(raw("GET", self.bpath, token=tok)[0], 403)
        GCS.set_permission(self.bucket, "full", token=tok)
        self.assertEqual(raw("GET", self.bpath, token=tok)[0], 200)

    def test_metadata_server_token(self):
        path = "/computeMetadata/v1/instance/service-accounts/default/token"
        status, hdrs, body = raw("GET", path, token=None)
        self.assertEqual(status, 403)
        status, hdrs, body = raw("GET", path, headers={"Metadata-Flavor": "Google"}, token=None)
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["metadata-flavor"], "Google")
        doc = json.loads(body)
        self.assertEqual(doc["token_type"], "Bearer")
        self.assertGreater(doc["expires_in"], 0)
        GCS.requests_log(clear=True)
        self.assertEqual(raw("GET", self.bpath, token=doc["access_token"])[0], 200)
        self.assertEqual(GCS.requests_log()[-1]["principal"], GCS.state["metadata_email"])
        status, _, body = raw("GET", "/computeMetadata/v1/project/project-id", headers={"Metadata-Flavor": "Google"},
                              token=None)
        self.assertEqual((status, body), (200, b"archie-test"))

    def test_self_signed_jwt_bearer(self):
        now = int(time.time())
        tok = make_jwt({"iss": GCS.sa_email, "sub": GCS.sa_email, "aud": "https://storage.googleapis.com/",
                        "iat": now, "exp": now + 600}, GCS.sa_private_key_pem)
        self.assertEqual(raw("GET", self.bpath, token=tok)[0], 200)
        old = make_jwt({"iss": GCS.sa_email, "sub": GCS.sa_email, "aud": "https://storage.googleapis.com/",
                        "iat": now - 4000, "exp": now - 400}, GCS.sa_private_key_pem)
        self.assertEqual(raw("GET", self.bpath, token=old)[0], 401)


# --------------------------------------------------------------------------
# a large object through the server, with bounded memory


class LargeObjectTest(unittest.TestCase):
    SIZE = 1024 * MIB + 12345
    CHUNK = 64 * MIB

    def test_one_gib_resumable_upload_and_download(self):
        bucket = new_bucket("lg")
        uri = session(bucket, "large.bin", headers={"X-Upload-Content-Length": str(self.SIZE)})
        u = urllib.parse.urlsplit(uri)
        piece = blob(MIB, 15)
        md5 = hashlib.md5()
        started = time.time()
        offset = 0
        while offset < self.SIZE:
            n = min(self.CHUNK, self.SIZE - offset)
            final = offset + n == self.SIZE

            def gen(n=n):
                left = n
                while left:
                    d = piece[:min(left, MIB)]
                    md5.update(d)
                    left -= len(d)
                    yield d

            conn = GCS.connection(120)
            try:
                conn.request("PUT", u.path + "?" + u.query, body=gen(), headers={
                    "Content-Length": str(n),
                    "Content-Range": "bytes %d-%d/%s" % (offset, offset + n - 1, self.SIZE if final else "*")})
                resp = conn.getresponse()
                body = resp.read()
            finally:
                conn.close()
            self.assertEqual(resp.status, 200 if final else 308, body)
            offset += n
        up_s = time.time() - started
        res = json.loads(body)
        self.assertEqual(res["size"], str(self.SIZE))
        self.assertEqual(res["md5Hash"], base64.b64encode(md5.digest()).decode())
        started = time.time()
        conn = GCS.connection(120)
        try:
            conn.request("GET", object_path(bucket, "large.bin") + "?alt=media",
                         headers={"Authorization": "Bearer " + GCS.static_token})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            got = hashlib.md5()
            total = 0
            while True:
                d = resp.read(4 * MIB)
                if not d:
                    break
                got.update(d)
                total += len(d)
        finally:
            conn.close()
        down_s = time.time() - started
        self.assertEqual(total, self.SIZE)
        self.assertEqual(base64.b64encode(got.digest()).decode(), res["md5Hash"])
        self.assertEqual(resp.getheader("X-Goog-Hash").split(",")[0], "crc32c=" + res["crc32c"])
        rss = rss_kib(GCS.proc.pid)
        self.assertLess(rss, 200 * 1024, "server RSS %d KiB after a 1 GiB object" % rss)
        raw("DELETE", object_path(bucket, "large.bin"))
        sys.stderr.write("\n  1 GiB: up %.1fs (%.0f MiB/s), down %.1fs (%.0f MiB/s), server RSS %d MiB ... "
                         % (up_s, self.SIZE / MIB / up_s, down_s, self.SIZE / MIB / down_s, rss // 1024))


# --------------------------------------------------------------------------
# Google's Node.js client


class NodeClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("node"):
            raise unittest.SkipTest("node is not installed")
        if not os.path.isdir(os.path.join(GCS_DIR, "node_modules", "@google-cloud", "storage")):
            if not shutil.which("npm"):
                raise unittest.SkipTest("tests/gcs/node_modules is missing and npm is not installed")
            subprocess.run(["npm", "ci", "--prefix", GCS_DIR, "--no-audit", "--no-fund"], check=True,
                           stdout=subprocess.DEVNULL, timeout=600)

    def test_fidelity_script(self):
        bucket = new_bucket("node")
        home = tempfile.mkdtemp(prefix="gcs-node-home-")
        try:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_", "STORAGE_EMULATOR"))}
            env.update(HOME=home, GCS_STATE=os.path.join(GCS.dir, "state", "state.json"), GCS_BUCKET=bucket,
                       GCE_METADATA_HOST="127.0.0.1:%d" % GCS.port)
            started = time.time()
            r = subprocess.run(["node", os.path.join(GCS_DIR, "fidelity.mjs")], env=env, cwd=GCS_DIR,
                               capture_output=True, text=True, timeout=300)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        lines = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
        self.assertEqual(r.returncode, 0, r.stdout[-6000:] + r.stderr[-3000:] + GCS.log_tail())
        self.assertEqual(lines[-1].get("check"), "ALL", r.stdout)
        names = [x["check"] for x in lines]
        self.assertIn("metadata-server credentials (GCE_METADATA_HOST)", names)
        sys.stderr.write("\n  node: %d checks in %.1fs ... " % (len(lines) - 1, time.time() - started))


# --------------------------------------------------------------------------
# gcloud storage


GCLOUD = shutil.which("gcloud")


@unittest.skipUnless(GCLOUD, "gcloud is not installed")
class GcloudTest(unittest.TestCase):
    BIG = 200 * MIB

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="gcs-gcloud-")
        cls.big = os.path.join(cls.work, "big.bin")
        h = hashlib.md5()
        with open(cls.big, "wb") as f:
            for _ in range(cls.BIG // (8 * MIB)):
                d = os.urandom(8 * MIB)
                h.update(d)
                f.write(d)
        cls.big_md5 = h.hexdigest()
        cls.token_file = os.path.join(cls.work, "token")
        with open(cls.token_file, "w") as f:
            f.write(GCS.static_token)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def gcloud(self, config, *args, env_extra=None, token=True, timeout=300):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "GOOGLE_", "BOTO_"))}
        env.update({
            "CLOUDSDK_CONFIG": config,
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": GCS.endpoint + "/storage/v1/",
            "CLOUDSDK_CORE_PROJECT": "archie-test",
            "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
            "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
            "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
            "CLOUDSDK_METRICS_ENVIRONMENT": "archie-tests",
        })
        if token:
            env["CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"] = self.token_file
        env.update(env_extra or {})
        started = time.time()
        r = subprocess.run([GCLOUD] + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, "gcloud %s:\n%s\n%s\n%s" % (" ".join(args), r.stdout[-3000:],
                                                                      r.stderr[-3000:], GCS.log_tail()))
        return r, time.time() - started

    def md5_file(self, path):
        h = hashlib.md5()
        with open(path, "rb") as f:
            for d in iter(lambda: f.read(8 * MIB), b""):
                h.update(d)
        return h.hexdigest()

    def _copy_round_trip(self, tag, env_extra):
        bucket = new_bucket("gc")
        config = tempfile.mkdtemp(prefix="cfg-", dir=self.work)
        out = os.path.join(self.work, "out-%s.bin" % tag)
        GCS.requests_log(clear=True)
        _, up = self.gcloud(config, "storage", "cp", self.big, "gs://%s/dir/big.bin" % bucket, env_extra=env_extra)
        log_up = GCS.requests_log(clear=True)
        _, down = self.gcloud(config, "storage", "cp", "gs://%s/dir/big.bin" % bucket, out, env_extra=env_extra)
        log_down = GCS.requests_log(clear=True)
        self.assertEqual(os.path.getsize(out), self.BIG)
        self.assertEqual(self.md5_file(out), self.big_md5)
        os.unlink(out)
        status, meta = get_meta(bucket, "dir/big.bin")
        self.assertEqual(meta["size"], str(self.BIG))
        sys.stderr.write("\n  gcloud %s: up %.1fs, down %.1fs ... " % (tag, up, down))
        return log_up, log_down, meta

    def test_large_copy_with_defaults(self):
        """Defaults: parallel composite upload (components + compose) and sliced download."""
        log_up, log_down, meta = self._copy_round_trip("defaults", {})
        kinds = [r["kind"] for r in log_up]
        self.assertIn("object.compose", kinds)
        self.assertGreaterEqual(kinds.count("upload.initiate"), 2)
        self.assertEqual([r for r in log_up if r["kind"] == "object.delete" and r["status"] != 204], [])
        self.assertIn("componentCount", meta)
        ranged = [r for r in log_down if r["kind"] == "object.download" and r["status"] == 206]
        self.assertGreaterEqual(len(ranged), 2)
        self.assertTrue(all(r["path"].startswith("/download/storage/v1/") for r in ranged))

    def test_large_copy_single_stream(self):
        env = {"CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED": "False",
               "CLOUDSDK_STORAGE_SLICED_OBJECT_DOWNLOAD_THRESHOLD": "0"}
        log_up, log_down, meta = self._copy_round_trip("single-stream", env)
        init = [r for r in log_up if r["kind"] == "upload.initiate"]
        puts = [r for r in log_up if r["kind"] == "upload.chunk"]
        self.assertEqual(len(init), 1)
        self.assertEqual(init[0]["path"], "/resumable/upload/storage/v1/b/%s/o" % meta["bucket"])
        self.assertEqual(sum(r["bytes_in"] for r in puts), self.BIG)
        self.assertEqual(puts[-1]["status"], 200)
        self.assertEqual(meta["md5Hash"], base64.b64encode(bytes.fromhex(self.big_md5)).decode())
        self.assertEqual(len([r for r in log_down if r["kind"] == "object.download"]), 1)

    def test_service_account_key_through_token_endpoint(self):
        bucket = new_bucket("gsa")
        config = tempfile.mkdtemp(prefix="cfg-sa-", dir=self.work)
        small = os.path.join(self.work, "small.txt")
        with open(small, "w") as f:
            f.write("replicated by archie\n")
        GCS.requests_log(clear=True)
        self.gcloud(config, "auth", "activate-service-account", "--key-file=" + GCS.sa_key_path, token=False)
        self.gcloud(config, "storage", "cp", small, "gs://%s/sa/small.txt" % bucket, token=False)
        r, _ = self.gcloud(config, "storage", "cat", "gs://%s/sa/small.txt" % bucket, token=False)
        self.assertEqual(r.stdout, "replicated by archie\n")
        log = GCS.requests_log()
        token_calls = [x for x in log if x["kind"] == "token"]
        self.assertGreaterEqual(len(token_calls), 1)
        self.assertTrue(all(x["status"] == 200 for x in token_calls), token_calls)
        api = [x for x in log if x["path"].startswith(("/storage/", "/upload/", "/download/"))]
        self.assertTrue(api and all(x["principal"] == GCS.sa_email for x in api), api)


if __name__ == "__main__":
    unittest.main()
