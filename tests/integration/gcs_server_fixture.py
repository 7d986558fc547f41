"""The GCS test server for the test_gcs_server_* modules, and the requests they make of it.

Each of those modules starts one server (testkit/gcs_server) for itself with

    setUpModule = fixture.start_server
    tearDownModule = fixture.stop_server

and reaches it as fixture.GCS in between. The helpers below talk to that server.
"""

import base64
import hashlib
import json
import os
import urllib.parse

from testkit.gcs_server.launcher import GcsTestServer

KIB = 1024
MIB = 1024 * KIB
Q = 256 * KIB

GCS = None      # the running GcsTestServer, between start_server() and stop_server()


def start_server():
    global GCS
    GCS = GcsTestServer()
    GCS.start()


def stop_server():
    if GCS is not None:
        GCS.close()



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
