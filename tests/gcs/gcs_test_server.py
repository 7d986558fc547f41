#!/usr/bin/python3
"""A Google Cloud Storage JSON API test server for archie's GCS client tests.

Standard library only (Debian's /usr/bin/python3); object data lives in files under
--data-dir and is streamed, never held whole in memory, so objects of several GiB work.
Checked against Google's own clients by tests/integration/test_gcs_server.py
(@google-cloud/storage for Node.js via tests/gcs/fidelity.mjs, and gcloud storage).

Endpoints (all on 127.0.0.1):

  JSON API     GET/POST /storage/v1/b (list needs ?project=, insert needs ?project= and {"name"})
               GET/DELETE /storage/v1/b/{bucket}
               GET /storage/v1/b/{bucket}/o   prefix, delimiter, pageToken, maxResults (items and
                   prefixes together, <= 1000), startOffset, endOffset, includeTrailingDelimiter
               GET/PATCH/DELETE /storage/v1/b/{bucket}/o/{object}; GET ?alt=media downloads
                   (Range: bytes=a-b | a- | -n -> 206 + Content-Range; past the end -> 416)
               POST /storage/v1/b/{bucket}/o/{object}/compose
               GET /download/storage/v1/b/{bucket}/o/{object}?alt=media (the mediaLink form)
               Preconditions: ifGenerationMatch, ifGenerationNotMatch, ifMetagenerationMatch,
                   ifMetagenerationNotMatch (412 conditionNotMet; 304 for a failed *NotMatch on GET)
               fields= partial responses (e.g. items(name,size),nextPageToken)
  Uploads      POST /upload/storage/v1/b/{bucket}/o?uploadType=media|multipart|resumable
               (/resumable/upload/storage/v1/... too: the discovery document's resumable path)
               PUT/DELETE on the resumable session URI (...&upload_id=ID); needs no credentials
  OAuth2       POST /token  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
               (RS256 checked against the service-account key; iss, aud, iat/exp, scope);
               a service account's self-signed JWT is also accepted directly as a bearer token
  Metadata     GET /computeMetadata/v1/instance/service-accounts/default/token (and email,
               project/project-id, universe/universe-domain, ...) with Metadata-Flavor: Google
  Control      /_test/... (test only, no auth), JSON in and out:
               GET  health | requests[?clear=1] | uploads[?all=1] | faults | buckets
               POST reset | buckets {"name"} | token-lifetime {"seconds"} | expire-tokens {"token"?}
                    tokens {"token"?, "principal"?, "scopes"?, "expires_in"?}
                    permissions {"bucket", "token"|"principal", "access": readonly|none|full|objects}
                                (objects: roles/storage.objectAdmin, every storage.objects.*
                                permission and no storage.buckets.*)
                    fail-chunks {"count", "mode": "drop"|"503"|code, "after_bytes", "persist":
                                 "aligned"|"none", "commit"}
                    fail-next {"count", "status", "kind"?, "bucket"?, "name_regex"?, "retry_after"?}
                    faults {rule} (generic: kind, count, action status|drop|delay, status,
                            after_bytes, delay, commit, persist, bucket, name_regex)
                    uploads/expire {"upload_id"} | config {"chunk_policy": reject|truncate}
               DELETE faults | requests
               Fault kinds: bucket.get|list|insert|delete, object.get|download|list|delete|patch|
               compose, upload.media|multipart|initiate|chunk|status|cancel, token,
               metadata.token; "*" is every storage call ("upload.*" a family).

Usage:
  /usr/bin/python3 tests/gcs/gcs_test_server.py --port 0 --data-dir DIR [--state FILE]

The state file (JSON) names the endpoint, the generated service-account key (whose
token_uri is this server's /token) and the static bearer token. SIGTERM stops the server.
"""

import argparse
import base64
import bisect
import collections
import ctypes
import datetime
import email.utils
import hashlib
import hmac
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

KIB = 1024
MIB = 1024 * KIB
QUANTUM = 256 * KIB            # resumable chunk granularity (262144 bytes)
IO_BLOCK = 1 * MIB             # read/write/hash unit
DRAIN_LIMIT = 8 * MIB          # unread request bodies up to this size are drained, else the connection is closed
JSON_BODY_LIMIT = 16 * MIB
LIST_MAX = 1000
MAX_COMPOSE_SOURCES = 32

FULL_SCOPES = {
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/devstorage.full_control",
    "https://www.googleapis.com/auth/devstorage.read_write",
}
READ_SCOPES = FULL_SCOPES | {
    "https://www.googleapis.com/auth/devstorage.read_only",
    "https://www.googleapis.com/auth/cloud-platform.read-only",
}
WRITE_PERMISSIONS = {
    "storage.objects.create", "storage.objects.delete", "storage.objects.update",
    "storage.buckets.create", "storage.buckets.delete", "storage.buckets.update",
}
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCES = {
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
}
SELF_SIGNED_AUDIENCES = {
    "https://storage.googleapis.com/", "https://storage.googleapis.com",
    "https://www.googleapis.com/", "https://www.googleapis.com",
}
# DER prefix of DigestInfo(SHA-256) in an EMSA-PKCS1-v1_5 encoded message (RFC 8017, 9.2).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
CLOCK_SKEW = 300


# ----------------------------------------------------------------------------------------
# CRC32C (Castagnoli). The fast path calls ext2fs_crc32c_le from libext2fs (e2fsprogs) via
# ctypes; it is checked against the standard check value before use. Without it a
# table-driven, slicing-by-8 pure-Python implementation is used (tens of MB/s).

_CRC_POLY = 0x82F63B78


def _make_tables():
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _CRC_POLY if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tables


_TABLES = _make_tables()


def _crc_update_python(state, data):
    t0, t1, t2, t3, t4, t5, t6, t7 = _TABLES
    mv = memoryview(data)
    n8 = len(mv) & ~7
    crc = state
    for lo, hi in struct.iter_unpack("<II", mv[:n8]):
        crc ^= lo
        crc = (t7[crc & 0xFF] ^ t6[(crc >> 8) & 0xFF] ^ t5[(crc >> 16) & 0xFF] ^ t4[crc >> 24]
               ^ t3[hi & 0xFF] ^ t2[(hi >> 8) & 0xFF] ^ t1[(hi >> 16) & 0xFF] ^ t0[hi >> 24])
    for b in mv[n8:]:
        crc = (crc >> 8) ^ t0[(crc ^ b) & 0xFF]
    return crc


def _load_native_crc():
    for name in ("libext2fs.so.2",):
        try:
            lib = ctypes.CDLL(name)
            fn = lib.ext2fs_crc32c_le
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_uint32
        fn.argtypes = [ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t]

        def update(state, data, _fn=fn):
            if not isinstance(data, bytes):
                data = bytes(data)
            return _fn(state, data, len(data))

        if update(0xFFFFFFFF, b"123456789") ^ 0xFFFFFFFF == 0xE3069283:
            return update, "ext2fs_crc32c_le (libext2fs, via ctypes)"
    return None, None


_crc_update, CRC32C_BACKEND = _load_native_crc()
if _crc_update is None:
    _crc_update, CRC32C_BACKEND = _crc_update_python, "pure Python slicing-by-8"


class Crc32c:
    """Incremental CRC32C; b64() is Cloud Storage's form (base64 of the big-endian value)."""

    __slots__ = ("state",)

    def __init__(self, state=0xFFFFFFFF):
        self.state = state

    def update(self, data):
        if data:
            self.state = _crc_update(self.state, data)

    def copy(self):
        return Crc32c(self.state)

    @property
    def value(self):
        return self.state ^ 0xFFFFFFFF

    def b64(self):
        return base64.b64encode(self.value.to_bytes(4, "big")).decode()


def crc32c_value(data):
    c = Crc32c()
    c.update(data)
    return c.value


# ----------------------------------------------------------------------------------------
# small helpers


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


class ApiError(Exception):
    """An error answered in the JSON API's format."""

    def __init__(self, status, reason, message, location=None, location_type=None, headers=None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.location = location
        self.location_type = location_type
        self.headers = list(headers or [])

    def body(self):
        err = {"message": self.message, "domain": "global", "reason": self.reason}
        if self.location_type:
            err["locationType"] = self.location_type
        if self.location:
            err["location"] = self.location
        return {"error": {"code": self.status, "message": self.message, "errors": [err]}}


class OAuthError(Exception):
    """An error answered in the OAuth2 token endpoint's format."""

    def __init__(self, status, error, description):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class ClientGone(Exception):
    """The client went away (EOF or timeout) while we were reading its request body."""


class ConnectionDropped(Exception):
    """We dropped the connection on purpose (fault injection)."""


def bad_request(message, reason="invalid"):
    return ApiError(400, reason, message)


def not_found_object(bucket, name):
    return ApiError(404, "notFound", "No such object: %s/%s" % (bucket, name))


def not_found_bucket():
    return ApiError(404, "notFound", "The specified bucket does not exist.")


def precondition_failed(location="If-Match"):
    return ApiError(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.",
                    location=location, location_type="header")


def invalid_credentials():
    return ApiError(401, "authError", "Invalid Credentials", location="Authorization", location_type="header",
                    headers=[("WWW-Authenticate", 'Bearer realm="https://accounts.google.com/"')])


def parse_fields(spec):
    """Parses a `fields` partial-response selector into a tree {name: subtree-or-None}."""
    pos = 0

    def parse_list():
        nonlocal pos
        tree = {}
        while True:
            m = re.compile(r"[A-Za-z0-9_*]+").match(spec, pos)
            if not m:
                raise ValueError("bad fields selector")
            name = m.group(0)
            pos = m.end()
            sub = None
            if pos < len(spec) and spec[pos] == "/":
                pos += 1
                sub = parse_path()
            elif pos < len(spec) and spec[pos] == "(":
                pos += 1
                sub = parse_list()
                if pos >= len(spec) or spec[pos] != ")":
                    raise ValueError("bad fields selector")
                pos += 1
            if name in tree and tree[name] is not None and sub is not None:
                tree[name].update(sub)
            elif name in tree and (tree[name] is None or sub is None):
                tree[name] = None
            else:
                tree[name] = sub
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
                continue
            return tree

    def parse_path():
        nonlocal pos
        m = re.compile(r"[A-Za-z0-9_*]+").match(spec, pos)
        if not m:
            raise ValueError("bad fields selector")
        name = m.group(0)
        pos = m.end()
        if pos < len(spec) and spec[pos] == "/":
            pos += 1
            return {name: parse_path()}
        if pos < len(spec) and spec[pos] == "(":
            pos += 1
            sub = parse_list()
            if pos >= len(spec) or spec[pos] != ")":
                raise ValueError("bad fields selector")
            pos += 1
            return {name: sub}
        return {name: None}

    spec = spec.replace(" ", "")
    tree = parse_list()
    if pos != len(spec):
        raise ValueError("bad fields selector")
    return tree


def apply_fields(value, tree):
    if tree is None:
        return value
    if isinstance(value, list):
        return [apply_fields(v, tree) for v in value]
    if not isinstance(value, dict):
        return value
    if "*" in tree:
        return value
    out = {}
    for k, sub in tree.items():
        if k in value:
            out[k] = apply_fields(value[k], sub)
    return out


# ----------------------------------------------------------------------------------------
# RSA / JWT


class RsaPublicKey:
    def __init__(self, n, e):
        self.n = n
        self.e = e
        self.size = (n.bit_length() + 7) // 8

    def verify_rs256(self, message, signature):
        """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017, 8.2.2)."""
        if len(signature) != self.size:
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return False
        em = pow(s, self.e, self.n).to_bytes(self.size, "big")
        t = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        if self.size < len(t) + 11:
            return False
        expected = b"\x00\x01" + b"\xff" * (self.size - len(t) - 3) + b"\x00" + t
        return hmac.compare_digest(em, expected)

    @classmethod
    def from_private_pem(cls, pem_path):
        mod = subprocess.run(["openssl", "rsa", "-in", pem_path, "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout
        n = int(mod.strip().split("=", 1)[1], 16)
        text = subprocess.run(["openssl", "rsa", "-in", pem_path, "-noout", "-text"],
                              check=True, capture_output=True, text=True).stdout
        m = re.search(r"publicExponent:\s*(\d+)", text)
        e = int(m.group(1)) if m else 65537
        return cls(n, e)


def split_jwt(token):
    """Returns (header, claims, signing_input, signature); raises ValueError if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError("undecodable JWT: %s" % e)
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("JWT parts are not objects")
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), signature


def generate_service_account(state_dir, token_uri, email, project):
    key_pem = os.path.join(state_dir, "service-account-key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", key_pem], check=True, capture_output=True)
    os.chmod(key_pem, 0o600)
    with open(key_pem) as f:
        pem = f.read()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": str(100000000000000000000 + secrets.randbelow(10 ** 20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                                + urllib.parse.quote(email),
        "universe_domain": "googleapis.com",
    }
    key_json = os.path.join(state_dir, "service-account.json")
    write_json_atomic(key_json, info, mode=0o600)
    return key_json, key_pem, info


def load_service_account(path, state_dir):
    with open(path) as f:
        info = json.load(f)
    key_pem = os.path.join(state_dir, "service-account-key.pem")
    with open(key_pem, "w") as f:
        f.write(info["private_key"])
    os.chmod(key_pem, 0o600)
    return path, key_pem, info


def write_json_atomic(path, obj, mode=0o644):
    tmp = path + ".tmp.%d" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.chmod(tmp, mode)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------
# model


class Token:
    __slots__ = ("token", "principal", "scopes", "expires_at", "source")

    def __init__(self, token, principal, scopes, expires_at, source):
        self.token = token
        self.principal = principal
        self.scopes = scopes            # None: every scope
        self.expires_at = expires_at    # None: never expires
        self.source = source

    def expired(self, now=None):
        return self.expires_at is not None and (now or time.time()) >= self.expires_at


class Bucket:
    def __init__(self, name, project, location="US", storage_class="STANDARD"):
        self.name = name
        self.project = project
        self.location = location
        self.storage_class = storage_class
        self.created = time.time()
        self.metageneration = 1
        self.objects = {}              # name -> StoredObject
        self.access = {}               # "token:T" / "principal:P" -> "readonly" | "none"


class StoredObject:
    __slots__ = ("bucket", "name", "generation", "metageneration", "size", "md5", "crc32c", "path",
                 "content_type", "content_encoding", "content_disposition", "content_language",
                 "cache_control", "custom_time", "metadata", "created", "updated", "component_count")

    def __init__(self):
        self.metageneration = 1
        self.md5 = None
        self.content_type = "application/octet-stream"
        self.content_encoding = None
        self.content_disposition = None
        self.content_language = None
        self.cache_control = None
        self.custom_time = None
        self.metadata = {}
        self.component_count = None


WRITABLE_META = {
    "contentType": "content_type",
    "contentEncoding": "content_encoding",
    "contentDisposition": "content_disposition",
    "contentLanguage": "content_language",
    "cacheControl": "cache_control",
    "customTime": "custom_time",
}


class ObjectSpec:
    """Metadata given for a new object (from a JSON body, headers or the query)."""

    def __init__(self):
        self.name = None
        self.fields = {}       # writable metadata by JSON name
        self.metadata = {}
        self.md5 = None        # client-supplied, to verify
        self.crc32c = None

    @classmethod
    def from_json(cls, doc):
        spec = cls()
        if not isinstance(doc, dict):
            raise bad_request("Parse Error", "parseError")
        spec.name = doc.get("name")
        for k in WRITABLE_META:
            v = doc.get(k)
            if v is not None:
                if not isinstance(v, str):
                    raise bad_request("Invalid value for %s: %r" % (k, v))
                spec.fields[k] = v
        md = doc.get("metadata")
        if md is not None:
            if not isinstance(md, dict):
                raise bad_request("Invalid value for metadata.")
            spec.metadata = {str(k): ("" if v is None else str(v)) for k, v in md.items()}
        spec.md5 = doc.get("md5Hash")
        spec.crc32c = doc.get("crc32c")
        return spec


class UploadSession:
    def __init__(self, upload_id, bucket, spec, preconditions, declared_length, path, principal):
        self.upload_id = upload_id
        self.bucket = bucket
        self.spec = spec
        self.preconditions = preconditions
        self.declared_length = declared_length
        self.path = path
        self.principal = principal
        self.lock = threading.Lock()
        self.committed = 0
        self.total = None
        self.md5 = hashlib.md5()
        self.crc = Crc32c()
        self.state = "active"          # active | complete | cancelled | expired | failed
        self.result = None             # object resource once complete
        self.created = time.time()
        self.chunks = 0

    def describe(self):
        return {
            "upload_id": self.upload_id, "bucket": self.bucket, "name": self.spec.name,
            "persisted": self.committed, "total": self.total, "declared_length": self.declared_length,
            "state": self.state, "chunks": self.chunks, "created": rfc3339(self.created),
        }


class Store:
    def __init__(self, data_dir, project, token_lifetime, chunk_policy):
        self.lock = threading.RLock()
        self.data_dir = data_dir
        self.project = project
        self.project_number = "123456789012"
        self.buckets = {}
        self.sessions = {}
        self.tokens = {}
        self.jwt_cache = {}
        self.faults = []
        self.fault_seq = 0
        self.token_lifetime = token_lifetime
        self.chunk_policy = chunk_policy     # "reject" | "truncate"
        self.requests = collections.deque(maxlen=1000)
        self.last_generation = 0
        for sub in ("blobs", "uploads", "tmp"):
            d = os.path.join(data_dir, sub)
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d, exist_ok=True)

    # --- files

    def new_path(self, kind):
        return os.path.join(self.data_dir, kind, secrets.token_hex(16))

    def next_generation(self):
        with self.lock:
            g = max(time.time_ns() // 1000, self.last_generation + 1)
            self.last_generation = g
            return g

    # --- tokens

    def issue_token(self, principal, scopes, lifetime=None, source="oauth"):
        lifetime = self.token_lifetime if lifetime is None else lifetime
        tok = "ya29.archie-" + secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[tok] = Token(tok, principal, scopes, time.time() + lifetime, source)
        return tok, lifetime

    def add_static_token(self, tok, principal, scopes=None, expires_at=None):
        with self.lock:
            self.tokens[tok] = Token(tok, principal, scopes, expires_at, "static")

    # --- faults

    def add_fault(self, rule):
        with self.lock:
            self.fault_seq += 1
            rule = dict(rule)
            rule["id"] = self.fault_seq
            rule.setdefault("count", 1)
            rule.setdefault("kind", "*")
            self.faults.append(rule)
            return rule

    def take_fault(self, kind, bucket=None, name=None):
        with self.lock:
            for rule in self.faults:
                k = rule.get("kind", "*")
                if k == "*" and kind in ("token", "metadata.token"):
                    continue  # the OAuth and metadata endpoints are only hit by rules that name them
                if k != "*" and k != kind and not (k.endswith(".") and kind.startswith(k)) \
                        and not (k.endswith("*") and kind.startswith(k[:-1])):
                    continue
                if rule.get("bucket") and rule["bucket"] != bucket:
                    continue
                if rule.get("name_regex") and (name is None or not re.search(rule["name_regex"], name)):
                    continue
                rule["count"] -= 1
                hit = dict(rule)
                if rule["count"] <= 0:
                    self.faults.remove(rule)
                rule["hits"] = rule.get("hits", 0) + 1
                return hit
        return None

    # --- objects

    def live_object(self, bucket_name, name):
        b = self.buckets.get(bucket_name)
        if b is None:
            raise not_found_bucket()
        return b, b.objects.get(name)

    def reset(self):
        with self.lock:
            for b in self.buckets.values():
                for o in b.objects.values():
                    _unlink(o.path)
            for s in self.sessions.values():
                _unlink(s.path)
            self.buckets.clear()
            self.sessions.clear()
            self.faults.clear()
            self.jwt_cache.clear()
            self.tokens = {k: v for k, v in self.tokens.items() if v.source == "static"}
            self.requests.clear()


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def check_preconditions(obj, q, for_read=False):
    """JSON API preconditions against the live object (None if there is none)."""
    def num(key):
        v = q.get(key)
        if v is None:
            return None
        try:
            return int(v)
        except ValueError:
            raise bad_request("Invalid value for %s: %s" % (key, v))

    gm, gnm = num("ifGenerationMatch"), num("ifGenerationNotMatch")
    mm, mnm = num("ifMetagenerationMatch"), num("ifMetagenerationNotMatch")
    gen = obj.generation if obj is not None else 0
    if gm is not None and gen != gm:
        raise precondition_failed("If-Match")
    if mm is not None and (obj is None or obj.metageneration != mm):
        raise precondition_failed("If-Match")
    not_match_failed = (gnm is not None and ((gnm == 0 and obj is not None) or (obj is not None and gen == gnm))) \
        or (mnm is not None and obj is not None and obj.metageneration == mnm)
    if not_match_failed:
        if for_read:
            raise ApiError(304, "notModified", "Not Modified")
        raise precondition_failed("If-None-Match")


def parse_goog_hash(values):
    out = {}
    for v in values or []:
        for part in v.split(","):
            part = part.strip()
            if "=" not in part:
                continue
            k, val = part.split("=", 1)
            out[k.strip().lower()] = val.strip()
    return out


def verify_hashes(expect_md5, expect_crc, md5_b64, crc_b64):
    if expect_crc is not None:
        try:
            ok = len(base64.b64decode(expect_crc, validate=True)) == 4
        except ValueError:
            ok = False
        if not ok:
            raise bad_request("Invalid CRC32C hash: \"%s\"." % expect_crc)
        if expect_crc != crc_b64:
            raise bad_request("Provided CRC32C \"%s\" doesn't match calculated CRC32C \"%s\"." % (expect_crc, crc_b64))
    if expect_md5 is not None:
        try:
            ok = len(base64.b64decode(expect_md5, validate=True)) == 16
        except ValueError:
            ok = False
        if not ok:
            raise bad_request("Invalid MD5 hash: \"%s\"." % expect_md5)
        if expect_md5 != md5_b64:
            raise bad_request("Provided MD5 hash \"%s\" doesn't match calculated MD5 hash \"%s\"." % (expect_md5, md5_b64))


def validate_object_name(name):
    if name is None or name == "":
        raise ApiError(400, "required", "Required")
    raw = name.encode("utf-8", "surrogatepass")
    if len(raw) > 1024 or "\r" in name or "\n" in name or name in (".", ".."):
        raise bad_request("The specified object name is not valid.")


BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


# ----------------------------------------------------------------------------------------
# request bodies


class Body:
    """A request body, read incrementally (Content-Length or chunked transfer coding)."""

    def __init__(self, rfile, headers):
        self.rfile = rfile
        te = (headers.get("Transfer-Encoding") or "").lower()
        self.chunked = "chunked" in te
        self.length = None
        if not self.chunked:
            cl = headers.get("Content-Length")
            try:
                self.length = int(cl) if cl is not None else 0
            except ValueError:
                raise bad_request("Invalid Content-Length header.")
            if self.length < 0:
                raise bad_request("Invalid Content-Length header.")
        self.remaining = self.length
        self.consumed = 0
        self.eof = (self.length == 0)
        self.broken = False
        self._chunk_left = 0

    def _raw(self, n):
        try:
            return self.rfile.read(n)
        except (socket.timeout, TimeoutError, ConnectionError, OSError):
            raise ClientGone()

    def _line(self):
        try:
            line = self.rfile.readline(65537)
        except (socket.timeout, TimeoutError, ConnectionError, OSError):
            raise ClientGone()
        if not line.endswith(b"\n"):
            raise ClientGone()
        return line

    def read(self, n=IO_BLOCK):
        if self.eof:
            return b""
        if self.broken:
            raise ClientGone()
        if not self.chunked:
            k = min(n, self.remaining)
            data = self._raw(k)
            self.remaining -= len(data)
            self.consumed += len(data)
            if len(data) < k:
                self.broken = True
                if not data:
                    raise ClientGone()
            if self.remaining == 0:
                self.eof = True
            return data
        if self._chunk_left == 0:
            line = self._line().split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise ClientGone()
            if size == 0:
                while self._line() not in (b"\r\n", b"\n"):
                    pass
                self.eof = True
                return b""
            self._chunk_left = size
        k = min(n, self._chunk_left)
        data = self._raw(k)
        self._chunk_left -= len(data)
        self.consumed += len(data)
        if len(data) < k:
            self.broken = True
            if not data:
                raise ClientGone()
            return data
        if self._chunk_left == 0:
            self._line()
        return data

    def read_all(self, limit=JSON_BODY_LIMIT):
        parts = []
        total = 0
        while True:
            d = self.read()
            if not d:
                return b"".join(parts)
            total += len(d)
            if total > limit:
                raise ApiError(413, "uploadTooLarge", "The request body is too large.")
            parts.append(d)

    def drain(self, limit):
        """Reads and discards up to limit bytes; True if the body is now fully read."""
        got = 0
        try:
            while not self.eof and got <= limit:
                d = self.read()
                if not d and not self.eof:
                    return False
                got += len(d)
        except ClientGone:
            return False
        return self.eof


class MultipartReader:
    """Streams a multipart/related body: part headers, then part data until the boundary.

    Line breaks may be CRLF (RFC 2046) or bare LF: apitools, which gcloud uses, builds its
    multipart bodies with Python's email generator and sends LF only; Cloud Storage accepts both.
    """

    def __init__(self, body, boundary):
        self.body = body
        self.delim = b"\n--" + boundary
        self.buf = bytearray(b"\n")   # lets the first boundary match like the others
        self.done = False

    def _fill(self):
        d = self.body.read()
        if not d:
            if self.body.broken:
                raise ClientGone()
            return False
        self.buf += d
        return True

    def next_part(self):
        """Advances past the next boundary; returns the part's headers, or None at the end."""
        while True:
            i = self.buf.find(self.delim)
            if i >= 0:
                del self.buf[:i + len(self.delim)]
                break
            keep = len(self.delim)
            if len(self.buf) > keep:
                del self.buf[:len(self.buf) - keep]
            if not self._fill():
                raise bad_request("Malformed multipart body.")
        while len(self.buf) < 2:
            if not self._fill():
                raise bad_request("Malformed multipart body.")
        if self.buf[:2] == b"--":
            self.done = True
            return None
        while True:
            ends = [(i, n) for i, n in ((self.buf.find(b"\r\n\r\n"), 4), (self.buf.find(b"\n\n"), 2)) if i >= 0]
            if ends:
                i, n = min(ends)
                head = bytes(self.buf[:i])
                del self.buf[:i + n]
                break
            if len(self.buf) > 64 * KIB:
                raise bad_request("Malformed multipart body.")
            if not self._fill():
                raise bad_request("Malformed multipart body.")
        headers = {}
        for line in head.split(b"\n"):
            line = line.strip()
            if not line or b":" not in line:
                continue
            k, v = line.split(b":", 1)
            headers[k.strip().decode("latin-1").lower()] = v.strip().decode("latin-1")
        return headers

    def part_data(self):
        """Yields the current part's bytes (stops before the boundary, which stays buffered)."""
        while True:
            i = self.buf.find(self.delim)
            if i >= 0:
                end = i - 1 if i > 0 and self.buf[i - 1] == 13 else i   # CR of a CRLF delimiter
                if end > 0:
                    yield bytes(self.buf[:end])
                del self.buf[:i]
                return
            safe = len(self.buf) - len(self.delim) - 1
            if safe > 0:
                yield bytes(self.buf[:safe])
                del self.buf[:safe]
            if not self._fill():
                raise bad_request("Malformed multipart body.")


# ----------------------------------------------------------------------------------------
# HTTP handler


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcs-test-server"
    sys_version = ""
    timeout = 120              # seconds a connection may sit idle or stall mid-body

    store: Store = None        # set on the subclass by make_server
    config: dict = None

    def version_string(self):
        return self.server_version

    # --- plumbing

    def log_message(self, fmt, *args):
        if self.config.get("verbose"):
            sys.stderr.write("gcs-test-server: %s - %s\n" % (self.address_string(), fmt % args))

    def send_response(self, code, message=None):
        self._status = code
        if message is None:
            message = {308: "Resume Incomplete", 499: "Client Closed Request"}.get(code)
        super().send_response(code, message)

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def base_url(self):
        host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]
        return "http://" + host

    def _dispatch(self):
        self._status = None
        self._error = None
        self._must_close = False
        self._principal = None
        self._kind = None
        started = time.time()
        split = urllib.parse.urlsplit(self.path)
        self.raw_path = split.path
        self.q = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        self.body = None
        try:
            self.body = Body(self.rfile, self.headers)
            self._route()
        except ApiError as e:
            self._error = e.message
            self._send_api_error(e)
        except OAuthError as e:
            self._error = "%s: %s" % (e.error, e.description)
            self._send_json(e.status, {"error": e.error, "error_description": e.description})
        except ClientGone:
            self.close_connection = True
        except ConnectionDropped:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            if self._status is None:
                try:
                    self._send_api_error(ApiError(500, "backendError", "Backend Error"))
                except OSError:
                    self.close_connection = True
            else:
                self.close_connection = True
        finally:
            if self.body is not None and not self.body.eof and not self.close_connection:
                # A handler answered without reading the body and did not ask to close.
                self.close_connection = True
            self._record(started)

    def _record(self, started):
        if self.raw_path.startswith("/_test/"):
            return
        hdrs = {}
        for k in ("Content-Type", "Content-Length", "Content-Range", "Range", "X-Goog-Hash",
                  "X-Upload-Content-Type", "X-Upload-Content-Length", "Transfer-Encoding",
                  "Metadata-Flavor", "User-Agent", "x-goog-api-client"):
            v = self.headers.get(k)
            if v is not None:
                hdrs[k] = v
        auth = self.headers.get("Authorization")
        if auth:
            hdrs["Authorization"] = auth[:20] + ("..." if len(auth) > 20 else "")
        self.store.requests.append({
            "time": rfc3339(started), "method": self.command, "path": self.raw_path, "query": self.q,
            "kind": self._kind, "status": self._status, "principal": self._principal,
            "bytes_in": self.body.consumed if self.body else 0, "headers": hdrs, "error": self._error,
            "ms": int((time.time() - started) * 1000),
        })

    def _settle_body(self):
        """Before answering: finish reading a small unread body, or plan to close the connection."""
        if self.body is None or self.body.eof:
            return
        if self.body.length is not None and self.body.remaining > DRAIN_LIMIT:
            self._must_close = True
            return
        if not self.body.drain(DRAIN_LIMIT):
            self._must_close = True

    def _send(self, status, body=b"", content_type=None, headers=()):
        self._settle_body()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self._must_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status, obj, headers=()):
        data = json.dumps(obj, indent=1).encode() + b"\n"
        self._send(status, data, "application/json; charset=UTF-8", headers)

    def _send_resource(self, obj, headers=()):
        fields = self.q.get("fields")
        if fields:
            try:
                obj = apply_fields(obj, parse_fields(fields))
            except ValueError:
                raise bad_request("Invalid field selection %s" % fields, "invalidParameter")
        self._send_json(200, obj, headers)

    def _send_api_error(self, e):
        if e.status == 304:
            self._send(304, b"", None, e.headers)
            return
        self._send_json(e.status, e.body(), e.headers)

    def _drop_connection(self):
        """Cuts the connection without an answer (RST) — a fault injection."""
        self.close_connection = True
        self._status = "dropped"
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise ConnectionDropped()

    def _fault(self, kind, bucket=None, name=None, handle_status=True):
        """Applies a matching generic fault rule; returns the rule for kind-specific handling."""
        self._kind = kind
        rule = self.store.take_fault(kind, bucket, name)
        if rule is None:
            return None
        delay = float(rule.get("delay", 0) or 0)
        if delay:
            time.sleep(delay)
        action = rule.get("action", "status")
        if action == "delay":
            return None
        if action == "drop" and rule.get("after_bytes") is None:
            self._drop_connection()
        if action == "status" and handle_status and not rule.get("commit"):
            raise fault_error(rule)
        return rule

    # --- routing

    def _route(self):
        p = self.raw_path
        m = self.command
        if p.startswith("/_test/"):
            return self._control(p[len("/_test/"):])
        if p == "/token" and m == "POST":
            return self._token_endpoint()
        if p.startswith("/computeMetadata/") or p == "/computeMetadata":
            return self._metadata_server(p)
        if p in ("/", "/computeMetadata/v1/"):
            return self._send(200, b"OK\n", "text/plain", [("Metadata-Flavor", "Google")])
        for prefix in ("/storage/v1/", "/download/storage/v1/", "/upload/storage/v1/",
                       "/resumable/upload/storage/v1/"):
            if p.startswith(prefix):
                rest = p[len(prefix):]
                segs = rest.split("/")
                # The discovery document's resumable path (used by apitools, hence gcloud) is
                # /resumable/upload/storage/v1/...; it behaves like /upload/storage/v1/.
                return self._api(prefix.replace("/resumable/upload/", "/upload/"), segs)
        raise ApiError(404, "notFound", "Not Found")

    def _api(self, prefix, segs):
        m = self.command
        if not segs or segs[0] != "b":
            raise ApiError(404, "notFound", "Not Found")
        if len(segs) == 1 or (len(segs) == 2 and segs[1] == ""):
            if prefix != "/storage/v1/":
                raise ApiError(404, "notFound", "Not Found")
            if m == "GET":
                return self._bucket_list()
            if m == "POST":
                return self._bucket_insert()
            raise ApiError(405, "methodNotAllowed", "Method not allowed")
        bucket = urllib.parse.unquote(segs[1])
        if len(segs) == 2:
            if prefix != "/storage/v1/":
                raise ApiError(404, "notFound", "Not Found")
            if m in ("GET", "HEAD"):
                return self._bucket_get(bucket)
            if m == "DELETE":
                return self._bucket_delete(bucket)
            raise ApiError(405, "methodNotAllowed", "Method not allowed")
        if segs[2] != "o":
            raise ApiError(404, "notFound", "Not Found")
        if len(segs) == 3 or (len(segs) == 4 and segs[3] == ""):
            if prefix == "/upload/storage/v1/":
                if m == "POST":
                    return self._upload_post(bucket)
                if m == "PUT":
                    return self._upload_put(bucket)
                if m == "DELETE":
                    return self._upload_cancel(bucket)
                raise ApiError(405, "methodNotAllowed", "Method not allowed")
            if prefix == "/storage/v1/" and m == "GET":
                return self._object_list(bucket)
            if prefix == "/storage/v1/" and m == "POST":
                # objects.insert on the metadata path creates an empty object (metadata only).
                return self._object_insert_metadata_only(bucket)
            raise ApiError(405, "methodNotAllowed", "Method not allowed")
        raw_name = "/".join(segs[3:])
        if prefix == "/storage/v1/" and m == "POST" and len(segs) >= 5 and segs[-1] == "compose":
            return self._compose(bucket, urllib.parse.unquote("/".join(segs[3:-1])))
        name = urllib.parse.unquote(raw_name)
        if prefix == "/download/storage/v1/":
            if m in ("GET", "HEAD"):
                return self._object_get(bucket, name, media=True)
            raise ApiError(405, "methodNotAllowed", "Method not allowed")
        if prefix != "/storage/v1/":
            raise ApiError(404, "notFound", "Not Found")
        if m in ("GET", "HEAD"):
            return self._object_get(bucket, name, media=(self.q.get("alt") == "media"))
        if m == "DELETE":
            return self._object_delete(bucket, name)
        if m in ("PATCH", "PUT"):
            return self._object_patch(bucket, name)
        raise ApiError(405, "methodNotAllowed", "Method not allowed")

    # --- auth

    def _authenticate(self, permission, what="object"):
        h = self.headers.get("Authorization")
        if not h:
            raise ApiError(401, "required",
                           "Anonymous caller does not have %s access to the Google Cloud Storage %s. "
                           "Permission '%s' denied on resource (or it may not exist)." % (permission, what, permission),
                           location="Authorization", location_type="header")
        mt = re.match(r"^\s*Bearer\s+(\S+)\s*$", h, re.I)
        if not mt:
            raise invalid_credentials()
        tok = mt.group(1)
        store = self.store
        with store.lock:
            t = store.tokens.get(tok) or store.jwt_cache.get(tok)
        if t is None and tok.count(".") == 2:
            t = self._self_signed_jwt(tok)
        if t is None or t.expired():
            raise invalid_credentials()
        self._principal = t.principal
        return t

    def _self_signed_jwt(self, tok):
        """A service account's self-signed JWT used directly as the bearer token."""
        sa = self.config["service_account"]
        try:
            header, claims, signing_input, sig = split_jwt(tok)
        except ValueError:
            return None
        if header.get("alg") != "RS256":
            return None
        if not self.config["public_key"].verify_rs256(signing_input, sig):
            return None
        now = time.time()
        if claims.get("iss") != sa["client_email"]:
            return None
        try:
            iat, exp = int(claims["iat"]), int(claims["exp"])
        except (KeyError, TypeError, ValueError):
            return None
        if exp <= now or iat > now + CLOCK_SKEW or exp - iat > 3600:
            return None
        scope = claims.get("scope")
        if scope:
            scopes = set(str(scope).split())
        elif claims.get("aud") in SELF_SIGNED_AUDIENCES:
            scopes = None
        else:
            return None
        t = Token(tok, sa["client_email"], scopes, exp, "self-signed-jwt")
        with self.store.lock:
            self.store.jwt_cache[tok] = t
        return t

    def _authorize(self, tok, bucket, permission, what="object"):
        scopes_needed = READ_SCOPES if permission not in WRITE_PERMISSIONS else FULL_SCOPES
        if tok.scopes is not None and not (tok.scopes & scopes_needed):
            raise ApiError(403, "forbidden", "Provided scope(s) are not authorized")
        if bucket is None:
            return
        access = bucket.access.get("token:" + tok.token) or bucket.access.get("principal:" + tok.principal)
        if (access == "none" or (access == "readonly" and permission in WRITE_PERMISSIONS)
                or (access == "objects" and not permission.startswith("storage.objects."))):
            raise ApiError(403, "forbidden",
                           "%s does not have %s access to the Google Cloud Storage %s. "
                           "Permission '%s' denied on resource (or it may not exist)."
                           % (tok.principal, permission, what, permission))

    def _bucket_for(self, name, permission, tok, what="object"):
        with self.store.lock:
            b = self.store.buckets.get(name)
        if b is None:
            raise not_found_bucket()
        self._authorize(tok, b, permission, what)
        return b

    # --- resources

    def object_resource(self, o):
        base = self.base_url()
        qn = urllib.parse.quote(o.name, safe="")
        r = {
            "kind": "storage#object",
            "id": "%s/%s/%d" % (o.bucket, o.name, o.generation),
            "selfLink": "%s/storage/v1/b/%s/o/%s" % (base, o.bucket, qn),
            "mediaLink": "%s/download/storage/v1/b/%s/o/%s?generation=%d&alt=media" % (base, o.bucket, qn, o.generation),
            "name": o.name,
            "bucket": o.bucket,
            "generation": str(o.generation),
            "metageneration": str(o.metageneration),
            "contentType": o.content_type,
            "storageClass": "STANDARD",
            "size": str(o.size),
        }
        if o.md5 is not None:
            r["md5Hash"] = o.md5
        r["crc32c"] = o.crc32c
        if o.component_count is not None:
            r["componentCount"] = o.component_count
        r["etag"] = object_etag(o.generation, o.metageneration)
        for json_name, attr in WRITABLE_META.items():
            if json_name == "contentType":
                continue
            v = getattr(o, attr)
            if v is not None:
                r[json_name] = v
        if o.metadata:
            r["metadata"] = dict(o.metadata)
        r["timeCreated"] = rfc3339(o.created)
        r["updated"] = rfc3339(o.updated)
        r["timeStorageClassUpdated"] = rfc3339(o.created)
        r["timeFinalized"] = rfc3339(o.created)
        return r

    def bucket_resource(self, b):
        return {
            "kind": "storage#bucket",
            "selfLink": "%s/storage/v1/b/%s" % (self.base_url(), b.name),
            "id": b.name,
            "name": b.name,
            "projectNumber": self.store.project_number,
            "metageneration": str(b.metageneration),
            "location": b.location,
            "storageClass": b.storage_class,
            "etag": bucket_etag(b.metageneration),
            "timeCreated": rfc3339(b.created),
            "updated": rfc3339(b.created),
            "softDeletePolicy": {"retentionDurationSeconds": "0"},
            "iamConfiguration": {
                "bucketPolicyOnly": {"enabled": True},
                "uniformBucketLevelAccess": {"enabled": True},
                "publicAccessPrevention": "inherited",
            },
            "locationType": "multi-region",
            "rpo": "DEFAULT",
        }

    # --- buckets

    def _bucket_get(self, name):
        self._fault("bucket.get", name)
        tok = self._authenticate("storage.buckets.get", "bucket")
        b = self._bucket_for(name, "storage.buckets.get", tok, "bucket")
        self._send_resource(self.bucket_resource(b))

    def _bucket_list(self):
        self._fault("bucket.list")
        tok = self._authenticate("storage.buckets.list", "project")
        self._authorize(tok, None, "storage.buckets.list")
        if not self.q.get("project"):
            raise ApiError(400, "required", "Required parameter: project")
        prefix = self.q.get("prefix", "")
        with self.store.lock:
            items = [self.bucket_resource(b) for n, b in sorted(self.store.buckets.items()) if n.startswith(prefix)]
        out = {"kind": "storage#buckets"}
        if items:
            out["items"] = items
        self._send_resource(out)

    def _bucket_insert(self):
        self._fault("bucket.insert")
        tok = self._authenticate("storage.buckets.create", "project")
        self._authorize(tok, None, "storage.buckets.create")
        if not self.q.get("project"):
            raise ApiError(400, "required", "Required parameter: project")
        try:
            doc = json.loads(self.body.read_all() or b"{}")
        except ValueError:
            raise bad_request("Parse Error", "parseError")
        name = doc.get("name") if isinstance(doc, dict) else None
        if not name:
            raise ApiError(400, "required", "Required")
        b = self._create_bucket(name, self.q["project"], doc.get("location") or "US",
                                doc.get("storageClass") or "STANDARD")
        self._send_resource(self.bucket_resource(b))

    def _create_bucket(self, name, project, location="US", storage_class="STANDARD"):
        if not BUCKET_NAME_RE.match(name) or ".." in name:
            raise bad_request("Invalid bucket name: '%s'" % name)
        with self.store.lock:
            if name in self.store.buckets:
                raise ApiError(409, "conflict",
                               "Your previous request to create the named bucket succeeded and you already own it.")
            b = Bucket(name, project, location.upper(), storage_class.upper())
            self.store.buckets[name] = b
        return b

    def _bucket_delete(self, name):
        self._fault("bucket.delete", name)
        tok = self._authenticate("storage.buckets.delete", "bucket")
        b = self._bucket_for(name, "storage.buckets.delete", tok, "bucket")
        with self.store.lock:
            if b.objects:
                raise ApiError(409, "conflict", "The bucket you tried to delete is not empty.")
            self.store.buckets.pop(name, None)
        self._send(204)

    # --- objects: read, list, delete, patch

    def _object_get(self, bucket_name, name, media):
        rule = self._fault("object.download" if media else "object.get", bucket_name, name)
        perm = "storage.objects.get"
        tok = self._authenticate(perm)
        b = self._bucket_for(bucket_name, perm, tok)
        with self.store.lock:
            o = b.objects.get(name)
            if o is None:
                raise not_found_object(bucket_name, name)
            gen = self.q.get("generation")
            if gen is not None and gen != str(o.generation):
                raise not_found_object(bucket_name, name)
            check_preconditions(o, self.q, for_read=True)
            f = open(o.path, "rb") if media else None
        if not media:
            return self._send_resource(self.object_resource(o))
        with f:
            self._send_media(o, f, rule)

    def _send_media(self, o, f, rule):
        size = o.size
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        hdrs = []
        if rng:
            m = re.match(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", rng)
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = int(m.group(2)) if m.group(2) else size - 1
                    end = min(end, size - 1)
                    if start >= size or end < start:
                        if not (size == 0 and start == 0):
                            raise ApiError(416, "requestedRangeNotSatisfiable",
                                           "The requested range cannot be satisfied.",
                                           location="Range", location_type="header",
                                           headers=[("Content-Range", "bytes */%d" % size)])
                        end = -1
                else:
                    n = int(m.group(2))
                    if n == 0:
                        raise ApiError(416, "requestedRangeNotSatisfiable",
                                       "The requested range cannot be satisfied.",
                                       location="Range", location_type="header",
                                       headers=[("Content-Range", "bytes */%d" % size)])
                    start = max(0, size - n)
                if size > 0:
                    status = 206
                    hdrs.append(("Content-Range", "bytes %d-%d/%d" % (start, end, size)))
        length = max(0, end - start + 1)
        hash_value = "crc32c=%s" % o.crc32c + (",md5=%s" % o.md5 if o.md5 else "")
        hdrs += [
            ("Content-Type", o.content_type),
            ("Content-Length", str(length)),
            ("Accept-Ranges", "bytes"),
            ("ETag", '"%s"' % object_etag(o.generation, o.metageneration)),
            ("Last-Modified", email.utils.formatdate(o.updated, usegmt=True)),
            ("X-Goog-Generation", str(o.generation)),
            ("X-Goog-Metageneration", str(o.metageneration)),
            ("X-Goog-Hash", hash_value),
            ("X-Goog-Stored-Content-Length", str(size)),
            ("X-Goog-Stored-Content-Encoding", o.content_encoding or "identity"),
            ("X-Goog-Storage-Class", "STANDARD"),
            ("Cache-Control", o.cache_control or "no-cache, no-store, max-age=0, must-revalidate"),
        ]
        if o.content_encoding:
            hdrs.append(("Content-Encoding", o.content_encoding))
        if o.content_disposition:
            hdrs.append(("Content-Disposition", o.content_disposition))
        if o.content_language:
            hdrs.append(("Content-Language", o.content_language))
        if o.component_count is not None:
            hdrs.append(("X-Goog-Component-Count", str(o.component_count)))
        for k, v in o.metadata.items():
            hdrs.append(("X-Goog-Meta-" + k, v))
        self._settle_body()
        self.send_response(status)
        for k, v in hdrs:
            self.send_header(k, v)
        if self._must_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD" or length == 0:
            return
        limit = length
        if rule and rule.get("action") == "drop":
            limit = min(length, int(rule.get("after_bytes") or 0))
        sent = 0
        while sent < limit:
            n = self.connection.sendfile(f, start + sent, limit - sent)
            if not n:
                break
            sent += n
        if limit < length:
            self._drop_connection()

    def _object_list(self, bucket_name):
        self._fault("object.list", bucket_name)
        tok = self._authenticate("storage.objects.list", "bucket")
        b = self._bucket_for(bucket_name, "storage.objects.list", tok, "bucket")
        q = self.q
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        start_off = q.get("startOffset")
        end_off = q.get("endOffset")
        trailing = q.get("includeTrailingDelimiter", "false").lower() == "true"
        try:
            max_results = int(q.get("maxResults", LIST_MAX))
        except ValueError:
            raise bad_request("Invalid value for maxResults: %s" % q.get("maxResults"))
        if max_results < 0:
            raise bad_request("Invalid value for maxResults: %s" % q.get("maxResults"))
        if max_results == 0 or max_results > LIST_MAX:
            max_results = LIST_MAX
        cursor, skip_prefix = None, None
        if q.get("pageToken"):
            try:
                tokdoc = json.loads(b64url_decode(q["pageToken"]))
                cursor = tokdoc.get("after")
                skip_prefix = tokdoc.get("skip")
            except (ValueError, AttributeError):
                raise bad_request("Invalid page token.", "invalidParameter")
        with self.store.lock:
            entries = sorted(((n.encode("utf-8", "surrogatepass"), o) for n, o in b.objects.items()),
                             key=lambda e: e[0])
        keys = [k for k, _ in entries]
        p = prefix.encode("utf-8", "surrogatepass")
        d = delim.encode("utf-8", "surrogatepass")
        i = bisect.bisect_left(keys, p)
        if start_off:
            i = max(i, bisect.bisect_left(keys, start_off.encode("utf-8", "surrogatepass")))
        if skip_prefix is not None:
            i = max(i, bisect.bisect_left(keys, skip_prefix.encode("utf-8", "surrogatepass") + b"\xff"))
        elif cursor is not None:
            i = max(i, bisect.bisect_right(keys, cursor.encode("utf-8", "surrogatepass")))
        end_key = end_off.encode("utf-8", "surrogatepass") if end_off else None
        items, prefixes = [], []
        last = None
        n = len(keys)

        def in_range(j):
            return j < n and keys[j].startswith(p) and (end_key is None or keys[j] < end_key)

        while in_range(i) and len(items) + len(prefixes) < max_results:
            k, o = entries[i]
            rest = k[len(p):]
            cut = rest.find(d) if d else -1
            if cut >= 0:
                pre = p + rest[:cut + len(d)]
                prefixes.append(pre.decode("utf-8", "surrogatepass"))
                if trailing and k == pre:
                    items.append(o)
                last = ("skip", pre)
                i = bisect.bisect_left(keys, pre + b"\xff")
            else:
                items.append(o)
                last = ("after", k)
                i += 1
        out = {"kind": "storage#objects"}
        if in_range(i) and last is not None:
            kind, key = last
            out["nextPageToken"] = b64url_encode(json.dumps({kind: key.decode("utf-8", "surrogatepass")}).encode())
        if prefixes:
            out["prefixes"] = prefixes
        if items:
            out["items"] = [self.object_resource(o) for o in items]
        self._send_resource(out)

    def _object_delete(self, bucket_name, name):
        self._fault("object.delete", bucket_name, name)
        tok = self._authenticate("storage.objects.delete")
        b = self._bucket_for(bucket_name, "storage.objects.delete", tok)
        with self.store.lock:
            o = b.objects.get(name)
            if o is None:
                raise not_found_object(bucket_name, name)
            gen = self.q.get("generation")
            if gen is not None and gen != str(o.generation):
                raise not_found_object(bucket_name, name)
            check_preconditions(o, self.q)
            del b.objects[name]
            _unlink(o.path)
        self._send(204)

    def _object_patch(self, bucket_name, name):
        self._fault("object.patch", bucket_name, name)
        tok = self._authenticate("storage.objects.update")
        b = self._bucket_for(bucket_name, "storage.objects.update", tok)
        try:
            doc = json.loads(self.body.read_all() or b"{}")
        except ValueError:
            raise bad_request("Parse Error", "parseError")
        if not isinstance(doc, dict):
            raise bad_request("Parse Error", "parseError")
        with self.store.lock:
            o = b.objects.get(name)
            if o is None:
                raise not_found_object(bucket_name, name)
            check_preconditions(o, self.q)
            for json_name, attr in WRITABLE_META.items():
                if json_name in doc:
                    v = doc[json_name]
                    if json_name == "contentType" and not v:
                        v = "application/octet-stream"
                    setattr(o, attr, v)
            if "metadata" in doc:
                md = doc["metadata"]
                if md is None:
                    o.metadata = {}
                elif isinstance(md, dict):
                    for k, v in md.items():
                        if v is None:
                            o.metadata.pop(k, None)
                        else:
                            o.metadata[str(k)] = str(v)
            o.metageneration += 1
            o.updated = time.time()
            res = self.object_resource(o)
        self._send_resource(res)

    # --- object creation (shared by every upload path)

    def _commit_object(self, bucket, spec, path, size, md5_b64, crc_b64, q, component_count=None):
        """Makes the file at path the live object; checks preconditions atomically."""
        o = StoredObject()
        o.bucket = bucket.name
        o.name = spec.name
        o.size = size
        o.md5 = md5_b64
        o.crc32c = crc_b64
        o.path = path
        o.component_count = component_count
        for json_name, attr in WRITABLE_META.items():
            if json_name in spec.fields:
                setattr(o, attr, spec.fields[json_name])
        if not o.content_type:
            o.content_type = "application/octet-stream"
        o.metadata = dict(spec.metadata)
        with self.store.lock:
            if self.store.buckets.get(bucket.name) is not bucket:
                _unlink(path)
                raise not_found_bucket()
            old = bucket.objects.get(spec.name)
            try:
                check_preconditions(old, q)
            except ApiError:
                _unlink(path)
                raise
            o.generation = self.store.next_generation()
            o.created = o.updated = time.time()
            bucket.objects[spec.name] = o
            if old is not None:
                _unlink(old.path)
        return o

    def _stream_to_file(self, chunks, path):
        md5 = hashlib.md5()
        crc = Crc32c()
        size = 0
        with open(path, "wb") as f:
            for data in chunks:
                f.write(data)
                md5.update(data)
                crc.update(data)
                size += len(data)
        return size, base64.b64encode(md5.digest()).decode(), crc.b64()

    def _body_chunks(self, rule=None):
        limit = None
        if rule and rule.get("action") == "drop":
            limit = int(rule.get("after_bytes") or 0)
        got = 0
        while True:
            if limit is not None and got >= limit:
                self._drop_connection()
            n = IO_BLOCK if limit is None else max(1, min(IO_BLOCK, limit - got))
            d = self.body.read(n)
            if not d:
                if self.body.broken:
                    raise ClientGone()
                if limit is not None:
                    self._drop_connection()
                return
            got += len(d)
            yield d

    # --- uploads

    def _upload_post(self, bucket_name):
        ut = self.q.get("uploadType")
        if ut is None:
            if "upload_id" in self.q:
                return self._upload_put(bucket_name)
            raise ApiError(400, "required", "Required parameter: uploadType")
        if ut == "resumable":
            return self._resumable_initiate(bucket_name)
        if ut == "media":
            return self._simple_upload(bucket_name)
        if ut == "multipart":
            return self._multipart_upload(bucket_name)
        raise bad_request("Invalid upload type: %s" % ut, "invalidParameter")

    def _simple_upload(self, bucket_name):
        rule = self._fault("upload.media", bucket_name, self.q.get("name"))
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        spec = ObjectSpec()
        spec.name = self.q.get("name")
        validate_object_name(spec.name)
        ct = self.headers.get("Content-Type")
        if ct:
            spec.fields["contentType"] = ct
        if self.q.get("contentEncoding"):
            spec.fields["contentEncoding"] = self.q["contentEncoding"]
        with self.store.lock:
            check_preconditions(b.objects.get(spec.name), self.q)
        path = self.store.new_path("tmp")
        try:
            size, md5_b64, crc_b64 = self._stream_to_file(self._body_chunks(rule), path)
            gh = parse_goog_hash(self.headers.get_all("X-Goog-Hash"))
            verify_hashes(gh.get("md5"), gh.get("crc32c"), md5_b64, crc_b64)
            o = self._commit_object(b, spec, path, size, md5_b64, crc_b64, self.q)
        except BaseException:
            _unlink(path)
            raise
        self._answer_upload(o, rule)

    def _multipart_upload(self, bucket_name):
        rule = self._fault("upload.multipart", bucket_name, self.q.get("name"))
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        ctype = self.headers.get("Content-Type") or ""
        # apitools (gcloud) single-quotes the boundary; accept any of the three forms.
        m = re.search(r"""boundary\s*=\s*(?:"([^"]+)"|'([^']+)'|([^;\s]+))""", ctype, re.I)
        if not ctype.lower().startswith("multipart/") or not m:
            raise bad_request("Missing or invalid multipart Content-Type boundary.")
        boundary = (m.group(1) or m.group(2) or m.group(3)).encode("latin-1")
        reader = MultipartReader(self.body, boundary)
        h1 = reader.next_part()
        if h1 is None:
            raise bad_request("Malformed multipart body.")
        meta_raw = b"".join(reader.part_data())
        try:
            doc = json.loads(meta_raw or b"{}")
        except ValueError:
            raise bad_request("Parse Error", "parseError")
        spec = ObjectSpec.from_json(doc)
        qname = self.q.get("name")
        if qname is not None:
            if spec.name is not None and spec.name != qname:
                raise bad_request("Value '%s' in content does not agree with value '%s'." % (spec.name, qname))
            spec.name = qname
        validate_object_name(spec.name)
        h2 = reader.next_part()
        if h2 is None:
            raise bad_request("Malformed multipart body: missing media part.")
        if "contentType" not in spec.fields and h2.get("content-type"):
            spec.fields["contentType"] = h2["content-type"]
        with self.store.lock:
            check_preconditions(b.objects.get(spec.name), self.q)
        path = self.store.new_path("tmp")
        try:
            size, md5_b64, crc_b64 = self._stream_to_file(self._limited(reader.part_data(), rule), path)
            if reader.next_part() is not None:
                raise bad_request("Malformed multipart body: unexpected third part.")
            reader.body.drain(DRAIN_LIMIT)
            gh = parse_goog_hash(self.headers.get_all("X-Goog-Hash"))
            verify_hashes(spec.md5 or gh.get("md5"), spec.crc32c or gh.get("crc32c"), md5_b64, crc_b64)
            o = self._commit_object(b, spec, path, size, md5_b64, crc_b64, self.q)
        except BaseException:
            _unlink(path)
            raise
        self._answer_upload(o, rule)

    def _limited(self, gen, rule):
        if not rule or rule.get("action") != "drop":
            yield from gen
            return
        limit = int(rule.get("after_bytes") or 0)
        got = 0
        for d in gen:
            if got + len(d) >= limit:
                self._drop_connection()
            got += len(d)
            yield d
        self._drop_connection()

    def _object_insert_metadata_only(self, bucket_name):
        self._fault("upload.metadata", bucket_name)
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        try:
            doc = json.loads(self.body.read_all() or b"{}")
        except ValueError:
            raise bad_request("Parse Error", "parseError")
        spec = ObjectSpec.from_json(doc)
        if self.q.get("name"):
            spec.name = self.q["name"]
        validate_object_name(spec.name)
        path = self.store.new_path("tmp")
        size, md5_b64, crc_b64 = self._stream_to_file([], path)
        o = self._commit_object(b, spec, path, size, md5_b64, crc_b64, self.q)
        self._send_resource(self.object_resource(o))

    def _answer_upload(self, o, rule, extra_headers=()):
        res = self.object_resource(o)
        hdrs = [("X-GUploader-UploadID", secrets.token_urlsafe(24))] + list(extra_headers)
        if rule and rule.get("action") == "status" and rule.get("commit"):
            raise fault_error(rule)
        self._send_resource(res, hdrs)

    def _resumable_initiate(self, bucket_name):
        self._fault("upload.initiate", bucket_name, self.q.get("name"))
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        raw = self.body.read_all()
        spec = ObjectSpec()
        if raw.strip():
            try:
                doc = json.loads(raw)
            except ValueError:
                raise bad_request("Parse Error", "parseError")
            spec = ObjectSpec.from_json(doc)
        qname = self.q.get("name")
        if qname is not None:
            if spec.name is not None and spec.name != qname:
                raise bad_request("Value '%s' in content does not agree with value '%s'." % (spec.name, qname))
            spec.name = qname
        validate_object_name(spec.name)
        if "contentType" not in spec.fields and self.headers.get("X-Upload-Content-Type"):
            spec.fields["contentType"] = self.headers["X-Upload-Content-Type"]
        declared = self.headers.get("X-Upload-Content-Length")
        if declared is not None:
            try:
                declared = int(declared)
                if declared < 0:
                    raise ValueError()
            except ValueError:
                raise bad_request("Invalid X-Upload-Content-Length header.")
        pre = {k: v for k, v in self.q.items()
               if k in ("ifGenerationMatch", "ifGenerationNotMatch", "ifMetagenerationMatch",
                        "ifMetagenerationNotMatch")}
        with self.store.lock:
            check_preconditions(b.objects.get(spec.name), pre)
        upload_id = "ADPyc" + secrets.token_urlsafe(48)
        path = self.store.new_path("uploads")
        open(path, "wb").close()
        sess = UploadSession(upload_id, bucket_name, spec, pre, declared, path, tok.principal)
        with self.store.lock:
            self.store.sessions[upload_id] = sess
        loc = "%s/upload/storage/v1/b/%s/o?uploadType=resumable&name=%s&upload_id=%s" % (
            self.base_url(), urllib.parse.quote(bucket_name, safe=""),
            urllib.parse.quote(spec.name, safe=""), upload_id)
        self._send(200, b"", None, [("Location", loc), ("X-GUploader-UploadID", upload_id)])

    def _session(self, bucket_name):
        upload_id = self.q.get("upload_id")
        if not upload_id:
            raise ApiError(400, "required", "Required parameter: upload_id")
        with self.store.lock:
            sess = self.store.sessions.get(upload_id)
        if sess is None or sess.bucket != bucket_name:
            raise ApiError(404, "notFound", "No such upload session: %s" % upload_id)
        return sess

    def _gone(self, sess):
        if sess.state == "cancelled":
            return ApiError(410, "gone", "The upload session has been cancelled. Start a new upload.")
        if sess.state == "expired":
            return ApiError(410, "gone", "The upload session has expired. Start a new upload.")
        return ApiError(410, "gone", "The upload session is no longer available (it ended with an error). "
                                     "Start a new upload.")

    def _upload_cancel(self, bucket_name):
        self._fault("upload.cancel", bucket_name)
        sess = self._session(bucket_name)
        with sess.lock:
            if sess.state == "complete":
                # Cancelling a finished upload does nothing to the object.
                return self._send_resource(sess.result)
            if sess.state != "active":
                raise self._gone(sess)
            sess.state = "cancelled"
            _unlink(sess.path)
        self._send(499)

    def _status_308(self, sess, extra=()):
        hdrs = [("X-GUploader-UploadID", sess.upload_id)] + list(extra)
        if sess.committed > 0:
            hdrs.append(("Range", "bytes=0-%d" % (sess.committed - 1)))
        self._send(308, b"", None, hdrs)

    def _upload_put(self, bucket_name):
        sess = self._session(bucket_name)
        cr = self.headers.get("Content-Range")
        parsed = None
        if cr is not None:
            m = re.match(r"^\s*bytes\s+(?:(\*)|(\d+)-(\d+|\*))\s*/\s*(\d+|\*)\s*$", cr, re.I)
            if not m:
                raise bad_request("Failed to parse Content-Range header.")
            start = None if m.group(1) else int(m.group(2))
            end = None if (m.group(1) or m.group(3) == "*") else int(m.group(3))
            total = None if m.group(4) == "*" else int(m.group(4))
            parsed = (start, end, total)
        is_query = parsed is not None and parsed[0] is None
        kind = "upload.status" if is_query else "upload.chunk"
        rule = self._fault(kind, bucket_name, sess.spec.name, handle_status=False)
        acquired = sess.lock.acquire(timeout=self.timeout)
        if not acquired:
            raise ApiError(503, "backendError", "The upload session is busy.")
        try:
            self._upload_put_locked(sess, parsed, is_query, rule)
        finally:
            sess.lock.release()

    def _upload_put_locked(self, sess, parsed, is_query, rule):
        if sess.state == "complete":
            return self._send_resource(sess.result, [("X-GUploader-UploadID", sess.upload_id)])
        if sess.state != "active":
            raise self._gone(sess)
        if rule and rule.get("action") == "status" and not rule.get("commit"):
            raise fault_error(rule)
        if parsed is None:
            # No Content-Range: the body is the whole object.
            parsed = (0, None, None)
            whole = True
        else:
            whole = False
        start, end, total = parsed
        if total is not None:
            if sess.total is not None and total != sess.total:
                raise bad_request("Invalid request. The total object size %d in the Content-Range header differs "
                                  "from the size %d given earlier." % (total, sess.total))
            if sess.declared_length is not None and total != sess.declared_length:
                raise bad_request("Invalid request. The total object size %d in the Content-Range header does not "
                                  "match the X-Upload-Content-Length %d given when the upload started."
                                  % (total, sess.declared_length))
            if total < sess.committed:
                raise bad_request("Invalid request. The total object size %d is smaller than the %d byte(s) "
                                  "already uploaded." % (total, sess.committed))
        if is_query:
            if not self.body.drain(0):
                raise bad_request("Invalid request. A status query (Content-Range: bytes */...) must have an "
                                  "empty body.")
            if total is not None:
                sess.total = total
                if total == sess.committed:
                    return self._finalize(sess, rule)
            return self._status_308(sess)
        if end is not None and end < start:
            raise bad_request("Failed to parse Content-Range header.")
        if start > sess.committed:
            raise bad_request("Invalid request. The Content-Range header starts at offset %d, but only %d byte(s) "
                              "have been persisted; resend from offset %d." % (start, sess.committed, sess.committed))
        if end is not None and total is not None and end >= total:
            raise bad_request("Invalid request. The Content-Range header's last byte %d is beyond the total object "
                              "size %d." % (end, total))
        declared_len = (end - start + 1) if end is not None else None
        if declared_len is not None and self.body.length is not None and self.body.length != declared_len:
            raise bad_request("Invalid request.  There were %d byte(s) in the request body.  There should have "
                              "been %d byte(s) (starting at offset %d and ending at offset %d) according to the "
                              "Content-Range header." % (self.body.length, declared_len, start, end))
        final_known = whole or (end is not None and total is not None and end + 1 == total)
        if declared_len is not None and not final_known:
            if declared_len < QUANTUM:
                raise bad_request(
                    "Invalid request. The number of bytes uploaded is required to be equal or greater than 262144, "
                    "except for the final request (it's recommended to be the exact multiple of 262144). The "
                    "received request contained %d bytes, which does not meet this requirement." % declared_len)
            if declared_len % QUANTUM and self.store.chunk_policy == "reject":
                raise bad_request(
                    "Invalid request. The number of bytes uploaded is required to be a multiple of 262144, except "
                    "for the final request. The received request contained %d bytes, which does not meet this "
                    "requirement." % declared_len)
        self._receive_chunk(sess, start, end, total, whole, rule)

    def _receive_chunk(self, sess, start, end, total, whole, rule):
        snap = (sess.committed, sess.md5.copy(), sess.crc.copy())
        drop_after = None
        persist = "aligned"
        if rule and rule.get("action") == "drop":
            drop_after = int(rule.get("after_bytes") if rule.get("after_bytes") is not None else 0)
            persist = rule.get("persist", "aligned")
        sess.chunks += 1
        skip = sess.committed - start
        pending = bytearray()
        received = 0
        f = open(sess.path, "r+b")
        try:
            f.seek(sess.committed)
            outcome = None
            try:
                while True:
                    n = IO_BLOCK
                    if drop_after is not None:
                        n = max(1, min(IO_BLOCK, drop_after - received))
                    if drop_after is not None and received >= drop_after:
                        outcome = "drop"
                        break
                    d = self.body.read(n)
                    if not d:
                        if self.body.broken:
                            outcome = "gone"
                        break
                    received += len(d)
                    if skip > 0:
                        if len(d) <= skip:
                            skip -= len(d)
                            continue
                        d = d[skip:]
                        skip = 0
                    pending += d
                    if len(pending) >= QUANTUM:
                        k = len(pending) - len(pending) % QUANTUM
                        mv = memoryview(pending)[:k]
                        f.write(mv)
                        sess.md5.update(mv)
                        sess.crc.update(bytes(mv))
                        mv.release()
                        sess.committed += k
                        del pending[:k]
            except ClientGone:
                outcome = "gone"
            if outcome is None and drop_after is not None:
                outcome = "drop"
            if outcome is not None:
                # Connection lost mid-chunk: whole 256 KiB blocks received so far stay persisted
                # (as Cloud Storage may do), unless the fault asked for nothing to persist.
                if persist == "none":
                    sess.committed, sess.md5, sess.crc = snap
                f.truncate(sess.committed)
                f.close()
                if outcome == "drop":
                    self._drop_connection()
                raise ClientGone()
            body_len = received
            if end is not None and body_len != end - start + 1:
                sess.committed, sess.md5, sess.crc = snap
                f.truncate(sess.committed)
                raise bad_request("Invalid request.  There were %d byte(s) in the request body.  There should have "
                                  "been %d byte(s) (starting at offset %d and ending at offset %d) according to the "
                                  "Content-Range header." % (body_len, end - start + 1, start, end))
            last = start + body_len      # offset after the last byte of this request
            if whole:
                total = last
            if total is not None and last > total:
                sess.committed, sess.md5, sess.crc = snap
                f.truncate(sess.committed)
                raise bad_request("Invalid request. The request body extends beyond the total object size %d." % total)
            if total is not None and last == total:
                if pending:
                    f.write(pending)
                    sess.md5.update(pending)
                    sess.crc.update(bytes(pending))
                    sess.committed += len(pending)
                    pending = bytearray()
                f.truncate(sess.committed)
                f.close()
                sess.total = total
                return self._finalize(sess, rule)
            # Not final: only whole 256 KiB blocks are persisted; a ragged tail is dropped.
            f.truncate(sess.committed)
            if total is not None:
                sess.total = total
        finally:
            if not f.closed:
                f.close()
        if rule and rule.get("action") == "status" and rule.get("commit"):
            raise fault_error(rule)
        self._status_308(sess)

    def _finalize(self, sess, rule):
        md5_b64 = base64.b64encode(sess.md5.digest()).decode()
        crc_b64 = sess.crc.b64()
        gh = parse_goog_hash(self.headers.get_all("X-Goog-Hash"))
        try:
            verify_hashes(gh.get("md5") or sess.spec.md5, gh.get("crc32c") or sess.spec.crc32c, md5_b64, crc_b64)
            with self.store.lock:
                b = self.store.buckets.get(sess.bucket)
            if b is None:
                raise not_found_bucket()
            o = self._commit_object(b, sess.spec, sess.path, sess.committed, md5_b64, crc_b64, sess.preconditions)
        except ApiError:
            sess.state = "failed"
            _unlink(sess.path)
            raise
        sess.state = "complete"
        sess.result = self.object_resource(o)
        if rule and rule.get("action") == "status" and rule.get("commit"):
            raise fault_error(rule)
        self._send_resource(sess.result, [("X-GUploader-UploadID", sess.upload_id)])

    # --- compose

    def _compose(self, bucket_name, dest_name):
        self._fault("object.compose", bucket_name, dest_name)
        tok = self._authenticate("storage.objects.create")
        b = self._bucket_for(bucket_name, "storage.objects.create", tok)
        validate_object_name(dest_name)
        try:
            doc = json.loads(self.body.read_all() or b"{}")
        except ValueError:
            raise bad_request("Parse Error", "parseError")
        sources = doc.get("sourceObjects") if isinstance(doc, dict) else None
        if not sources:
            raise ApiError(400, "required", "Required")
        if len(sources) > MAX_COMPOSE_SOURCES:
            raise bad_request("The number of source components provided (%d) exceeds the maximum (%d)"
                              % (len(sources), MAX_COMPOSE_SOURCES))
        spec = ObjectSpec.from_json(doc.get("destination") or {})
        spec.name = dest_name
        handles = []
        count = 0
        try:
            with self.store.lock:
                for s in sources:
                    o = b.objects.get(s.get("name"))
                    if o is None:
                        raise not_found_object(bucket_name, s.get("name"))
                    if s.get("generation") is not None and str(s["generation"]) != str(o.generation):
                        raise not_found_object(bucket_name, s.get("name"))
                    pre = (s.get("objectPreconditions") or {}).get("ifGenerationMatch")
                    if pre is not None and str(pre) != str(o.generation):
                        raise precondition_failed()
                    handles.append(open(o.path, "rb"))
                    count += o.component_count or 1
                check_preconditions(b.objects.get(dest_name), self.q)

            def chunks():
                for fh in handles:
                    while True:
                        d = fh.read(IO_BLOCK)
                        if not d:
                            break
                        yield d

            path = self.store.new_path("tmp")
            try:
                # md5Hash/crc32c in the destination resource are not checked: gcloud copies them
                # from the first component into the compose request, and Cloud Storage accepts that.
                size, _md5, crc_b64 = self._stream_to_file(chunks(), path)
                o = self._commit_object(b, spec, path, size, None, crc_b64, self.q, component_count=count)
            except BaseException:
                _unlink(path)
                raise
        finally:
            for fh in handles:
                fh.close()
        self._send_resource(self.object_resource(o))

    # --- OAuth2 token endpoint

    def _token_endpoint(self):
        self._kind = "token"
        rule = self.store.take_fault("token")
        if rule:
            if rule.get("action") == "drop":
                self._drop_connection()
            if rule.get("action", "status") == "status":
                status = int(rule.get("status", 503))
                raise OAuthError(status, rule.get("error", "internal_failure"),
                                 rule.get("message", "Backend Error"))
        raw = self.body.read_all(64 * KIB)
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            try:
                form = {k: str(v) for k, v in json.loads(raw).items()}
            except (ValueError, AttributeError):
                raise OAuthError(400, "invalid_request", "Invalid JSON payload.")
        else:
            form = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        if grant != JWT_BEARER_GRANT:
            raise OAuthError(400, "unsupported_grant_type", "Invalid grant_type: %s" % grant)
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError(400, "invalid_request", "Missing required parameter: assertion")
        sa = self.config["service_account"]
        try:
            header, claims, signing_input, sig = split_jwt(assertion)
        except ValueError:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: The assertion is not a well-formed JWT.")
        if header.get("alg") != "RS256":
            raise OAuthError(400, "invalid_grant", "Invalid JWT: unsupported signing algorithm %s."
                             % header.get("alg"))
        if claims.get("iss") != sa["client_email"]:
            raise OAuthError(400, "invalid_grant", "Invalid grant: account not found")
        if not self.config["public_key"].verify_rs256(signing_input, sig):
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        aud = claims.get("aud")
        allowed = set(GOOGLE_TOKEN_AUDIENCES) | {self.config["token_uri"], self.base_url() + "/token"}
        if aud not in allowed:
            raise OAuthError(400, "invalid_grant",
                             "Invalid JWT: Failed audience check. The expected value was %s but the actual value "
                             "was %s" % (self.config["token_uri"], aud))
        now = time.time()
        try:
            iat, exp = int(claims["iat"]), int(claims["exp"])
        except (KeyError, TypeError, ValueError):
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                             "in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        if exp <= now or iat > now + CLOCK_SKEW or exp - iat > 3600 or exp < iat:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                             "in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        if claims.get("target_audience"):
            # An ID token request (gcloud asks for one when a service account is activated).
            return self._send_json(200, {"id_token": self._id_token(claims["target_audience"])},
                                   [("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")])
        scope = str(claims.get("scope") or "").split()
        if not scope:
            raise OAuthError(400, "invalid_scope", "Empty or missing scope not allowed.")
        tok, lifetime = self.store.issue_token(claims.get("sub") or sa["client_email"], set(scope))
        self._principal = sa["client_email"]
        self._send_json(200, {"access_token": tok, "expires_in": int(lifetime), "token_type": "Bearer"},
                        [("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"),
                         ("Pragma", "no-cache")])

    def _id_token(self, audience):
        """An OIDC ID token for the service account. Google signs these with its own keys; this
        server signs with the service account's key (clients read the claims, e.g. exp)."""
        sa = self.config["service_account"]
        now = int(time.time())
        lifetime = int(min(self.store.token_lifetime, 3600))
        header = {"alg": "RS256", "kid": sa.get("private_key_id", ""), "typ": "JWT"}
        claims = {"aud": audience, "azp": sa["client_email"], "email": sa["client_email"],
                  "email_verified": True, "exp": now + lifetime, "iat": now,
                  "iss": "https://accounts.google.com", "sub": sa.get("client_id", sa["client_email"])}
        signing_input = (b64url_encode(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url_encode(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.config["private_key_pem"]],
                             input=signing_input.encode(), capture_output=True, check=True).stdout
        return signing_input + "." + b64url_encode(sig)

    # --- GCE metadata server

    def _metadata_server(self, p):
        flavor = self.headers.get("Metadata-Flavor")
        common = [("Metadata-Flavor", "Google")]
        if self.headers.get("X-Forwarded-For"):
            return self._send(403, b"Request had an X-Forwarded-For header.\n", "text/plain", common)
        if flavor != "Google":
            return self._send(403, b"Missing Metadata-Flavor:Google header.\n", "text/html", common)
        p = p.rstrip("/")
        email = self.config["metadata_email"]
        sa_prefix = "/computeMetadata/v1/instance/service-accounts/"
        if p.startswith(sa_prefix):
            rest = p[len(sa_prefix):]
            acct, _, leaf = rest.partition("/")
            if acct not in ("default", email):
                return self._send(404, b"Not Found\n", "text/html", common)
            if leaf == "token":
                self._kind = "metadata.token"
                rule = self.store.take_fault("metadata.token")
                if rule:
                    if rule.get("action") == "drop":
                        self._drop_connection()
                    return self._send(int(rule.get("status", 503)), b"Service Unavailable\n", "text/plain", common)
                scopes = self.q.get("scopes")
                scope_set = set(s for s in re.split(r"[,\s]+", scopes) if s) if scopes else \
                    {"https://www.googleapis.com/auth/cloud-platform"}
                tok, lifetime = self.store.issue_token(email, scope_set, source="metadata")
                self._principal = email
                return self._send_json(200, {"access_token": tok, "expires_in": int(lifetime),
                                             "token_type": "Bearer"}, common)
            if leaf == "email":
                return self._send(200, email.encode(), "application/text", common)
            if leaf == "scopes":
                return self._send(200, b"https://www.googleapis.com/auth/cloud-platform\n", "application/text", common)
            if leaf == "aliases":
                return self._send(200, b"default\n", "application/text", common)
            if leaf == "":
                if self.q.get("recursive") == "true":
                    return self._send_json(200, {"aliases": ["default"], "email": email,
                                                 "scopes": ["https://www.googleapis.com/auth/cloud-platform"]},
                                           common)
                return self._send(200, b"aliases\nemail\nidentity\nscopes\ntoken\n", "application/text", common)
            return self._send(404, b"Not Found\n", "text/html", common)
        simple = {
            "/computeMetadata/v1/instance/service-accounts": "default/\n%s/\n" % email,
            "/computeMetadata/v1/project/project-id": self.store.project,
            "/computeMetadata/v1/project/numeric-project-id": self.store.project_number,
            "/computeMetadata/v1/instance/id": "1234567890123456789",
            "/computeMetadata/v1/instance/zone": "projects/%s/zones/us-central1-a" % self.store.project_number,
            "/computeMetadata/v1/instance/hostname": "archie-test.c.%s.internal" % self.store.project,
            "/computeMetadata/v1/universe/universe-domain": "googleapis.com",
            "/computeMetadata/v1/instance": "attributes/\nhostname\nid\nservice-accounts/\nzone\n",
            "/computeMetadata/v1": "instance/\nproject/\nuniverse/\n",
            "/computeMetadata/v1/project": "numeric-project-id\nproject-id\n",
        }
        if p in simple:
            return self._send(200, simple[p].encode(), "application/text", common)
        return self._send(404, b"Not Found\n", "text/html", common)

    # --- test control

    def _control(self, op):
        self._kind = "control"
        store = self.store
        raw = self.body.read_all() if self.command in ("POST", "PUT", "DELETE") else b""
        try:
            doc = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return self._send_json(400, {"error": "request body is not JSON"})
        m = self.command
        if op == "health":
            return self._send_json(200, {"ok": True, "crc32c": CRC32C_BACKEND})
        if op == "reset" and m == "POST":
            store.reset()
            for name in self.config.get("initial_buckets", []):
                self._create_bucket(name, store.project)
            return self._send_json(200, {"ok": True})
        if op == "buckets" and m == "POST":
            b = self._create_bucket(doc["name"], doc.get("project", store.project),
                                    doc.get("location", "US"), doc.get("storageClass", "STANDARD"))
            return self._send_json(200, self.bucket_resource(b))
        if op == "buckets" and m == "GET":
            with store.lock:
                return self._send_json(200, {"buckets": sorted(store.buckets)})
        if op == "faults" and m == "POST":
            rules = doc if isinstance(doc, list) else [doc]
            return self._send_json(200, {"faults": [store.add_fault(r) for r in rules]})
        if op == "faults" and m == "GET":
            with store.lock:
                return self._send_json(200, {"faults": list(store.faults)})
        if op == "faults" and m == "DELETE":
            with store.lock:
                store.faults.clear()
            return self._send_json(200, {"ok": True})
        if op == "fail-chunks" and m == "POST":
            mode = str(doc.get("mode", "drop"))
            rule = {"kind": "upload.chunk", "count": int(doc.get("count", 1))}
            if mode == "drop":
                rule.update(action="drop", after_bytes=int(doc.get("after_bytes", 0)),
                            persist=doc.get("persist", "aligned"))
            else:
                rule.update(action="status", status=int(doc.get("status", mode if mode.isdigit() else 503)),
                            commit=bool(doc.get("commit", False)))
            return self._send_json(200, {"faults": [store.add_fault(rule)]})
        if op == "fail-next" and m == "POST":
            rule = {"kind": doc.get("kind", "*"), "count": int(doc.get("count", 1)), "action": "status",
                    "status": int(doc.get("status", 503))}
            for k in ("bucket", "name_regex", "retry_after", "message", "reason", "commit"):
                if k in doc:
                    rule[k] = doc[k]
            return self._send_json(200, {"faults": [store.add_fault(rule)]})
        if op == "token-lifetime" and m == "POST":
            store.token_lifetime = float(doc["seconds"])
            return self._send_json(200, {"token_lifetime": store.token_lifetime})
        if op == "tokens" and m == "POST":
            tok = doc.get("token") or "ya29.archie-" + secrets.token_urlsafe(32)
            scopes = set(doc["scopes"]) if doc.get("scopes") is not None else None
            exp = time.time() + float(doc["expires_in"]) if doc.get("expires_in") is not None else None
            store.add_static_token(tok, doc.get("principal", "test-user@archie.test"), scopes, exp)
            with store.lock:
                store.tokens[tok].source = "control"
            return self._send_json(200, {"token": tok})
        if op == "expire-tokens" and m == "POST":
            now = time.time()
            n = 0
            with store.lock:
                for t in list(store.tokens.values()) + list(store.jwt_cache.values()):
                    if doc.get("token"):
                        if t.token != doc["token"]:
                            continue
                    elif t.source == "static":
                        continue
                    t.expires_at = now - 1
                    n += 1
            return self._send_json(200, {"expired": n})
        if op == "permissions" and m == "POST":
            with store.lock:
                b = store.buckets.get(doc["bucket"])
                if b is None:
                    return self._send_json(404, {"error": "no such bucket"})
                if doc.get("token"):
                    key = "token:" + doc["token"]
                elif doc.get("principal"):
                    key = "principal:" + doc["principal"]
                else:
                    return self._send_json(400, {"error": "token or principal required"})
                access = doc.get("access", "readonly")
                if access == "full":
                    b.access.pop(key, None)
                elif access in ("readonly", "none", "objects"):
                    b.access[key] = access
                else:
                    return self._send_json(400, {"error": "access must be full, readonly, objects or none"})
            return self._send_json(200, {"ok": True})
        if op == "uploads" and m == "GET":
            with store.lock:
                sessions = [s.describe() for s in store.sessions.values()
                            if self.q.get("all") == "1" or s.state == "active"]
            return self._send_json(200, {"uploads": sessions})
        if op == "uploads/expire" and m == "POST":
            with store.lock:
                s = store.sessions.get(doc.get("upload_id", ""))
            if s is None:
                return self._send_json(404, {"error": "no such upload"})
            with s.lock:
                if s.state == "active":
                    s.state = "expired"
                    _unlink(s.path)
            return self._send_json(200, {"ok": True})
        if op == "config" and m == "POST":
            if "chunk_policy" in doc:
                if doc["chunk_policy"] not in ("reject", "truncate"):
                    return self._send_json(400, {"error": "chunk_policy must be reject or truncate"})
                store.chunk_policy = doc["chunk_policy"]
            return self._send_json(200, {"chunk_policy": store.chunk_policy,
                                         "token_lifetime": store.token_lifetime})
        if op == "requests" and m == "GET":
            out = list(store.requests)
            if self.q.get("clear") == "1":
                store.requests.clear()
            return self._send_json(200, {"requests": out})
        if op == "requests" and m == "DELETE":
            store.requests.clear()
            return self._send_json(200, {"ok": True})
        return self._send_json(404, {"error": "unknown control operation %s %s" % (m, op)})


def fault_error(rule):
    status = int(rule.get("status", 503))
    defaults = {
        429: ("rateLimitExceeded", "The rate of change requests to the object exceeds the rate limit. "
                                   "Please reduce the rate of create, update, and delete requests."),
        500: ("backendError", "Backend Error"),
        502: ("backendError", "Bad Gateway"),
        503: ("backendError", "We encountered an internal error. Please try again."),
        504: ("backendError", "Deadline exceeded."),
        408: ("requestTimeout", "Request timeout."),
    }
    reason, message = defaults.get(status, ("backendError", "Injected failure."))
    headers = []
    if rule.get("retry_after") is not None:
        headers.append(("Retry-After", str(rule["retry_after"])))
    return ApiError(status, rule.get("reason", reason), rule.get("message", message), headers=headers)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, socket.timeout, TimeoutError)):
            return
        super().handle_error(request, client_address)


def make_server(port, store, config):
    handler = type("BoundHandler", (Handler,), {"store": store, "config": config})
    return Server(("127.0.0.1", port), handler)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: pick a free one)")
    ap.add_argument("--data-dir", required=True, help="object data lives here (emptied at start)")
    ap.add_argument("--state", help="JSON state file to write (default DATA_DIR/state.json)")
    ap.add_argument("--project", default="archie-test")
    ap.add_argument("--service-account-email", default=None,
                    help="default: archie-test@PROJECT.iam.gserviceaccount.com")
    ap.add_argument("--service-account-key", help="reuse this service-account JSON key instead of generating one")
    ap.add_argument("--metadata-email", default=None,
                    help="principal of metadata-server tokens (default archie-workload@PROJECT.iam...)")
    ap.add_argument("--static-token", action="append", default=[],
                    help="a bearer token accepted forever (repeatable; one is generated if none)")
    ap.add_argument("--static-principal", default="archie-static@archie.test")
    ap.add_argument("--token-lifetime", type=float, default=3600.0, help="seconds (expires_in of issued tokens)")
    ap.add_argument("--chunk-policy", choices=("reject", "truncate"), default="reject",
                    help="non-final resumable chunks >= 256 KiB that are not a multiple of 256 KiB: "
                         "reject with 400, or persist the largest multiple (308 Range shows it)")
    ap.add_argument("--bucket", action="append", default=[], help="create this bucket at start (repeatable)")
    ap.add_argument("--exit-with-parent", action="store_true", help="exit when the parent process dies")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    data_dir = os.path.abspath(args.data_dir)
    os.makedirs(data_dir, exist_ok=True)
    state_path = os.path.abspath(args.state or os.path.join(data_dir, "state.json"))
    state_dir = os.path.dirname(state_path)
    os.makedirs(state_dir, exist_ok=True)
    project = args.project
    sa_email = args.service_account_email or "archie-test@%s.iam.gserviceaccount.com" % project

    store = Store(data_dir, project, args.token_lifetime, args.chunk_policy)
    config = {"verbose": args.verbose, "initial_buckets": list(args.bucket),
              "metadata_email": args.metadata_email or "archie-workload@%s.iam.gserviceaccount.com" % project}
    server = make_server(args.port, store, config)
    port = server.server_address[1]
    endpoint = "http://127.0.0.1:%d" % port
    token_uri = endpoint + "/token"
    config["token_uri"] = token_uri

    if args.service_account_key:
        key_json, key_pem, sa = load_service_account(args.service_account_key, state_dir)
    else:
        key_json, key_pem, sa = generate_service_account(state_dir, token_uri, sa_email, project)
    config["service_account"] = sa
    config["private_key_pem"] = key_pem
    config["public_key"] = RsaPublicKey.from_private_pem(key_pem)

    static_tokens = args.static_token or ["ya29.archie-static-" + secrets.token_urlsafe(24)]
    for t in static_tokens:
        store.add_static_token(t, args.static_principal)
    for name in args.bucket:
        store.buckets[name] = Bucket(name, project)

    state = {
        "endpoint": endpoint,
        "port": port,
        "pid": os.getpid(),
        "data_dir": data_dir,
        "project": project,
        "service_account_key": key_json,
        "service_account_private_key_pem": key_pem,
        "service_account_email": sa["client_email"],
        "token_uri": token_uri,
        "static_token": static_tokens[0],
        "static_tokens": static_tokens,
        "static_principal": args.static_principal,
        "metadata_host": "127.0.0.1:%d" % port,
        "metadata_email": config["metadata_email"],
        "crc32c_backend": CRC32C_BACKEND,
        "chunk_policy": args.chunk_policy,
    }
    write_json_atomic(state_path, state)

    stopping = threading.Event()

    def stop(*_):
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while not stopping.is_set():
                if os.getppid() != parent:
                    stop()
                    return
                time.sleep(0.5)

        threading.Thread(target=watch, daemon=True).start()

    sys.stderr.write("gcs-test-server: listening on %s (crc32c: %s, state: %s)\n"
                     % (endpoint, CRC32C_BACKEND, state_path))
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        _unlink(state_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
