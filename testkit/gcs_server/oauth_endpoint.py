"""The OAuth2 token endpoint (POST /token, JWT-bearer grant), as Google's is for a service
account key. Mixed into the Handler."""

import json
import time
import urllib.parse

from .auth import CLOCK_SKEW
from .errors import OAuthError
from .jwt import encode_jwt, split_jwt
from .limits import KIB

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_AUDIENCES = {
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
}


class OAuthEndpoint:
    """POST /token: access tokens for service-account assertions (and ID tokens)."""

    def _token_endpoint(self):
        self._kind = "token"
        rule = self.store.take_fault("token")
        if rule:
            if rule.get("action") == "drop":
                self._drop_connection()
            if rule.get("action", "status") == "status":
                status = int(rule.get("status", 503))
                raise OAuthError(status, rule.get("error", "internal_failure"),
                                 rule.get("message", "Backend Error"))
        raw = self.body.read_all(64 * KIB)
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype:
            try:
                form = {k: str(v) for k, v in json.loads(raw).items()}
            except (ValueError, AttributeError):
                raise OAuthError(400, "invalid_request", "Invalid JSON payload.")
        else:
            form = dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError(400, "invalid_request", "Missing required parameter: grant_type")
        if grant != JWT_BEARER_GRANT:
            raise OAuthError(400, "unsupported_grant_type", "Invalid grant_type: %s" % grant)
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError(400, "invalid_request", "Missing required parameter: assertion")
        sa = self.config["service_account"]
        try:
            header, claims, signing_input, sig = split_jwt(assertion)
        except ValueError:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: The assertion is not a well-formed JWT.")
        if header.get("alg") != "RS256":
            raise OAuthError(400, "invalid_grant", "Invalid JWT: unsupported signing algorithm %s."
                             % header.get("alg"))
        if claims.get("iss") != sa["client_email"]:
            raise OAuthError(400, "invalid_grant", "Invalid grant: account not found")
        if not self.config["public_key"].verify_rs256(signing_input, sig):
            raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        aud = claims.get("aud")
        allowed = set(GOOGLE_TOKEN_AUDIENCES) | {self.config["token_uri"], self.base_url() + "/token"}
        if aud not in allowed:
            raise OAuthError(400, "invalid_grant",
                             "Invalid JWT: Failed audience check. The expected value was %s but the actual value "
                             "was %s" % (self.config["token_uri"], aud))
        now = time.time()
        try:
            iat, exp = int(claims["iat"]), int(claims["exp"])
        except (KeyError, TypeError, ValueError):
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                             "in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        if exp <= now or iat > now + CLOCK_SKEW or exp - iat > 3600 or exp < iat:
            raise OAuthError(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                             "in a reasonable timeframe. Check your iat and exp values in the JWT claim.")
        if claims.get("target_audience"):
            # An ID token request (gcloud asks for one when a service account is activated).
            return self._send_json(200, {"id_token": self._id_token(claims["target_audience"])},
                                   [("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")])
        scope = str(claims.get("scope") or "").split()
        if not scope:
            raise OAuthError(400, "invalid_scope", "Empty or missing scope not allowed.")
        tok, lifetime = self.store.issue_token(claims.get("sub") or sa["client_email"], set(scope))
        self._principal = sa["client_email"]
        self._send_json(200, {"access_token": tok, "expires_in": int(lifetime), "token_type": "Bearer"},
                        [("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"),
                         ("Pragma", "no-cache")])

    def _id_token(self, audience):
        """An OIDC ID token for the service account. Google signs these with its own keys; this
        server signs with the service account's key (clients read the claims, e.g. exp)."""
        sa = self.config["service_account"]
        now = int(time.time())
        lifetime = int(min(self.store.token_lifetime, 3600))
        header = {"alg": "RS256", "kid": sa.get("private_key_id", ""), "typ": "JWT"}
        claims = {"aud": audience, "azp": sa["client_email"], "email": sa["client_email"],
                  "email_verified": True, "exp": now + lifetime, "iat": now,
                  "iss": "https://accounts.google.com", "sub": sa.get("client_id", sa["client_email"])}
        return encode_jwt(header, claims, self.config["private_key_pem"])
