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
