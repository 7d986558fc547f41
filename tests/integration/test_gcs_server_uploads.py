#!/usr/bin/python3
"""The GCS test server's uploads, checked directly over HTTP.

Server: one testkit/gcs_server on 127.0.0.1 for the module (tests/integration/gcs_server_fixture.py).

- Resumable sessions, the protocol facts archie's C++ client relies on: 308 + Range, status
  queries, the 256 KiB rule, overlap and gap handling, hash checks, cancel, dropped and
  failed chunks, preconditions at initiate and at finalize.
- A 1 GiB object streamed up and down through the server with bounded server memory.

Run from the repo root with the system Python:

    /usr/bin/python3 -m unittest -v tests.integration.test_gcs_server_uploads
"""

import base64
import hashlib
import http.client
import json
import sys
import time
import unittest
import urllib.parse

from testkit.daemons import rss_kib
from tests.integration import gcs_server_fixture as fixture
from tests.integration.gcs_server_fixture import (KIB, MIB, Q, blob, crc32c_b64, download, error_of,
                                                  get_meta, initiate, md5_b64, new_bucket, object_path, put_chunk,
                                                  raw, session, simple_upload, status_query)

setUpModule = fixture.start_server
tearDownModule = fixture.stop_server


# --------------------------------------------------------------------------
# resumable protocol


class ResumableProtocolTest(unittest.TestCase):
    def setUp(self):
        self.bucket = new_bucket("rp")

    def tearDown(self):
        fixture.GCS.clear_faults()
        fixture.GCS.set_config(chunk_policy="reject")

    def test_initiate_gives_session_uri(self):
        status, hdrs, body = initiate(self.bucket, "a/b c.bin", {"contentType": "text/plain"})
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        loc = hdrs["location"]
        self.assertTrue(loc.startswith(fixture.GCS.endpoint + "/upload/storage/v1/b/%s/o?" % self.bucket), loc)
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
        fixture.GCS.set_config(chunk_policy="truncate")
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
        self.assertNotIn(uri.split("upload_id=")[1], [u["upload_id"] for u in fixture.GCS.pending_uploads()])

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
        fixture.GCS.fail_chunks(1, mode="drop", after_bytes=600 * KIB)
        with self.assertRaises((OSError, http.client.HTTPException)):
            put_chunk(uri, data[:MIB], "bytes 0-%d/*" % (MIB - 1))
        status, hdrs, _ = status_query(uri)
        self.assertEqual((status, hdrs.get("range")), (308, "bytes=0-%d" % (2 * Q - 1)))
        sess = [u for u in fixture.GCS.pending_uploads() if u["name"] == "dropped"][0]
        self.assertEqual(sess["persisted"], 2 * Q)
        # persist=none: the cut chunk leaves nothing behind.
        fixture.GCS.fail_chunks(1, mode="drop", after_bytes=900 * KIB, persist="none")
        with self.assertRaises((OSError, http.client.HTTPException)):
            put_chunk(uri, data[2 * Q:2 * Q + MIB], "bytes %d-%d/*" % (2 * Q, 2 * Q + MIB - 1))
        self.assertEqual(status_query(uri)[1].get("range"), "bytes=0-%d" % (2 * Q - 1))
        status, _, body = put_chunk(uri, data[2 * Q:], "bytes %d-%d/%d" % (2 * Q, len(data) - 1, len(data)))
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["md5Hash"], md5_b64(data))

    def test_503_chunk_then_resume(self):
        data = blob(2 * Q + 1, 8)
        uri = session(self.bucket, "flaky")
        fixture.GCS.fail_chunks(1, mode="503")
        status, _, body = put_chunk(uri, data[:Q], "bytes 0-%d/*" % (Q - 1))
        self.assertEqual(status, 503)
        self.assertEqual(error_of(body)[:2], (503, "backendError"))
        self.assertNotIn("range", status_query(uri)[1])
        # commit=True: the chunk is stored but the answer is lost as a 503.
        fixture.GCS.fail_chunks(1, mode="503", commit=True)
        self.assertEqual(put_chunk(uri, data[:Q], "bytes 0-%d/*" % (Q - 1))[0], 503)
        self.assertEqual(status_query(uri)[1].get("range"), "bytes=0-%d" % (Q - 1))
        status, _, body = put_chunk(uri, data[Q:], "bytes %d-%d/%d" % (Q, len(data) - 1, len(data)))
        self.assertEqual(status, 200, body)

    def test_chunked_transfer_encoding_and_open_ended_range(self):
        data = blob(2 * Q + 123, 9)
        uri = session(self.bucket, "chunked")
        u = urllib.parse.urlsplit(uri)
        conn = fixture.GCS.connection()
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
        found = [u for u in fixture.GCS.pending_uploads() if u["upload_id"] == uid]
        self.assertEqual(len(found), 1)
        self.assertEqual((found[0]["bucket"], found[0]["persisted"], found[0]["state"]), (self.bucket, Q, "active"))
        fixture.GCS.expire_upload(uid)
        self.assertEqual(status_query(uri)[0], 410)


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

            conn = fixture.GCS.connection(120)
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
        conn = fixture.GCS.connection(120)
        try:
            conn.request("GET", object_path(bucket, "large.bin") + "?alt=media",
                         headers={"Authorization": "Bearer " + fixture.GCS.static_token})
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
        rss = rss_kib(fixture.GCS.proc.pid)
        self.assertLess(rss, 200 * 1024, "server RSS %d KiB after a 1 GiB object" % rss)
        raw("DELETE", object_path(bucket, "large.bin"))
        sys.stderr.write("\n  1 GiB: up %.1fs (%.0f MiB/s), down %.1fs (%.0f MiB/s), server RSS %d MiB ... "
                         % (up_s, self.SIZE / MIB / up_s, down_s, self.SIZE / MIB / down_s, rss // 1024))


if __name__ == "__main__":
    unittest.main()
