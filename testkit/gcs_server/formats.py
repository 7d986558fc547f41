"""Wire formats: RFC 3339 timestamps, base64url, Cloud Storage etags, JSON state files."""

import base64
import datetime
import json
import os


def rfc3339(ts):
    dt = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def b64url_decode(s):
    if isinstance(s, str):
        s = s.encode("ascii")
    return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def object_etag(generation, metageneration):
    # Cloud Storage's JSON etags are base64 of a tiny protobuf: field 1 = generation,
    # field 2 = metageneration (e.g. "CNDXuaCH4o0DEAE=").
    return base64.b64encode(b"\x08" + varint(generation) + b"\x10" + varint(metageneration)).decode()


def bucket_etag(metageneration):
    return base64.b64encode(b"\x08" + varint(metageneration)).decode()


def write_json_atomic(path, obj, mode=0o644):
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)
