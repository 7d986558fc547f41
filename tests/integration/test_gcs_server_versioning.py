#!/usr/bin/python3
"""The GCS test server's object versioning, checked directly over HTTP.

Server: one testkit/gcs_server on 127.0.0.1 for the module (tests/integration/gcs_server_fixture.py).

- The bucket's versioning.enabled: set at insert, by PATCH (which bumps the metageneration)
  and through the control API; absent from a bucket that never set it.
- With versioning on, an overwrite or a plain DELETE keeps the live object as a noncurrent
  generation with timeDeleted; versions=true lists every generation by name, then generation,
  across pages; ?generation= reads, downloads, patches and deletes (for good) one generation;
  compose takes a noncurrent source generation; data files stay until deleted for good.
- Without versioning nothing of that happens (the behaviour before versioning existed).

Run from the repo root with the system Python:

    /usr/bin/python3 -m unittest -v tests.integration.test_gcs_server_versioning
"""

import datetime
import json
import os
import unittest
import urllib.parse

from tests.integration import gcs_server_fixture as fixture
from tests.integration.gcs_server_fixture import (download, error_of, get_meta, new_bucket, object_path, raw,
                                                  simple_upload)

setUpModule = fixture.start_server
tearDownModule = fixture.stop_server

JSON = {"Content-Type": "application/json"}


def versioned_bucket(prefix="ver"):
    name = new_bucket(prefix)
    status, _, body = patch_bucket(name, {"versioning": {"enabled": True}})
    assert status == 200, body
    return name


def patch_bucket(bucket, doc, query=""):
    return raw("PATCH", "/storage/v1/b/%s%s" % (bucket, query), json.dumps(doc).encode(), JSON)


def upload(bucket, name, data, query=None):
    """Uploads and returns the new generation (a string, as the resource has it)."""
    status, _, body = simple_upload(bucket, name, data, query=query)
    assert status == 200, body
    return json.loads(body)["generation"]


def at(generation):
    return "?generation=%s" % generation


def list_all(bucket, query):
    """Every page of a listing: ([(name, generation, timeDeleted or None)], prefixes, pages)."""
    items, prefixes, token, pages = [], [], None, 0
    while True:
        q = query + ("&pageToken=" + urllib.parse.quote(token) if token else "")
        status, _, body = raw("GET", "/storage/v1/b/%s/o?%s" % (bucket, q))
        assert status == 200, body
        doc = json.loads(body)
        pages += 1
        items += [(i["name"], i["generation"], i.get("timeDeleted")) for i in doc.get("items", [])]
        prefixes += doc.get("prefixes", [])
        token = doc.get("nextPageToken")
        if not token:
            return items, prefixes, pages


def data_files():
    """How many object and upload data files the server holds on disk."""
    root = os.path.join(fixture.GCS.dir, "data")
    return sum(len(files) for sub in ("blobs", "uploads", "tmp") for _, _, files in os.walk(os.path.join(root, sub)))


def is_rfc3339(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ") is not None


class BucketVersioningTest(unittest.TestCase):
    def test_set_at_insert(self):
        name = "vins-%d" % os.getpid()
        status, _, body = raw("POST", "/storage/v1/b?project=archie-test",
                              json.dumps({"name": name, "versioning": {"enabled": True}}).encode(), JSON)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["versioning"], {"enabled": True})
        status, _, body = raw("GET", "/storage/v1/b/" + name)
        self.assertEqual(json.loads(body)["versioning"], {"enabled": True})
        self.assertEqual(raw("DELETE", "/storage/v1/b/" + name)[0], 204)

    def test_set_by_patch_which_bumps_the_metageneration(self):
        bucket = new_bucket("vpatch")
        doc = json.loads(raw("GET", "/storage/v1/b/" + bucket)[2])
        self.assertNotIn("versioning", doc)                 # never set: not shown
        self.assertEqual(doc["metageneration"], "1")
        status, _, body = patch_bucket(bucket, {"versioning": {"enabled": True}})
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual((doc["versioning"], doc["metageneration"]), ({"enabled": True}, "2"))
        self.assertEqual(json.loads(raw("GET", "/storage/v1/b/" + bucket)[2])["versioning"], {"enabled": True})
        self.assertEqual(patch_bucket(bucket, {"versioning": {"enabled": False}}, "?ifMetagenerationMatch=1")[0], 412)
        self.assertEqual(error_of(patch_bucket(bucket, {"versioning": {"enabled": "yes"}})[2])[:2], (400, "invalid"))
        status, _, body = patch_bucket(bucket, {"versioning": {"enabled": False}}, "?ifMetagenerationMatch=2")
        doc = json.loads(body)
        self.assertEqual((doc["versioning"], doc["metageneration"]), ({"enabled": False}, "3"))
        # A PATCH naming no versioning leaves it as it is (and still bumps the metageneration).
        doc = json.loads(patch_bucket(bucket, {"labels": {"a": "b"}})[2])
        self.assertEqual((doc["versioning"], doc["metageneration"]), ({"enabled": False}, "4"))
        self.assertEqual(patch_bucket("no-such-bucket-here", {"versioning": {"enabled": True}})[0], 404)

    def test_set_through_the_control_api(self):
        name = "vctl-%d" % os.getpid()
        self.assertEqual(fixture.GCS.create_bucket(name, versioning=True)["versioning"], {"enabled": True})
        self.assertEqual(json.loads(raw("GET", "/storage/v1/b/" + name)[2])["versioning"], {"enabled": True})


class VersionedObjectsTest(unittest.TestCase):
    def setUp(self):
        self.bucket = versioned_bucket()

    def test_overwrite_keeps_the_old_generation_noncurrent_with_time_deleted(self):
        g1 = upload(self.bucket, "o", b"first")
        g2 = upload(self.bucket, "o", b"second!")
        self.assertGreater(int(g2), int(g1))
        status, live = get_meta(self.bucket, "o")
        self.assertEqual((live["generation"], live["size"]), (g2, "7"))
        self.assertNotIn("timeDeleted", live)
        status, old = get_meta(self.bucket, "o", at(g1))
        self.assertEqual(status, 200, old)
        self.assertEqual((old["generation"], old["size"], old["metageneration"]), (g1, "5", "1"))
        self.assertTrue(is_rfc3339(old["timeDeleted"]), old)
        self.assertEqual(old["id"], "%s/o/%s" % (self.bucket, g1))
        # Its bytes: alt=media, a range, and the mediaLink (/download/...?generation=) form.
        status, hdrs, body = raw("GET", object_path(self.bucket, "o") + at(g1) + "&alt=media")
        self.assertEqual((status, body, hdrs["x-goog-generation"]), (200, b"first", g1))
        status, hdrs, body = raw("GET", object_path(self.bucket, "o") + at(g1) + "&alt=media",
                                 headers={"Range": "bytes=1-3"})
        self.assertEqual((status, body, hdrs["content-range"]), (206, b"irs", "bytes 1-3/5"))
        u = urllib.parse.urlsplit(old["mediaLink"])
        self.assertEqual(raw("GET", u.path + "?" + u.query)[2], b"first")
        self.assertEqual(download(self.bucket, "o")[2], b"second!")      # without ?generation=: the live one
        # Only the live generation is listed without versions=true.
        self.assertEqual(list_all(self.bucket, "")[0], [("o", g2, None)])

    def test_delete_keeps_the_live_object_as_a_noncurrent_generation(self):
        g1 = upload(self.bucket, "d", b"doomed")
        self.assertEqual(raw("DELETE", object_path(self.bucket, "d"))[0], 204)
        self.assertEqual(get_meta(self.bucket, "d")[0], 404)
        self.assertEqual(download(self.bucket, "d")[0], 404)
        self.assertEqual(raw("DELETE", object_path(self.bucket, "d"))[0], 404)    # no live object left
        status, old = get_meta(self.bucket, "d", at(g1))
        self.assertEqual((status, old["generation"]), (200, g1))
        self.assertTrue(is_rfc3339(old["timeDeleted"]))
        self.assertEqual(list_all(self.bucket, "")[0], [])
        self.assertEqual([i[:2] for i in list_all(self.bucket, "versions=true")[0]], [("d", g1)])
        # ifGenerationMatch=0 means "no live object", which holds with only a noncurrent one.
        g2 = upload(self.bucket, "d", b"again", query={"ifGenerationMatch": "0"})
        self.assertEqual(simple_upload(self.bucket, "d", b"x", query={"ifGenerationMatch": "0"})[0], 412)
        self.assertEqual(simple_upload(self.bucket, "d", b"x", query={"ifGenerationMatch": g1})[0], 412)
        self.assertEqual([i[:2] for i in list_all(self.bucket, "versions=true")[0]], [("d", g1), ("d", g2)])
        # Noncurrent generations keep a bucket from being deleted.
        self.assertEqual(raw("DELETE", object_path(self.bucket, "d") + at(g2))[0], 204)
        self.assertEqual(error_of(raw("DELETE", "/storage/v1/b/" + self.bucket)[2])[:2], (409, "conflict"))
        self.assertEqual(raw("DELETE", object_path(self.bucket, "d") + at(g1))[0], 204)
        self.assertEqual(raw("DELETE", "/storage/v1/b/" + self.bucket)[0], 204)

    def test_versions_listing_by_name_then_generation_across_pages(self):
        gens = {}
        # Interleaved writes: every name gets generations in between the others'.
        for name in ("b", "a", "c/x", "a", "b", "c/y", "a", "c/x"):
            gens.setdefault(name, []).append(upload(self.bucket, name, name.encode()))
        self.assertEqual(raw("DELETE", object_path(self.bucket, "b"))[0], 204)   # "b": noncurrent only
        want = [(n, g) for n in ("a", "b", "c/x", "c/y") for g in gens[n]]
        self.assertEqual(want, sorted(want, key=lambda e: (e[0], int(e[1]))))
        items, _, pages = list_all(self.bucket, "versions=true")
        self.assertEqual([i[:2] for i in items], want)
        self.assertEqual(pages, 1)
        live = {("a", gens["a"][-1]), ("c/x", gens["c/x"][-1]), ("c/y", gens["c/y"][-1])}
        self.assertEqual({i[:2] for i in items if i[2] is None}, live)    # timeDeleted on all the others
        # Pages of 2: "a"'s three generations span two pages, none is lost or repeated.
        items, _, pages = list_all(self.bucket, "versions=true&maxResults=2")
        self.assertEqual(([i[:2] for i in items], pages), (want, 4))
        items, _, pages = list_all(self.bucket, "versions=true&maxResults=1")
        self.assertEqual(([i[:2] for i in items], pages), (want, len(want)))
        # prefix, delimiter and fields= work as without versions.
        items, _, _ = list_all(self.bucket, "versions=true&prefix=c/&maxResults=2")
        self.assertEqual([i[:2] for i in items], want[-3:])
        items, prefixes, _ = list_all(self.bucket, "versions=true&delimiter=/&maxResults=2")
        self.assertEqual(([i[:2] for i in items], prefixes), (want[:5], ["c/"]))
        items, prefixes, _ = list_all(self.bucket, "delimiter=/")
        self.assertEqual(([i[:2] for i in items], prefixes), ([("a", gens["a"][-1])], ["c/"]))
        status, _, body = raw("GET", "/storage/v1/b/%s/o?versions=true&prefix=b&fields=items(name,generation)"
                              % self.bucket)
        self.assertEqual(json.loads(body), {"items": [{"name": "b", "generation": g} for g in gens["b"]]})
        # Without versions=true: the live objects only, and a name overwritten between pages is
        # not listed again.
        status, _, body = raw("GET", "/storage/v1/b/%s/o?maxResults=1" % self.bucket)
        doc = json.loads(body)
        self.assertEqual([i["name"] for i in doc["items"]], ["a"])
        upload(self.bucket, "a", b"newer")
        items, _, _ = list_all(self.bucket, "pageToken=" + urllib.parse.quote(doc["nextPageToken"]))
        self.assertEqual([i[0] for i in items], ["c/x", "c/y"])

    def test_get_patch_and_delete_one_generation(self):
        g1 = upload(self.bucket, "g", b"one")
        g2 = upload(self.bucket, "g", b"two")
        self.assertEqual(get_meta(self.bucket, "g", at(int(g2) + 1))[0], 404)     # no such generation
        self.assertEqual(error_of(raw("GET", object_path(self.bucket, "g") + at("x"))[2])[:2], (400, "invalid"))
        # PATCH ?generation= changes that generation's metadata and metageneration only.
        status, _, body = raw("PATCH", object_path(self.bucket, "g") + at(g1),
                              json.dumps({"metadata": {"note": "old"}}).encode(), JSON)
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual((doc["generation"], doc["metageneration"], doc["metadata"]), (g1, "2", {"note": "old"}))
        self.assertIn("timeDeleted", doc)
        self.assertEqual(get_meta(self.bucket, "g", at(g1))[1]["metageneration"], "2")
        live = get_meta(self.bucket, "g")[1]
        self.assertEqual((live["generation"], live["metageneration"]), (g2, "1"))
        self.assertNotIn("metadata", live)
        # Preconditions hold against the generation named.
        self.assertEqual(raw("PATCH", object_path(self.bucket, "g") + at(g1) + "&ifMetagenerationMatch=1",
                             b"{}", JSON)[0], 412)
        self.assertEqual(raw("GET", object_path(self.bucket, "g") + at(g1) + "&ifGenerationMatch=" + g1)[0], 200)
        self.assertEqual(raw("DELETE", object_path(self.bucket, "g") + at(g1) + "&ifMetagenerationMatch=1")[0], 412)
        # DELETE ?generation= of a noncurrent generation removes it for good.
        self.assertEqual(raw("DELETE", object_path(self.bucket, "g") + at(g1))[0], 204)
        self.assertEqual(get_meta(self.bucket, "g", at(g1))[0], 404)
        self.assertEqual(raw("DELETE", object_path(self.bucket, "g") + at(g1))[0], 404)
        self.assertEqual([i[:2] for i in list_all(self.bucket, "versions=true")[0]], [("g", g2)])
        # ... and of the live generation too: no noncurrent copy is kept.
        self.assertEqual(raw("DELETE", object_path(self.bucket, "g") + at(g2))[0], 204)
        self.assertEqual(get_meta(self.bucket, "g")[0], 404)
        self.assertEqual(list_all(self.bucket, "versions=true")[0], [])

    def test_compose_from_a_noncurrent_generation(self):
        g1 = upload(self.bucket, "part", b"old-")
        upload(self.bucket, "part", b"new")
        status, _, body = raw("POST", object_path(self.bucket, "whole") + "/compose",
                              json.dumps({"sourceObjects": [{"name": "part", "generation": g1},
                                                            {"name": "part"}]}).encode(), JSON)
        self.assertEqual(status, 200, body)
        self.assertEqual(download(self.bucket, "whole")[2], b"old-new")
        status, _, body = raw("POST", object_path(self.bucket, "whole") + "/compose",
                              json.dumps({"sourceObjects": [{"name": "part", "generation": "1"}]}).encode(), JSON)
        self.assertEqual(status, 404, body)

    def test_data_files_stay_until_deleted_for_good_and_reset_clears_them(self):
        before = data_files()
        g1 = upload(self.bucket, "f", b"1")
        upload(self.bucket, "f", b"2")
        self.assertEqual(raw("DELETE", object_path(self.bucket, "f"))[0], 204)
        self.assertEqual(data_files(), before + 2)       # both generations, noncurrent now
        self.assertEqual(raw("DELETE", object_path(self.bucket, "f") + at(g1))[0], 204)
        self.assertEqual(data_files(), before + 1)
        fixture.GCS.reset()
        self.assertEqual(data_files(), 0)

    def test_turning_versioning_off_keeps_noncurrent_generations_but_makes_no_more(self):
        g1 = upload(self.bucket, "t", b"1")
        g2 = upload(self.bucket, "t", b"2")
        self.assertEqual(patch_bucket(self.bucket, {"versioning": {"enabled": False}})[0], 200)
        g3 = upload(self.bucket, "t", b"3")
        self.assertEqual([i[:2] for i in list_all(self.bucket, "versions=true")[0]], [("t", g1), ("t", g3)])
        self.assertEqual(get_meta(self.bucket, "t", at(g2))[0], 404)
        self.assertEqual(raw("DELETE", object_path(self.bucket, "t"))[0], 204)
        self.assertEqual([i[:2] for i in list_all(self.bucket, "versions=true")[0]], [("t", g1)])


class UnversionedBucketTest(unittest.TestCase):
    def setUp(self):
        self.bucket = new_bucket("unv")

    def test_overwrite_and_delete_discard_the_old_generation(self):
        self.assertNotIn("versioning", json.loads(raw("GET", "/storage/v1/b/" + self.bucket)[2]))
        before = data_files()
        g1 = upload(self.bucket, "u", b"1")
        g2 = upload(self.bucket, "u", b"2")
        self.assertEqual(data_files(), before + 1)
        self.assertEqual(get_meta(self.bucket, "u", at(g1))[0], 404)
        self.assertEqual(get_meta(self.bucket, "u", at(g2))[0], 200)
        self.assertNotIn("timeDeleted", get_meta(self.bucket, "u")[1])
        self.assertEqual(list_all(self.bucket, "versions=true")[0], [("u", g2, None)])
        self.assertEqual(raw("DELETE", object_path(self.bucket, "u"))[0], 204)
        self.assertEqual(data_files(), before)
        self.assertEqual(list_all(self.bucket, "versions=true")[0], [])
        self.assertEqual(get_meta(self.bucket, "u", at(g2))[0], 404)
        self.assertEqual(raw("DELETE", "/storage/v1/b/" + self.bucket)[0], 204)


if __name__ == "__main__":
    unittest.main()
