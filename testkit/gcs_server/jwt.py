"""RS256 JSON Web Tokens: verifying them with the service account's public key, taking them
apart, and signing new ones (openssl CLI)."""

import hashlib
import hmac
import json
import re
import subprocess

from .formats import b64url_decode, b64url_encode

# DER prefix of DigestInfo(SHA-256) in an EMSA-PKCS1-v1_5 encoded message (RFC 8017, 9.2).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


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


def sign_rs256(signing_input, key_pem):
    """RS256 signature of signing_input with the PEM private key (openssl CLI)."""
    out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key_pem], input=signing_input,
                         capture_output=True, check=True)
    return out.stdout


def encode_jwt(header, claims, key_pem):
    """A compact JWS: header and claims (dicts, in their order) signed RS256 with key_pem."""
    signing_input = (b64url_encode(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url_encode(json.dumps(claims, separators=(",", ":")).encode()))
    return signing_input + "." + b64url_encode(sign_rs256(signing_input.encode("ascii"), key_pem))


def make_jwt(claims, key_pem, kid=None):
    """A JWT as a Google client library signs its assertions and self-signed tokens."""
    header = {"alg": "RS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    return encode_jwt(header, claims, key_pem)
