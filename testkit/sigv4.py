"""The test kit's own S3 SigV4 signer: one request, signed when keys are given, sent over HTTP
(or HTTPS for an https:// endpoint). Enough for readiness checks, negative-auth tests and a
reference client (RgwUser) that shares no code with archie's."""
import datetime
import hashlib
import hmac
import http.client
import ssl
import urllib.parse

S3_REGION = "us-east-1"


def uri_encode(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def s3_request(endpoint, method, path="/", access_key=None, secret_key=None,
               body=b"", headers=None, query=None, region=S3_REGION, timeout=30.0, ca_file=None):
    """Send one S3 request, SigV4-signed when keys are given.

    path is the unencoded "/bucket/key"; query is a dict or list of pairs; ca_file, a PEM CA
    bundle to verify an https:// endpoint with (default: the system's).
    Returns (status, headers dict with lower-case names, body bytes).
    """
    u = urllib.parse.urlsplit(endpoint)
    host = u.netloc
    if isinstance(body, str):
        body = body.encode()
    enc_path = uri_encode(path, safe="/-_.~")
    pairs = list(query.items()) if isinstance(query, dict) else list(query or [])
    canon_query = "&".join("%s=%s" % (uri_encode(str(k)), uri_encode(str(v)))
                           for k, v in sorted((str(k), str(v)) for k, v in pairs))
    hdrs = {k.lower(): str(v).strip() for k, v in (headers or {}).items()}
    hdrs["host"] = host
    if access_key is not None:
        now = datetime.datetime.now(datetime.timezone.utc)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        day = amz_date[:8]
        payload = hashlib.sha256(body).hexdigest()
        hdrs["x-amz-date"] = amz_date
        hdrs["x-amz-content-sha256"] = payload
        names = sorted(hdrs)
        canon_headers = "".join("%s:%s\n" % (n, hdrs[n]) for n in names)
        signed = ";".join(names)
        canon_req = "\n".join([method, enc_path, canon_query, canon_headers, signed, payload])
        scope = "%s/%s/s3/aws4_request" % (day, region)
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canon_req.encode()).hexdigest()])
        key = ("AWS4" + secret_key).encode()
        for part in (day, region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        hdrs["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                                 % (access_key, scope, signed, sig))
    target = enc_path + ("?" + canon_query if canon_query else "")
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                           context=ssl.create_default_context(cafile=ca_file))
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        send = dict(hdrs)
        del send["host"]  # http.client adds Host itself (same value)
        conn.request(method, target, body=body if body or method in ("PUT", "POST") else None,
                     headers=send)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()
