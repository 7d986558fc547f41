"""Buckets: the bucket resource and get, list, insert, patch (versioning), delete. Mixed into
the Handler."""

import json
import time

from .errors import ApiError, bad_request
from .formats import bucket_etag, rfc3339
from .naming import BUCKET_NAME_RE
from .preconditions import check_bucket_preconditions
from .request_body import parse_json
from .store import Bucket


def versioning_setting(doc):
    """versioning.enabled from a bucket resource body: True or False; None when the body
    does not mention versioning. A null versioning (PATCH's "clear this") turns it off."""
    if "versioning" not in doc:
        return None
    v = doc["versioning"]
    if v is None:
        return False
    if not isinstance(v, dict):
        raise bad_request("Invalid value for versioning: %s" % json.dumps(v))
    enabled = v.get("enabled")
    if enabled is None:
        return False
    if not isinstance(enabled, bool):
        raise bad_request("Invalid value for versioning.enabled: %s" % json.dumps(enabled))
    return enabled


class BucketRoutes:
    """The bucket resource and its requests."""

    def bucket_resource(self, b):
        r = {
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
            "updated": rfc3339(b.updated),
            "softDeletePolicy": {"retentionDurationSeconds": "0"},
            "iamConfiguration": {
                "bucketPolicyOnly": {"enabled": True},
                "uniformBucketLevelAccess": {"enabled": True},
                "publicAccessPrevention": "inherited",
            },
            "locationType": "multi-region",
            "rpo": "DEFAULT",
        }
        if b.versioning is not None:
            r["versioning"] = {"enabled": b.versioning}
        return r

    def _bucket_get(self, name):
        self._fault("bucket.get", name)
        tok = self._authenticate("storage.buckets.get", "bucket")
        b = self._bucket_for(name, "storage.buckets.get", tok, "bucket")
        self._send_resource(self.bucket_resource(b))

    def _project_request(self, kind, permission):
        """A request on the project's buckets (list, insert): checks and the ?project= it needs."""
        self._fault(kind)
        tok = self._authenticate(permission, "project")
        self._authorize(tok, None, permission)
        if not self.q.get("project"):
            raise ApiError(400, "required", "Required parameter: project")

    def _bucket_list(self):
        self._project_request("bucket.list", "storage.buckets.list")
        prefix = self.q.get("prefix", "")
        with self.store.lock:
            items = [self.bucket_resource(b) for n, b in sorted(self.store.buckets.items()) if n.startswith(prefix)]
        out = {"kind": "storage#buckets"}
        if items:
            out["items"] = items
        self._send_resource(out)

    def _bucket_insert(self):
        self._project_request("bucket.insert", "storage.buckets.create")
        doc = parse_json(self.body.read_all())
        name = doc.get("name") if isinstance(doc, dict) else None
        if not name:
            raise ApiError(400, "required", "Required")
        b = self._create_bucket(name, self.q["project"], doc.get("location") or "US",
                                doc.get("storageClass") or "STANDARD", versioning_setting(doc))
        self._send_resource(self.bucket_resource(b))

    def _create_bucket(self, name, project, location="US", storage_class="STANDARD", versioning=None):
        if not BUCKET_NAME_RE.match(name) or ".." in name:
            raise bad_request("Invalid bucket name: '%s'" % name)
        with self.store.lock:
            if name in self.store.buckets:
                raise ApiError(409, "conflict",
                               "Your previous request to create the named bucket succeeded and you already own it.")
            b = Bucket(name, project, location.upper(), storage_class.upper(), versioning)
            self.store.buckets[name] = b
        return b

    def _bucket_patch(self, name):
        """Of the bucket's writable fields only versioning is kept; the others are ignored."""
        self._fault("bucket.patch", name)
        tok = self._authenticate("storage.buckets.update", "bucket")
        b = self._bucket_for(name, "storage.buckets.update", tok, "bucket")
        doc = parse_json(self.body.read_all())
        if not isinstance(doc, dict):
            raise bad_request("Parse Error", "parseError")
        versioning = versioning_setting(doc)
        with self.store.lock:
            check_bucket_preconditions(b, self.q)
            if versioning is not None:
                b.versioning = versioning
            b.metageneration += 1
            b.updated = time.time()
            res = self.bucket_resource(b)
        self._send_resource(res)

    def _bucket_delete(self, name):
        self._fault("bucket.delete", name)
        tok = self._authenticate("storage.buckets.delete", "bucket")
        b = self._bucket_for(name, "storage.buckets.delete", tok, "bucket")
        with self.store.lock:
            if b.objects or b.noncurrent:   # noncurrent generations count too
                raise ApiError(409, "conflict", "The bucket you tried to delete is not empty.")
            self.store.buckets.pop(name, None)
        self._send(204)
