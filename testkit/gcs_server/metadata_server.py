"""The GCE metadata server (/computeMetadata/v1/...): workload-identity tokens and the
instance and project facts clients read. Mixed into the Handler."""

import re


class MetadataServer:
    """GET /computeMetadata/... with Metadata-Flavor: Google."""

    def _metadata_server(self, p):
        flavor = self.headers.get("Metadata-Flavor")
        common = [("Metadata-Flavor", "Google")]
        if self.headers.get("X-Forwarded-For"):
            return self._send(403, b"Request had an X-Forwarded-For header.\n", "text/plain", common)
        if flavor != "Google":
            return self._send(403, b"Missing Metadata-Flavor:Google header.\n", "text/html", common)
        p = p.rstrip("/")
        email = self.config["metadata_email"]
        sa_prefix = "/computeMetadata/v1/instance/service-accounts/"
        if p.startswith(sa_prefix):
            rest = p[len(sa_prefix):]
            acct, _, leaf = rest.partition("/")
            if acct not in ("default", email):
                return self._send(404, b"Not Found\n", "text/html", common)
            if leaf == "token":
                self._kind = "metadata.token"
                rule = self.store.take_fault("metadata.token")
                if rule:
                    if rule.get("action") == "drop":
                        self._drop_connection()
                    return self._send(int(rule.get("status", 503)), b"Service Unavailable\n", "text/plain", common)
                scopes = self.q.get("scopes")
                scope_set = set(s for s in re.split(r"[,\s]+", scopes) if s) if scopes else \
                    {"https://www.googleapis.com/auth/cloud-platform"}
                tok, lifetime = self.store.issue_token(email, scope_set, source="metadata")
                self._principal = email
                return self._send_json(200, {"access_token": tok, "expires_in": int(lifetime),
                                             "token_type": "Bearer"}, common)
            if leaf == "email":
                return self._send(200, email.encode(), "application/text", common)
            if leaf == "scopes":
                return self._send(200, b"https://www.googleapis.com/auth/cloud-platform\n", "application/text", common)
            if leaf == "aliases":
                return self._send(200, b"default\n", "application/text", common)
            if leaf == "":
                if self.q.get("recursive") == "true":
                    return self._send_json(200, {"aliases": ["default"], "email": email,
                                                 "scopes": ["https://www.googleapis.com/auth/cloud-platform"]},
                                           common)
                return self._send(200, b"aliases\nemail\nidentity\nscopes\ntoken\n", "application/text", common)
            return self._send(404, b"Not Found\n", "text/html", common)
        simple = {
            "/computeMetadata/v1/instance/service-accounts": "default/\n%s/\n" % email,
            "/computeMetadata/v1/project/project-id": self.store.project,
            "/computeMetadata/v1/project/numeric-project-id": self.store.project_number,
            "/computeMetadata/v1/instance/id": "1234567890123456789",
            "/computeMetadata/v1/instance/zone": "projects/%s/zones/us-central1-a" % self.store.project_number,
            "/computeMetadata/v1/instance/hostname": "archie-test.c.%s.internal" % self.store.project,
            "/computeMetadata/v1/universe/universe-domain": "googleapis.com",
            "/computeMetadata/v1/instance": "attributes/\nhostname\nid\nservice-accounts/\nzone\n",
            "/computeMetadata/v1": "instance/\nproject/\nuniverse/\n",
            "/computeMetadata/v1/project": "numeric-project-id\nproject-id\n",
        }
        if p in simple:
            return self._send(200, simple[p].encode(), "application/text", common)
        return self._send(404, b"Not Found\n", "text/html", common)
