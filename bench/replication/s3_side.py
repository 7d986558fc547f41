"""One S3 endpoint with one set of credentials (the source or the destination side) and the
housekeeping the benchmark does there: create a bucket, list, batch-delete a prefix. Requests
are signed and sent by the test kit's signer (testkit/sigv4.py), over http or https."""
import base64
import hashlib
import http.client
import time
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as xml_escape

from testkit.sigv4 import s3_request


class S3Side:
    """One S3 endpoint with one set of credentials (source or destination side)."""

    def __init__(self, name, endpoint, access_key, secret_key, region="us-east-1", provider="Other",
                 ca_file=None):
        self.name = name
        self.endpoint = endpoint.rstrip("/")
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.provider = provider
        self.ca_file = ca_file
        u = urllib.parse.urlsplit(self.endpoint)
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port

    def request(self, method, path, query=(), body=b"", headers=None, timeout=120):
        """path: unencoded '/bucket/key'. Returns (status, body bytes); a 5xx answer or a broken
        connection is tried again, four times in all."""
        for attempt in range(4):
            try:
                status, _, data = s3_request(self.endpoint, method, path, self.access_key, self.secret_key,
                                             body=body, headers=headers, query=query, region=self.region,
                                             timeout=timeout, ca_file=self.ca_file)
            except (OSError, http.client.HTTPException):
                if attempt == 3:
                    raise
                time.sleep(0.5 * (attempt + 1))
                continue
            if status >= 500 and attempt < 3:
                time.sleep(0.5 * (attempt + 1))
                continue
            return status, data
        raise RuntimeError("unreachable")

    def ensure_bucket(self, bucket):
        status, body = self.request("PUT", "/" + bucket)
        if status == 200 or (status == 409 and b"BucketAlreadyOwnedByYou" in body):
            return
        if status == 409:
            raise RuntimeError("bucket %s exists and is owned by someone else on %s" % (bucket, self.endpoint))
        raise RuntimeError("create bucket %s on %s: HTTP %d %s" % (bucket, self.endpoint, status, body[:300]))

    def list(self, bucket, prefix=""):
        """[(key, size, etag)] under prefix, every page."""
        out, token = [], None
        while True:
            q = [("list-type", "2"), ("prefix", prefix), ("max-keys", "1000")]
            if token:
                q.append(("continuation-token", token))
            status, body = self.request("GET", "/" + bucket, q)
            if status != 200:
                raise RuntimeError("list %s/%s on %s: HTTP %d %s" % (bucket, prefix, self.endpoint, status, body[:300]))
            root = ET.fromstring(body)
            ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            for c in root.findall(ns + "Contents"):
                out.append((c.findtext(ns + "Key"), int(c.findtext(ns + "Size") or 0),
                            (c.findtext(ns + "ETag") or "").strip('"')))
            if (root.findtext(ns + "IsTruncated") or "false").lower() != "true":
                return out
            token = root.findtext(ns + "NextContinuationToken")
            if not token:
                return out

    def delete_prefix(self, bucket, prefix):
        """Batch-delete every key under prefix (DeleteObjects, 1000 a request); count deleted."""
        if not prefix:
            raise ValueError("refusing to empty a whole bucket")
        keys = [k for k, _, _ in self.list(bucket, prefix)]
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            body = ("<Delete><Quiet>true</Quiet>%s</Delete>" % "".join(
                "<Object><Key>%s</Key></Object>" % xml_escape(k) for k in chunk)).encode()
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            status, data = self.request("POST", "/" + bucket, [("delete", "")], body,
                                        {"content-md5": md5, "content-type": "application/xml"})
            if status != 200 or b"<Error>" in data:
                raise RuntimeError("delete under %s/%s: HTTP %d %s" % (bucket, prefix, status, data[:300]))
        return len(keys)
