"""The test control API (/_test/..., no auth, JSON in and out): buckets, faults, tokens,
permissions, upload sessions, configuration and the request log. Mixed into the Handler."""

import json
import secrets
import time

from .checksums import CRC32C_BACKEND
from .store import unlink_quietly


class ControlRoutes:
    """/_test/{op}: what the tests set up, inject and inspect."""

    def _control(self, op):
        self._kind = "control"
        store = self.store
        raw = self.body.read_all() if self.command in ("POST", "PUT", "DELETE") else b""
        try:
            doc = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return self._send_json(400, {"error": "request body is not JSON"})
        m = self.command
        if op == "health":
            return self._send_json(200, {"ok": True, "crc32c": CRC32C_BACKEND})
        if op == "reset" and m == "POST":
            store.reset()
            for name in self.config.get("initial_buckets", []):
                self._create_bucket(name, store.project)
            return self._send_json(200, {"ok": True})
        if op == "buckets" and m == "POST":
            b = self._create_bucket(doc["name"], doc.get("project", store.project),
                                    doc.get("location", "US"), doc.get("storageClass", "STANDARD"),
                                    bool(doc["versioning"]) if "versioning" in doc else None)
            return self._send_json(200, self.bucket_resource(b))
        if op == "buckets" and m == "GET":
            with store.lock:
                return self._send_json(200, {"buckets": sorted(store.buckets)})
        if op == "faults" and m == "POST":
            rules = doc if isinstance(doc, list) else [doc]
            return self._send_json(200, {"faults": [store.add_fault(r) for r in rules]})
        if op == "faults" and m == "GET":
            with store.lock:
                return self._send_json(200, {"faults": list(store.faults)})
        if op == "faults" and m == "DELETE":
            with store.lock:
                store.faults.clear()
            return self._send_json(200, {"ok": True})
        if op == "fail-chunks" and m == "POST":
            mode = str(doc.get("mode", "drop"))
            rule = {"kind": "upload.chunk", "count": int(doc.get("count", 1))}
            if mode == "drop":
                rule.update(action="drop", after_bytes=int(doc.get("after_bytes", 0)),
                            persist=doc.get("persist", "aligned"))
            else:
                rule.update(action="status", status=int(doc.get("status", mode if mode.isdigit() else 503)),
                            commit=bool(doc.get("commit", False)))
            return self._send_json(200, {"faults": [store.add_fault(rule)]})
        if op == "fail-next" and m == "POST":
            rule = {"kind": doc.get("kind", "*"), "count": int(doc.get("count", 1)), "action": "status",
                    "status": int(doc.get("status", 503))}
            for k in ("bucket", "name_regex", "retry_after", "message", "reason", "commit"):
                if k in doc:
                    rule[k] = doc[k]
            return self._send_json(200, {"faults": [store.add_fault(rule)]})
        if op == "token-lifetime" and m == "POST":
            store.token_lifetime = float(doc["seconds"])
            return self._send_json(200, {"token_lifetime": store.token_lifetime})
        if op == "tokens" and m == "POST":
            tok = doc.get("token") or "ya29.archie-" + secrets.token_urlsafe(32)
            scopes = set(doc["scopes"]) if doc.get("scopes") is not None else None
            exp = time.time() + float(doc["expires_in"]) if doc.get("expires_in") is not None else None
            store.add_static_token(tok, doc.get("principal", "test-user@archie.test"), scopes, exp)
            with store.lock:
                store.tokens[tok].source = "control"
            return self._send_json(200, {"token": tok})
        if op == "expire-tokens" and m == "POST":
            now = time.time()
            n = 0
            with store.lock:
                for t in list(store.tokens.values()) + list(store.jwt_cache.values()):
                    if doc.get("token"):
                        if t.token != doc["token"]:
                            continue
                    elif t.source == "static":
                        continue
                    t.expires_at = now - 1
                    n += 1
            return self._send_json(200, {"expired": n})
        if op == "permissions" and m == "POST":
            with store.lock:
                b = store.buckets.get(doc["bucket"])
                if b is None:
                    return self._send_json(404, {"error": "no such bucket"})
                if doc.get("token"):
                    key = "token:" + doc["token"]
                elif doc.get("principal"):
                    key = "principal:" + doc["principal"]
                else:
                    return self._send_json(400, {"error": "token or principal required"})
                access = doc.get("access", "readonly")
                if access == "full":
                    b.access.pop(key, None)
                elif access in ("readonly", "none", "objects"):
                    b.access[key] = access
                else:
                    return self._send_json(400, {"error": "access must be full, readonly, objects or none"})
            return self._send_json(200, {"ok": True})
        if op == "uploads" and m == "GET":
            with store.lock:
                sessions = [s.describe() for s in store.sessions.values()
                            if self.q.get("all") == "1" or s.state == "active"]
            return self._send_json(200, {"uploads": sessions})
        if op == "uploads/expire" and m == "POST":
            with store.lock:
                s = store.sessions.get(doc.get("upload_id", ""))
            if s is None:
                return self._send_json(404, {"error": "no such upload"})
            with s.lock:
                if s.state == "active":
                    s.state = "expired"
                    unlink_quietly(s.path)
            return self._send_json(200, {"ok": True})
        if op == "config" and m == "POST":
            if "chunk_policy" in doc:
                if doc["chunk_policy"] not in ("reject", "truncate"):
                    return self._send_json(400, {"error": "chunk_policy must be reject or truncate"})
                store.chunk_policy = doc["chunk_policy"]
            return self._send_json(200, {"chunk_policy": store.chunk_policy,
                                         "token_lifetime": store.token_lifetime})
        if op == "requests" and m == "GET":
            with store.recorded:  # every request already answered is in the log
                store.recorded.wait_for(lambda: store.unrecorded == 0, timeout=5)
            out = list(store.requests)
            if self.q.get("clear") == "1":
                store.requests.clear()
            return self._send_json(200, {"requests": out})
        if op == "requests" and m == "DELETE":
            store.requests.clear()
            return self._send_json(200, {"ok": True})
        return self._send_json(404, {"error": "unknown control operation %s %s" % (m, op)})
