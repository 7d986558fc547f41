"""The server's state: buckets and their objects (data in files under the data directory),
resumable upload sessions, bearer tokens, injected faults and the request log."""

import collections
import hashlib
import os
import re
import secrets
import shutil
import threading
import time

from .checksums import Crc32c
from .errors import bad_request
from .formats import rfc3339


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
    def __init__(self, name, project, location="US", storage_class="STANDARD", versioning=None):
        self.name = name
        self.project = project
        self.location = location
        self.storage_class = storage_class
        self.created = self.updated = time.time()
        self.metageneration = 1
        self.versioning = versioning   # None: never set (not shown); True | False: versioning.enabled
        self.objects = {}              # name -> the live StoredObject
        self.noncurrent = {}           # name -> [StoredObject], generation ascending (versions.py)
        self.access = {}               # "token:T" / "principal:P" -> "readonly" | "none"


class StoredObject:
    __slots__ = ("bucket", "name", "generation", "metageneration", "size", "md5", "crc32c", "path",
                 "content_type", "content_encoding", "content_disposition", "content_language",
                 "cache_control", "custom_time", "metadata", "created", "updated", "component_count",
                 "storage_class", "kms_key_name", "time_deleted")

    def __init__(self):
        self.metageneration = 1
        self.time_deleted = None   # set when the generation becomes noncurrent
        self.md5 = None
        self.content_type = "application/octet-stream"
        self.content_encoding = None
        self.content_disposition = None
        self.content_language = None
        self.cache_control = None
        self.custom_time = None
        self.metadata = {}
        self.component_count = None
        self.storage_class = None  # None: the bucket's default class
        self.kms_key_name = None


# The storage classes the JSON API accepts for an object (the legacy ones included).
STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE", "MULTI_REGIONAL", "REGIONAL",
                   "DURABLE_REDUCED_AVAILABILITY")

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
        self.storage_class = None
        self.kms_key_name = None  # the insert's ?kmsKeyName=

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
        sc = doc.get("storageClass")
        if sc is not None:
            if not isinstance(sc, str) or sc.upper() not in STORAGE_CLASSES:
                raise bad_request("Invalid argument.", "invalid")
            spec.storage_class = sc.upper()
        return spec

    def take_query_name(self, qname):
        """?name= names the object; a name in the metadata too must be the same."""
        if qname is not None:
            if self.name is not None and self.name != qname:
                raise bad_request("Value '%s' in content does not agree with value '%s'." % (self.name, qname))
            self.name = qname


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
        # Requests answered whose log entry is not written yet (http_handler._record).
        self.recorded = threading.Condition()
        self.unrecorded = 0
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

    # --- everything

    def reset(self):
        """Forgets every bucket, object, session, fault, issued token and logged request."""
        with self.lock:
            for b in self.buckets.values():
                for o in b.objects.values():
                    unlink_quietly(o.path)
                for generations in b.noncurrent.values():
                    for o in generations:
                        unlink_quietly(o.path)
            for s in self.sessions.values():
                unlink_quietly(s.path)
            self.buckets.clear()
            self.sessions.clear()
            self.faults.clear()
            self.jwt_cache.clear()
            self.tokens = {k: v for k, v in self.tokens.items() if v.source == "static"}
            self.requests.clear()


def unlink_quietly(path):
    """Removes a data file; one already gone (or never made) is no error."""
    try:
        os.unlink(path)
    except OSError:
        pass
