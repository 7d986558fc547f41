"""Who a request comes from and what it may do: bearer tokens (issued, static or a service
account's self-signed JWT), OAuth scopes, and per-bucket access levels set through the
control API. Mixed into the Handler (http_handler.py)."""

import re
import time

from .errors import ApiError, invalid_credentials, not_found_bucket
from .jwt import split_jwt
from .store import Token

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
CLOCK_SKEW = 300               # seconds a JWT's iat may lie in the future
SELF_SIGNED_AUDIENCES = {
    "https://storage.googleapis.com/", "https://storage.googleapis.com",
    "https://www.googleapis.com/", "https://www.googleapis.com",
}


class AuthChecks:
    """Authentication and authorization of JSON API requests."""

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
