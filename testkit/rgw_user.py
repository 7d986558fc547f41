"""One rig user on one RGW endpoint through the test kit's own SigV4 signer (RgwUser): a
reference S3 client that does not share code with archie's."""
from xml.etree import ElementTree

from testkit.sigv4 import s3_request


class RgwUser:
    """One rig user on one RGW endpoint (or a proxy in front of it), through the rig's own SigV4
    signer: a reference client that does not share code with archie's."""

    def __init__(self, rig, user="archie", endpoint_index=0, endpoint=None):
        self.access, self.secret = rig.ceph.users[user]
        self.endpoint = endpoint or rig.ceph.endpoints[endpoint_index]

    def request(self, method, bucket, key="", **kw):
        """(status, headers with lower-case names, body) of one signed request."""
        return s3_request(self.endpoint, method, f"/{bucket}/{key}" if key else f"/{bucket}", self.access,
                          self.secret, **kw)

    def put(self, bucket, key, body, content_type=None, metadata=None):
        """PutObject; the ETag without quotes."""
        headers = {f"x-amz-meta-{k}": v for k, v in (metadata or {}).items()}
        if content_type:
            headers["content-type"] = content_type
        status, h, answer = self.request("PUT", bucket, key, body=body, headers=headers)
        assert status == 200, (status, answer[:300])
        return h.get("etag", "").strip('"')

    def get(self, bucket, key):
        return self.request("GET", bucket, key)

    def head(self, bucket, key):
        return self.request("HEAD", bucket, key)

    def set_versioning(self, bucket, status="Enabled"):
        body = ('<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f'<Status>{status}</Status></VersioningConfiguration>').encode()
        code, _, answer = self.request("PUT", bucket, query={"versioning": ""}, body=body)
        assert code == 200, (code, answer[:300])

    def history(self, bucket, key):
        """The versions and delete markers of exactly `key`, oldest first: dicts with
        version_id, delete_marker, and for versions etag and archie's source-version marker."""
        code, _, body = self.request("GET", bucket, query={"versions": "", "prefix": key})
        assert code == 200, (code, body[:300])
        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
        out = []
        for element in ElementTree.fromstring(body):
            if element.tag not in (ns + "Version", ns + "DeleteMarker") or element.findtext(ns + "Key") != key:
                continue
            entry = {"version_id": element.findtext(ns + "VersionId"),
                     "delete_marker": element.tag == ns + "DeleteMarker"}
            if not entry["delete_marker"]:
                entry["etag"] = (element.findtext(ns + "ETag") or "").strip('"')
                _, headers, _ = self.request("HEAD", bucket, key, query={"versionId": entry["version_id"]})
                entry["source_version_id"] = headers.get("x-amz-meta-archie-source-version-id")
            out.append(entry)
        return list(reversed(out))

    def delete(self, bucket, key):
        status, _, body = self.request("DELETE", bucket, key)
        assert status in (200, 204), (status, body[:300])
        return status

    def list_keys(self, bucket, prefix="", page_size=1000):
        """Every key under prefix (ListObjectsV2, page_size keys a page, every page)."""
        keys, token = [], None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": str(page_size)}
            if token:
                query["continuation-token"] = token
            status, _, body = self.request("GET", bucket, query=query)
            assert status == 200, (status, body[:300])
            page = ElementTree.fromstring(body)
            keys += [k.text or "" for k in page.findall("{*}Contents/{*}Key")]
            token = page.findtext("{*}NextContinuationToken")
            if not token:
                return keys
