"""Test servers for the AWS temporary-credential sources, on 127.0.0.1 with random ports.

* ``StsServer``       - STS ``AssumeRoleWithWebIdentity`` (the IRSA call) and ``AssumeRole``
                        (a profile's role_arn + source_profile; SigV4-signed, checked against
                        ``keys``): form-encoded POST (or GET with a query), answered with the
                        documented XML response or ``ErrorResponse`` document.
* ``ImdsServer``      - EC2 instance metadata, IMDSv2: ``PUT /latest/api/token`` with the
                        ``X-aws-ec2-metadata-token-ttl-seconds`` header, then
                        ``/latest/meta-data/iam/security-credentials/[ROLE]`` with the
                        ``X-aws-ec2-metadata-token`` header. ``hop_limit_exceeded`` drops the
                        answer to the token PUT, as a hop limit of 1 does for a container.
* ``ContainerServer`` - the ECS / EKS Pod Identity credentials endpoint: GET with an
                        ``Authorization`` header, JSON answer.

What they hand out comes from an issuer:

* ``FixedKeyIssuer``  - the given key and secret with a fresh random session token each time.
  RGW (without its STS enabled) ignores the token's content but checks the signature, which
  covers the ``x-amz-security-token`` header, so these work against the rig's RGW.
* ``RgwKeyIssuer``    - a new S3 key pair on an RGW user for every issue (radosgw-admin), removed
  when it expires: RGW then refuses it (``InvalidAccessKeyId``), so expiry is real and a client
  that fails to refresh in time fails visibly.

The wire formats follow the AWS documentation; tests/integration/test_credential_servers.py
points botocore at each server and checks it gets the same credentials out.

Python 3 standard library only.
"""
import datetime
import hashlib
import hmac
import http.server
import json
import secrets
import string
import threading
import time
import urllib.parse
import uuid

from testkit.net import LoopbackServer, free_port

STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def iso8601(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Issued:
    def __init__(self, access_key_id, secret_access_key, session_token, expiration):
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.session_token = session_token
        self.expiration = expiration  # unix seconds

    def as_tuple(self):
        return (self.access_key_id, self.secret_access_key, self.session_token)


def _random_token():
    # Shaped like AWS session tokens: long base64 with '/', '+' and '='.
    return "FwoGZXIvYXdzE" + secrets.token_urlsafe(96).replace("-", "+").replace("_", "/") + "=="


class FixedKeyIssuer:
    """The same key pair every time, a new session token each time; with ``token`` given, the
    very same credentials (token and expiry) every time, so two clients can be compared."""

    def __init__(self, access_key_id, secret_access_key, lifetime=3600, token=None):
        self.access_key_id, self.secret_access_key, self.lifetime = access_key_id, secret_access_key, lifetime
        self._constant = Issued(access_key_id, secret_access_key, token,
                                int(time.time()) + lifetime) if token else None
        self.issued = []

    def issue(self):
        i = self._constant or Issued(self.access_key_id, self.secret_access_key, _random_token(),
                                     int(time.time()) + self.lifetime)
        self.issued.append(i)
        return i

    def close(self):
        pass


class RgwKeyIssuer:
    """A fresh RGW S3 key per issue, deleted when it expires (checked every 0.5 s)."""

    def __init__(self, ceph, uid, lifetime=60):
        self.ceph, self.uid, self.lifetime = ceph, uid, lifetime
        self.issued = []
        self.revoked = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, daemon=True)
        self._reaper.start()

    def issue(self):
        ak = "TMP" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(17))
        sk = secrets.token_urlsafe(30)
        self.ceph.radosgw_admin("key", "create", "--uid", self.uid, "--key-type", "s3",
                                "--access-key", ak, "--secret", sk)
        i = Issued(ak, sk, _random_token(), int(time.time()) + self.lifetime)
        with self._lock:
            self.issued.append(i)
        return i

    def revoke(self, i):
        """Deletes the key now, before its expiry (a revoked session)."""
        self.ceph.radosgw_admin("key", "rm", "--uid", self.uid, "--key-type", "s3",
                                "--access-key", i.access_key_id, check=False)
        with self._lock:
            self.revoked.append(i)

    def _reap(self):
        while not self._stop.wait(0.5):
            now = time.time()
            with self._lock:
                due = [i for i in self.issued if i.expiration <= now and i not in self.revoked]
            for i in due:
                self.revoke(i)

    def close(self):
        self._stop.set()
        self._reaper.join(timeout=5)


class _Server(LoopbackServer):
    """A threaded HTTP server whose handler calls self.handle(request) -> (status, headers, body)."""

    def __init__(self, issuer):
        self.issuer = issuer
        self.port = free_port()
        self.requests = []  # (method, path, headers dict lower-case, body bytes)
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer._lock:
                    outer.requests.append((self.command, self.path, headers, body))
                answer = outer.handle(self.command, self.path, headers, body)
                if answer is None:  # no answer at all (a dropped packet)
                    time.sleep(30)
                    self.close_connection = True
                    return
                status, hdrs, data = answer
                if isinstance(data, str):
                    data = data.encode()
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _serve

        self._serve_http(Handler)

    def stop(self):
        self._stop_http()
        self.issuer.close()

    def count(self, method=None, path_prefix=""):
        with self._lock:
            return sum(1 for m, p, _, _ in self.requests
                       if (method is None or m == method) and p.startswith(path_prefix))


class StsServer(_Server):
    """AssumeRoleWithWebIdentity. ``accept_token(token) -> bool`` decides whether a web identity
    token is valid (default: any non-empty one); the tokens seen are kept in ``tokens``."""

    def __init__(self, issuer, accept_token=None, keys=None):
        super().__init__(issuer)
        self.accept_token = accept_token or (lambda t: bool(t))
        self.tokens = []
        self.keys = dict(keys or {})  # AssumeRole callers: access key id -> secret
        self.assumed = []  # (role ARN, session name, external id, the caller's access key id)

    def _signature_check(self, method, path, headers, body):
        """The caller's access key when the SigV4 signature (service sts) is right, else None."""
        auth = headers.get("authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return None
        fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        scope = fields.get("Credential", "").split("/")
        if len(scope) != 5 or scope[3] != "sts" or scope[0] not in self.keys:
            return None
        access_key, day, region = scope[0], scope[1], scope[2]
        signed = fields.get("SignedHeaders", "").split(";")
        if "host" not in signed or any(h not in headers for h in signed):
            return None
        canonical_headers = "".join("%s:%s\n" % (h, " ".join(headers[h].split())) for h in signed)
        u = urllib.parse.urlsplit(path)
        canonical = "\n".join([method, u.path or "/", u.query, canonical_headers, ";".join(signed),
                               hashlib.sha256(body).hexdigest()])
        amz_date = headers.get("x-amz-date", "")
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join(scope[1:]),
                             hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + self.keys[access_key]).encode()
        for part in (day, region, "sts", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        good = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return access_key if hmac.compare_digest(good, fields.get("Signature", "")) else None

    def _assume_role(self, method, path, headers, body, params):
        caller = self._signature_check(method, path, headers, body)
        if caller is None:
            return self._error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match")
        for name in ("RoleArn", "RoleSessionName"):
            if not params.get(name):
                return self._error(400, "MissingParameter", "The request must contain the parameter %s" % name)
        self.assumed.append((params["RoleArn"], params["RoleSessionName"], params.get("ExternalId"), caller))
        i = self.issuer.issue()
        xml = ('<AssumeRoleResponse xmlns="%s">\n  <AssumeRoleResult>\n'
               '    <AssumedRoleUser><AssumedRoleId>AROAEXAMPLE:%s</AssumedRoleId>'
               '<Arn>%s</Arn></AssumedRoleUser>\n'
               '    <Credentials>\n      <AccessKeyId>%s</AccessKeyId>\n      <SecretAccessKey>%s</SecretAccessKey>\n'
               '      <SessionToken>%s</SessionToken>\n      <Expiration>%s</Expiration>\n    </Credentials>\n'
               '  </AssumeRoleResult>\n  <ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>\n'
               '</AssumeRoleResponse>\n'
               % (STS_NS, _xml_escape(params["RoleSessionName"]), _xml_escape(params["RoleArn"]),
                  _xml_escape(i.access_key_id), _xml_escape(i.secret_access_key), _xml_escape(i.session_token),
                  iso8601(i.expiration), uuid.uuid4()))
        return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": str(uuid.uuid4())}, xml

    def _error(self, status, code, message, kind="Sender"):
        body = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n'
                '    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
                % (STS_NS, kind, code, _xml_escape(message), uuid.uuid4()))
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": str(uuid.uuid4())}, body

    def handle(self, method, path, headers, body):
        u = urllib.parse.urlsplit(path)
        if method == "POST":
            params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        elif method == "GET":
            params = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        else:
            return self._error(405, "InvalidAction", "method %s is not supported" % method)
        if params.get("Action") == "AssumeRole" and params.get("Version") == "2011-06-15":
            return self._assume_role(method, path, headers, body, params)
        if params.get("Action") != "AssumeRoleWithWebIdentity":
            return self._error(400, "InvalidAction", "Could not find operation %s" % params.get("Action"))
        if params.get("Version") != "2011-06-15":
            return self._error(400, "InvalidParameterValue", "Version must be 2011-06-15")
        for name in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
            if not params.get(name):
                return self._error(400, "MissingParameter",
                                   "The request must contain the parameter %s" % name)
        session = params["RoleSessionName"]
        if not (2 <= len(session) <= 64) or any(c not in string.ascii_letters + string.digits + "+=,.@-_"
                                                for c in session):
            return self._error(400, "ValidationError", "1 validation error detected: Value at "
                               "'roleSessionName' failed to satisfy constraint")
        token = params["WebIdentityToken"]
        self.tokens.append(token)
        if not self.accept_token(token):
            return self._error(400, "InvalidIdentityToken", "Couldn't retrieve verification key from your "
                               "identity provider")
        i = self.issuer.issue()
        role = params["RoleArn"].rsplit("/", 1)[-1]
        account = params["RoleArn"].split(":")[4] if params["RoleArn"].count(":") >= 5 else "123456789012"
        xml = ('<AssumeRoleWithWebIdentityResponse xmlns="%s">\n'
               '  <AssumeRoleWithWebIdentityResult>\n'
               '    <Audience>sts.amazonaws.com</Audience>\n'
               '    <AssumedRoleUser>\n'
               '      <AssumedRoleId>AROA%s:%s</AssumedRoleId>\n'
               '      <Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn>\n'
               '    </AssumedRoleUser>\n'
               '    <Provider>arn:aws:iam::%s:oidc-provider/oidc.example</Provider>\n'
               '    <Credentials>\n'
               '      <AccessKeyId>%s</AccessKeyId>\n'
               '      <SecretAccessKey>%s</SecretAccessKey>\n'
               '      <SessionToken>%s</SessionToken>\n'
               '      <Expiration>%s</Expiration>\n'
               '    </Credentials>\n'
               '    <SubjectFromWebIdentityToken>system:serviceaccount:archie:archie</SubjectFromWebIdentityToken>\n'
               '  </AssumeRoleWithWebIdentityResult>\n'
               '  <ResponseMetadata>\n'
               '    <RequestId>%s</RequestId>\n'
               '  </ResponseMetadata>\n'
               '</AssumeRoleWithWebIdentityResponse>\n'
               % (STS_NS, "EXAMPLE", _xml_escape(session), account, _xml_escape(role), _xml_escape(session),
                  account, _xml_escape(i.access_key_id), _xml_escape(i.secret_access_key),
                  _xml_escape(i.session_token), iso8601(i.expiration), uuid.uuid4()))
        return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": str(uuid.uuid4())}, xml


def _credentials_json(i, imds):
    doc = {}
    if imds:
        doc.update({"Code": "Success", "LastUpdated": iso8601(time.time()), "Type": "AWS-HMAC"})
    else:
        doc["RoleArn"] = "arn:aws:iam::123456789012:role/archie"
    doc.update({"AccessKeyId": i.access_key_id, "SecretAccessKey": i.secret_access_key,
                "Token": i.session_token, "Expiration": iso8601(i.expiration)})
    return json.dumps(doc, indent=2)


class ImdsServer(_Server):
    """IMDSv2 with tokens required (``HttpTokens: required``)."""

    CREDS = "/latest/meta-data/iam/security-credentials/"

    def __init__(self, issuer, role="archie-node-role", hop_limit_exceeded=False):
        super().__init__(issuer)
        self.role = role
        self.hop_limit_exceeded = hop_limit_exceeded
        self._tokens = {}  # token -> expiry (monotonic)

    def handle(self, method, path, headers, body):
        text = {"Content-Type": "text/plain"}
        if path == "/latest/api/token":
            if method != "PUT":
                return 405, text, ""
            if "x-forwarded-for" in headers:
                return 403, text, ""
            try:
                ttl = int(headers.get("x-aws-ec2-metadata-token-ttl-seconds", ""))
            except ValueError:
                return 400, text, ""
            if not 1 <= ttl <= 21600:
                return 400, text, ""
            if self.hop_limit_exceeded:
                return None
            token = secrets.token_urlsafe(42) + "=="
            self._tokens[token] = time.monotonic() + ttl
            return 200, dict(text, **{"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)}), token
        if method not in ("GET", "HEAD"):
            return 405, text, ""
        token = headers.get("x-aws-ec2-metadata-token")
        if token is None or self._tokens.get(token, 0) < time.monotonic():
            return 401, text, ""
        if path == self.CREDS:
            return 200, text, self.role
        if path == self.CREDS + self.role:
            return 200, text, _credentials_json(self.issuer.issue(), imds=True)
        return 404, {"Content-Type": "text/html"}, "<html><body><h1>404 - Not Found</h1></body></html>"


class ContainerServer(_Server):
    """ECS / EKS Pod Identity credentials at ``path``; ``authorization`` is the token the
    Authorization header must carry (a callable returning it, to follow a rotated file)."""

    def __init__(self, issuer, authorization=None, path="/v1/credentials"):
        super().__init__(issuer)
        self.authorization = authorization
        self.path = path

    def handle(self, method, path, headers, body):
        if method != "GET" or urllib.parse.urlsplit(path).path != self.path:
            return 404, {"Content-Type": "application/json"}, '{"message":"not found"}'
        want = self.authorization() if callable(self.authorization) else self.authorization
        if want is not None:
            got = headers.get("authorization")
            if got is None:
                return 401, {"Content-Type": "application/json"}, '{"message":"missing Authorization"}'
            if got != want:
                return 403, {"Content-Type": "application/json"}, '{"message":"invalid Authorization"}'
        return 200, {"Content-Type": "application/json"}, _credentials_json(self.issuer.issue(), imds=False)

    @property
    def full_uri(self):
        return self.url + self.path
