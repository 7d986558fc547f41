"""archie's SigV4 signer against botocore's, request by request.

Servers: none. A fixed-seed generator builds hundreds of awkward requests (object keys with
spaces, '+', '%2F'-looking text, NFC and NFD unicode, '~ = & ? #', leading and doubled '/',
dot segments, 1 KiB keys; repeated and empty query parameters; mixed-case, padded, repeated
headers; session tokens; signed, unsigned and streaming payloads). Each is signed by botocore
(the copy Debian's awscli vendors) at a pinned clock and by tests/tools/sigv4_vectors, and the
canonical request, string to sign, signature and Authorization value must be identical.

Like for like:
- botocore's S3 signer puts the URL path into the canonical request verbatim: the encoding is
  done earlier, by the serializer (percent_encode(key, safe='/~')). So the URL handed to
  botocore is built with that same botocore function, while archie gets the raw path and does
  the encoding itself. Query strings are built with botocore's percent_encode_sequence, which
  keeps repeated names; the signer then sorts the already-encoded pairs, as archie does.
- For the generic (non-S3) dialect both sides get the wire path: botocore normalises it and
  quotes it again; archie is run with s3_path_rules = false and content_sha256_header = false.

Deliberate differences, kept out of the generated requests:
- botocore never signs Expect, User-Agent or X-Amzn-Trace-Id; archie signs whatever headers
  its caller passes (the caller leaves hop-by-hop headers out).
- botocore rewrites a Date header to the signing time; archie signs it as given.
- Header values are ASCII with spaces and tabs as the only blanks: botocore trims with
  str.split(), which also treats \\v, \\f and \\x1c-\\x1f as blanks, archie only SP and HTAB
  (the HTTP definition of whitespace).
Agreed on, and generated both ways: a caller's stale X-Amz-Date, X-Amz-Content-SHA256 and
Authorization are replaced; a caller's X-Amz-Security-Token is replaced only when the
credentials carry a token, and otherwise signed as given.
"""
import calendar
import datetime
import difflib
import hashlib
import json
import os
import random
import string
import subprocess
import types
import unicodedata
import unittest
from unittest import mock

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VECTORS_BIN = os.environ.get("ARCHIE_SIGV4_VECTORS", os.path.join(REPO, "build-test", "tests", "sigv4_vectors"))

try:
    # Debian ships botocore inside awscli; importing awscli installs an alias so that its
    # modules' own "import botocore.x" lines resolve. Importing awscli.botocore.auth directly
    # fails with a circular import, so the top-level names are used after the alias exists.
    import awscli  # noqa: F401
except ImportError:
    awscli = None
try:
    import botocore
    import botocore.auth
    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.utils import percent_encode, percent_encode_sequence
except ImportError as e:
    botocore = None
    BOTOCORE_ERROR = str(e)

SEED = 20150830
S3_CASES = 400
GENERIC_CASES = 150

INSTANTS = [
    datetime.datetime(2015, 8, 30, 12, 36, 0),
    datetime.datetime(2013, 5, 24, 0, 0, 0),
    datetime.datetime(2024, 2, 29, 23, 59, 59),
    datetime.datetime(2038, 1, 19, 3, 14, 8),  # past the 32-bit time_t edge
    datetime.datetime(1999, 12, 31, 23, 59, 59),
]

KEY_PIECES = [
    " ", "  ", "+", "%", "%2F", "%2f", "%25", "%20", "~", "=", "&", "?", "#", "/", "//", ".", "..", "./", "../",
    "*", "$", "@", ":", ",", ";", "!", "'", "(", ")", "[", "]", "{", "}", "|", "\\", "^", "`", '"', "<", ">",
    "-", "_", "\t", "\x01", "\x7f", "\u00a0", "\u1234", "\U0001F600", "\u65e5\u672c\u8a9e", "\u00fc\u00df",
    unicodedata.normalize("NFC", "caf\u00e9"), unicodedata.normalize("NFD", "caf\u00e9"),
    unicodedata.normalize("NFD", "\u00c5ngstr\u00f6m"), "\ufeff", "a+b=c&d", "x?y#z",
]
QUERY_NAMES = ["prefix", "delimiter", "max-keys", "list-type", "continuation-token", "uploadId", "partNumber",
               "versionId", "x-id", "acl", "tagging", "uploads", "Param1", "param1", "PARAM1", "a", "A", "~", ""]
HEADER_NAMES = ["Content-Type", "content-md5", "Content-Length", "Range", "If-Match", "Cache-Control",
                "x-amz-meta-a", "X-Amz-Meta-A", "X-AMZ-META-NOTE", "x-amz-storage-class", "x-amz-acl",
                "X-Amz-Copy-Source", "My-Header1", "my-header1", "X-Custom_Underscore"]
BASE64 = string.ascii_letters + string.digits + "+/"


def fixed_datetime_module(instant):
    """A stand-in for the datetime module inside botocore.auth whose utcnow() is pinned."""

    class Pinned(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return instant

    return types.SimpleNamespace(datetime=Pinned)


def recording(signer_class):
    """The botocore signer, observed: it keeps what it computed during add_auth."""

    class Recording(signer_class):
        def canonical_request(self, request):
            self.seen_canonical_request = super().canonical_request(request)
            return self.seen_canonical_request

        def string_to_sign(self, request, canonical_request):
            self.seen_string_to_sign = super().string_to_sign(request, canonical_request)
            return self.seen_string_to_sign

        def signature(self, string_to_sign, request):
            self.seen_signature = super().signature(string_to_sign, request)
            return self.seen_signature

    return Recording


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def pick(self, seq):
        return self.rng.choice(seq)

    def text(self, pieces=KEY_PIECES, most=12):
        out = []
        for _ in range(self.rng.randint(0, most)):
            if self.rng.random() < 0.4:
                out.append("".join(self.rng.choice(string.ascii_letters + string.digits)
                                   for _ in range(self.rng.randint(1, 6))))
            else:
                out.append(self.pick(pieces))
        return "".join(out)

    def key(self):
        roll = self.rng.random()
        if roll < 0.05:
            return ""
        if roll < 0.12:  # near the 1024-byte S3 limit, multi-byte characters included
            k = ""
            while len(k.encode()) < 900:
                k += self.text()
            return k
        k = self.text()
        if self.rng.random() < 0.2:
            k = "/" + k
        return k

    def raw_path(self):
        key = self.key()
        if self.rng.random() < 0.5:
            return "/" + self.pick(["bucket", "my.bucket", "b-1"]) + "/" + key
        return "/" + key

    def query(self):
        pairs = []
        for _ in range(self.rng.choice([0, 0, 1, 2, 3, 5, 7])):
            name = self.pick(QUERY_NAMES) if self.rng.random() < 0.6 else self.text(most=3)
            value = self.pick(["", "", "1", "2", "1000", "J"]) if self.rng.random() < 0.5 else self.text(most=4)
            pairs.append((name, value))
        if pairs and self.rng.random() < 0.3:
            pairs.append((pairs[0][0], self.text(most=2)))  # a repeated name
        return pairs

    def header_value(self):
        chars = string.ascii_letters + string.digits + string.punctuation
        out = []
        for _ in range(self.rng.randint(0, 8)):
            if self.rng.random() < 0.3:
                out.append("".join(self.rng.choice(" \t") for _ in range(self.rng.randint(1, 4))))
            else:
                out.append("".join(self.rng.choice(chars) for _ in range(self.rng.randint(1, 8))))
        return "".join(out)

    def host(self):
        host = self.pick(["s3.amazonaws.com", "bucket.s3.eu-west-1.amazonaws.com", "127.0.0.1:9000",
                          "minio.internal:7480", "[::1]:9000"])
        return self.pick(["", " ", "  "]) + host + self.pick(["", " ", "\t"])

    def headers(self, has_token, generic):
        headers = [(self.pick(["Host", "host", "HOST"]), self.host())]
        for _ in range(self.rng.choice([0, 1, 2, 3, 4, 6])):
            headers.append((self.pick(HEADER_NAMES), self.header_value()))
        stale = ["X-Amz-Date", "authorization"] + ([] if generic else ["X-Amz-Content-SHA256"])
        if has_token:
            stale.append("x-amz-security-token")
        if self.rng.random() < 0.15:
            headers.append((self.pick(stale), "stale " + self.header_value()))
        if not has_token and self.rng.random() < 0.05:
            headers.append(("X-Amz-Security-Token", "caller-token"))  # signed as given, by both
        self.rng.shuffle(headers)
        return headers

    def credentials(self):
        access = "AKIA" + "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))
        secret = "".join(self.rng.choice(BASE64) for _ in range(40))
        token = None
        if self.rng.random() < 0.4:
            token = "".join(self.rng.choice(BASE64) for _ in range(self.rng.randint(16, 400))) + "=="
        return access, secret, token

    def body(self):
        return bytes(self.rng.getrandbits(8) for _ in range(self.rng.choice([0, 1, 13, 64, 1000, 4099])))


def run_vectors(inputs):
    if not os.path.exists(VECTORS_BIN):
        raise AssertionError(f"sigv4_vectors not found at {VECTORS_BIN}; build it or set ARCHIE_SIGV4_VECTORS")
    feed = "".join(json.dumps(i) + "\n" for i in inputs)
    proc = subprocess.run([VECTORS_BIN], input=feed, capture_output=True, text=True, timeout=120)
    outputs = [json.loads(line) for line in proc.stdout.splitlines()]
    if len(outputs) != len(inputs):
        raise AssertionError(f"sigv4_vectors answered {len(outputs)} of {len(inputs)} lines "
                             f"(exit {proc.returncode}): {proc.stderr}")
    return outputs


def describe_mismatch(index, case, ours, theirs):
    lines = [f"case {index} differs", "input: " + json.dumps(case["input"], ensure_ascii=False),
             "url given to botocore: " + case["url"]]
    for field in ("canonical_request", "string_to_sign", "signature", "authorization"):
        if ours.get(field) != theirs[field]:
            lines.append(f"--- {field}: archie\n{ours.get(field, ours.get('error'))}")
            lines.append(f"--- {field}: botocore\n{theirs[field]}")
            diff = difflib.unified_diff(theirs[field].split("\n"), str(ours.get(field)).split("\n"),
                                        "botocore", "archie", lineterm="")
            lines.append("\n".join(diff))
    return "\n".join(lines)


@unittest.skipIf(botocore is None, "botocore is not importable (Debian package awscli)")
class SigV4AgainstBotocoreTest(unittest.TestCase):
    def sign_with_botocore(self, signer_class, service, region, method, url, headers, body, creds, instant,
                           payload):
        request = AWSRequest(method=method, url=url, data=body)
        for name, value in headers:
            request.headers[name] = value  # HTTPHeaders appends: repeated names are kept in order
        if payload == "unsigned":
            request.context["client_config"] = types.SimpleNamespace(s3={"payload_signing_enabled": False})
        elif payload == "trailer":
            request.context["checksum"] = {"request_algorithm": {"in": "trailer", "name": "x-amz-checksum-crc32"}}
        signer = recording(signer_class)(Credentials(*creds), service, region)
        with mock.patch.object(botocore.auth, "datetime", fixed_datetime_module(instant)):
            signer.add_auth(request)
        return {
            "canonical_request": signer.seen_canonical_request,
            "string_to_sign": signer.seen_string_to_sign,
            "signature": signer.seen_signature,
            "authorization": request.headers["Authorization"],
        }

    def build_cases(self, seed, count, generic):
        gen = Generator(seed)
        cases = []
        for _ in range(count):
            raw_path = gen.raw_path()
            if generic and gen.rng.random() < 0.5:
                raw_path = raw_path.replace("/", gen.pick(["/./", "/../", "//", "/"]), gen.rng.randint(1, 3))
            wire_path = percent_encode(raw_path, safe="/~")
            query = gen.query()
            url = "https://" + gen.host().strip() + wire_path
            if query:
                url += "?" + percent_encode_sequence(query)
            access, secret, token = gen.credentials()
            headers = gen.headers(token is not None, generic)
            method = gen.pick(["GET", "PUT", "HEAD", "DELETE", "POST"])
            region = gen.pick(["us-east-1", "eu-west-1", "ap-southeast-2", "auto", "garage"])
            instant = gen.pick(INSTANTS)
            payload = "signed" if generic else gen.pick(["signed", "signed", "unsigned", "trailer"])
            body = gen.body() if payload != "trailer" else b""
            service = gen.pick(["service", "execute-api", "sts"]) if generic else "s3"
            vector = {
                "method": method, "path": wire_path if generic else raw_path,
                "query": [list(p) for p in query], "headers": [list(h) for h in headers],
                "payload_hash": "", "access_key": access, "secret_key": secret, "session_token": token or "",
                "region": region, "service": service, "time": calendar.timegm(instant.timetuple()),
            }
            if generic:
                vector.update(s3_path_rules=False, content_sha256_header=False)
            if payload == "unsigned":
                vector["payload_hash"] = "UNSIGNED-PAYLOAD"
            elif payload == "trailer":
                vector["payload_hash"] = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            elif gen.rng.random() < 0.5:
                vector["payload_hash"] = hashlib.sha256(body).hexdigest()
            else:
                vector["payload_hex"] = body.hex()  # hashed by archie's incremental hasher
            botocore_out = self.sign_with_botocore(
                SigV4Auth if generic else S3SigV4Auth, service, region, method, url, headers, body,
                (access, secret, token), instant, payload)
            cases.append({"input": vector, "url": url, "botocore": botocore_out})
        return cases

    def check_all(self, cases):
        outputs = run_vectors([c["input"] for c in cases])
        matched = 0
        for i, (case, ours) in enumerate(zip(cases, outputs)):
            theirs = case["botocore"]
            if any(ours.get(f) != theirs[f] for f in theirs):
                self.fail(f"{matched} cases matched before this one\n" + describe_mismatch(i, case, ours, theirs))
            matched += 1
        print(f"\n{matched}/{len(cases)} requests signed identically", flush=True)
        return matched

    def test_s3_requests_sign_exactly_as_botocore_signs_them(self):
        cases = self.build_cases(SEED, S3_CASES, generic=False)
        # The generator must actually produce the awkward inputs it promises.
        paths = [c["input"]["path"] for c in cases]
        self.assertTrue(any("//" in p for p in paths))
        self.assertTrue(any("%2F" in p for p in paths))
        self.assertTrue(any(unicodedata.normalize("NFD", "caf\u00e9") in p for p in paths))
        self.assertTrue(any(len(p.encode()) > 900 for p in paths))
        self.assertTrue(any(c["input"]["session_token"] for c in cases))
        self.assertTrue(any(c["input"]["payload_hash"] == "UNSIGNED-PAYLOAD" for c in cases))
        self.assertTrue(any(len({k for k, _ in c["input"]["query"]}) < len(c["input"]["query"]) for c in cases))
        self.assertTrue(any(v == "" for c in cases for _, v in c["input"]["query"]))
        self.assertEqual(self.check_all(cases), S3_CASES)

    def test_generic_service_requests_sign_exactly_as_botocore_signs_them(self):
        cases = self.build_cases(SEED + 1, GENERIC_CASES, generic=True)
        self.assertTrue(any("/../" in c["input"]["path"] or "/./" in c["input"]["path"] for c in cases))
        self.assertEqual(self.check_all(cases), GENERIC_CASES)

    def test_a_different_clock_or_key_changes_the_signature(self):
        # Guards the harness itself: a pinned clock that was not really pinned, or inputs that
        # did not reach the tool, would make every comparison trivially equal.
        base = {"method": "GET", "path": "/b/k", "query": [], "headers": [["Host", "h"]],
                "payload_hash": "UNSIGNED-PAYLOAD", "access_key": "AK", "secret_key": "SK", "session_token": "",
                "region": "us-east-1", "service": "s3", "time": 1440938160}
        later = dict(base, time=base["time"] + 1)
        other_key = dict(base, secret_key="SK2")
        sigs = {o["signature"] for o in run_vectors([base, later, other_key])}
        self.assertEqual(len(sigs), 3)


if __name__ == "__main__":
    unittest.main()
