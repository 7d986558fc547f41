#!/usr/bin/python3
"""The GCS test server's JSON API and authentication, checked directly over HTTP.

Server: one testkit/gcs_server on 127.0.0.1 for the module (tests/integration/gcs_server_fixture.py).

- Objects and buckets: simple and multipart uploads, metadata and fields selectors, ranged
  downloads, preconditions, listing, bucket insert/delete, injected 429/503, error JSON,
  keep-alive with unread bodies, compose.
- Auth: missing and malformed credentials, OAuth2 JWT-bearer tokens and their claim checks,
  expiry, scopes, per-bucket permissions, the metadata server, self-signed JWTs.

Run from the repo root with the system Python:

    /usr/bin/python3 -m unittest -v tests.integration.test_gcs_server_api
"""

import json
import os
import subprocess
import time
import unittest
import urllib.parse

from testkit.gcs_server.jwt import make_jwt
from tests.integration import gcs_server_fixture as fixture
from tests.integration.gcs_server_fixture import (MIB, blob, crc32c_b64, download, error_of, get_meta,
                                                  md5_b64, new_bucket, object_path, raw, simple_upload)

setUpModule = fixture.start_server
tearDownModule = fixture.stop_server


# --------------------------------------------------------------------------
# objects, buckets, errors


class ObjectApiTest(unittest.TestCase):
    def setUp(self):
        self.bucket = new_bucket("oa")

    def tearDown(self):
        fixture.GCS.clear_faults()

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

    def test_an_object_keeps_its_storage_class_and_kms_key_and_refuses_an_unknown_class(self):
        key = "projects/p/locations/global/keyRings/r/cryptoKeys/k"
        status, _, body = self._multipart({"name": "cold", "storageClass": "nearline"}, b"x" * 10,
                                          query={"kmsKeyName": key})
        self.assertEqual(status, 200, body)
        res = json.loads(body)
        self.assertEqual(res["storageClass"], "NEARLINE")
        self.assertEqual(res["kmsKeyName"], key + "/cryptoKeyVersions/1")
        status, m = get_meta(self.bucket, "cold")
        self.assertEqual((m["storageClass"], m["kmsKeyName"]), ("NEARLINE", key + "/cryptoKeyVersions/1"))
        status, _, body = self._multipart({"name": "plain"}, b"y")
        self.assertEqual(json.loads(body)["storageClass"], "STANDARD")  # the bucket's default
        self.assertNotIn("kmsKeyName", json.loads(body))
        status, _, body = self._multipart({"name": "odd", "storageClass": "FROZEN"}, b"z")
        self.assertEqual(status, 400, body)

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
        fixture.GCS.fail_next(1, status=429, kind="object.get")
        status, hdrs, body = raw("GET", "/storage/v1/b/%s" % self.bucket)
        self.assertEqual(status, 200)            # not an object.get
        status, doc = get_meta(self.bucket, "anything")
        self.assertEqual(status, 429)
        self.assertEqual(doc["error"]["errors"][0]["reason"], "rateLimitExceeded")
        fixture.GCS.fail_next(2, status=503, retry_after=1)
        status, hdrs, body = raw("GET", "/storage/v1/b/%s/o" % self.bucket)
        self.assertEqual((status, hdrs.get("retry-after")), (503, "1"))
        self.assertEqual(error_of(body)[1], "backendError")
        self.assertEqual(raw("GET", "/storage/v1/b/%s" % self.bucket)[0], 503)
        self.assertEqual(raw("GET", "/storage/v1/b/%s" % self.bucket)[0], 200)

    def test_keep_alive_survives_errors_with_unread_bodies(self):
        conn = fixture.GCS.connection()
        try:
            auth = {"Authorization": "Bearer " + fixture.GCS.static_token}
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
        fixture.GCS.set_token_lifetime(3600)

    def test_missing_and_malformed_authorization(self):
        status, _, body = raw("GET", self.bpath, token=None)
        self.assertEqual(status, 401)
        code, reason, msg = error_of(body)
        self.assertEqual(reason, "required")
        self.assertIn("Anonymous caller does not have storage.buckets.get access", msg)
        status, hdrs, body = raw("GET", self.bpath, headers={"Authorization": "Basic Zm9v"}, token=None)
        self.assertEqual(error_of(body), (401, "authError", "Invalid Credentials"))

    def test_jwt_bearer_flow(self):
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion())
        self.assertEqual(status, 200, doc)
        self.assertEqual(set(doc), {"access_token", "expires_in", "token_type"})
        self.assertEqual((doc["token_type"], doc["expires_in"]), ("Bearer", 3600))
        self.assertEqual(raw("GET", self.bpath, token=doc["access_token"])[0], 200)
        # The audience may be the key's token_uri or Google's token URLs.
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion(aud="https://oauth2.googleapis.com/token"))
        self.assertEqual(status, 200, doc)

    def test_jwt_with_wrong_signature_is_rejected(self):
        other = os.path.join(fixture.GCS.dir, "other-key.pem")
        if not os.path.exists(other):
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                            "-out", other], check=True, capture_output=True)
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion(key_pem=other))
        self.assertEqual((status, doc), (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}))
        # The same forged JWT used directly as a self-signed bearer token.
        sa = fixture.GCS.sa_email
        forged = make_jwt({"iss": sa, "sub": sa, "aud": "https://storage.googleapis.com/",
                           "iat": int(time.time()), "exp": int(time.time()) + 600}, other)
        self.assertEqual(raw("GET", self.bpath, token=forged)[0], 401)

    def test_jwt_claim_checks(self):
        now = int(time.time())
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion(iat=now - 7200, lifetime=3600))
        self.assertEqual((status, doc["error"]), (400, "invalid_grant"))
        self.assertIn("Token must be a short-lived token", doc["error_description"])
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion(lifetime=7200))
        self.assertEqual((status, doc["error"]), (400, "invalid_grant"))
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion(scope=""))
        self.assertEqual((status, doc["error"]), (400, "invalid_scope"))
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion(aud="https://example.com/token"))
        self.assertEqual((status, doc["error"]), (400, "invalid_grant"))
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion(iss="someone@else.iam.gserviceaccount.com"))
        self.assertEqual((status, doc["error"]), (400, "invalid_grant"))
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion(), grant_type="client_credentials")
        self.assertEqual((status, doc["error"]), (400, "unsupported_grant_type"))

    def test_expired_token_is_401(self):
        fixture.GCS.set_token_lifetime(1)
        status, doc = fixture.GCS.token_request(fixture.GCS.make_assertion())
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
        fixture.GCS.set_token_lifetime(3600)
        self.assertEqual(raw("GET", self.bpath, token=fixture.GCS.fetch_token())[0], 200)
        tok = fixture.GCS.fetch_token()
        fixture.GCS.expire_tokens(tok)
        self.assertEqual(raw("GET", self.bpath, token=tok)[0], 401)

    def test_scopes(self):
        ro = fixture.GCS.fetch_token(scope="https://www.googleapis.com/auth/devstorage.read_only")
        self.assertEqual(raw("GET", self.bpath, token=ro)[0], 200)
        status, _, body = raw("POST", "/upload/storage/v1/b/%s/o?uploadType=media&name=x" % self.bucket, b"x",
                              token=ro)
        self.assertEqual(error_of(body), (403, "forbidden", "Provided scope(s) are not authorized"))

    def test_bucket_marked_read_only_for_a_token(self):
        tok = fixture.GCS.add_token(principal="replicator@archie.test")
        simple_upload(self.bucket, "seed", b"seed")
        fixture.GCS.set_permission(self.bucket, "readonly", token=tok)
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
        fixture.GCS.set_permission(self.bucket, "none", token=tok)
        self.assertEqual(raw("GET", self.bpath, token=tok)[0], 403)
        fixture.GCS.set_permission(self.bucket, "full", token=tok)
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
        fixture.GCS.requests_log(clear=True)
        self.assertEqual(raw("GET", self.bpath, token=doc["access_token"])[0], 200)
        self.assertEqual(fixture.GCS.requests_log()[-1]["principal"], fixture.GCS.state["metadata_email"])
        status, _, body = raw("GET", "/computeMetadata/v1/project/project-id", headers={"Metadata-Flavor": "Google"},
                              token=None)
        self.assertEqual((status, body), (200, b"archie-test"))

    def test_self_signed_jwt_bearer(self):
        now = int(time.time())
        sa, key = fixture.GCS.sa_email, fixture.GCS.sa_private_key_pem
        tok = make_jwt({"iss": sa, "sub": sa, "aud": "https://storage.googleapis.com/",
                        "iat": now, "exp": now + 600}, key)
        self.assertEqual(raw("GET", self.bpath, token=tok)[0], 200)
        old = make_jwt({"iss": sa, "sub": sa, "aud": "https://storage.googleapis.com/",
                        "iat": now - 4000, "exp": now - 400}, key)
        self.assertEqual(raw("GET", self.bpath, token=old)[0], 401)


if __name__ == "__main__":
    unittest.main()
