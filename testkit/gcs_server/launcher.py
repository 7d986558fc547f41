"""Starts the GCS test server (python3 -m testkit.gcs_server) as a subprocess and drives it,
for Python tests.

    from testkit.gcs_server.launcher import GcsTestServer

    with GcsTestServer() as gcs:
        gcs.create_bucket("archie-dst")
        status, headers, body = gcs.request("GET", "/storage/v1/b/archie-dst")
        gcs.fail_chunks(1, mode="drop", after_bytes=300 * 1024)
        token = gcs.fetch_token()          # real JWT-bearer flow against /token

The server listens on a free 127.0.0.1 port chosen by the kernel (it reports the port in
its state file); it dies with the Python process that started it (PR_SET_PDEATHSIG).
Standard library only; run with /usr/bin/python3. `python3 -m testkit.gcs_server.launcher [-v]`
starts one in the foreground and prints its state.
"""

import ctypes
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

from .jwt import make_jwt

SERVER_MODULE = __package__      # run with python3 -m; PYTHONPATH names the folder that holds testkit/
IMPORT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

STORAGE_SCOPE = "https://www.googleapis.com/auth/devstorage.full_control"


def _die_with_parent():
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)   # PR_SET_PDEATHSIG
    except OSError:
        pass


def _server_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (IMPORT_ROOT, env.get("PYTHONPATH")) if p)
    return env


def _state_fact(key):
    """A read-only attribute: the server's state file's `key`."""
    return property(lambda self: self.state[key])


class GcsTestServer:
    """One GCS test server process on 127.0.0.1 with its own data directory."""

    def __init__(self, data_dir=None, extra_args=(), token_lifetime=None, chunk_policy=None,
                 buckets=(), verbose=False, startup_timeout=30.0):
        self._own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix="archie-gcs-")
        self.extra_args = list(extra_args)
        if token_lifetime is not None:
            self.extra_args += ["--token-lifetime", str(token_lifetime)]
        if chunk_policy is not None:
            self.extra_args += ["--chunk-policy", chunk_policy]
        for b in buckets:
            self.extra_args += ["--bucket", b]
        if verbose:
            self.extra_args.append("--verbose")
        self.startup_timeout = startup_timeout
        self.proc = None
        self.state = None
        self.log_path = os.path.join(self.dir, "server.log")

    # --- lifecycle

    def start(self):
        state_path = os.path.join(self.dir, "state", "state.json")
        if os.path.exists(state_path):
            os.unlink(state_path)
        cmd = [PYTHON, "-m", SERVER_MODULE, "--port", "0", "--data-dir", os.path.join(self.dir, "data"),
               "--state", state_path, "--exit-with-parent"] + self.extra_args
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     env=_server_env(), preexec_fn=_die_with_parent, start_new_session=True)
        deadline = time.time() + self.startup_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the GCS test server exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
            if os.path.exists(state_path):
                with open(state_path) as f:
                    self.state = json.load(f)
                try:
                    self.control("GET", "health")
                    return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("the GCS test server did not start in %ss:\n%s" % (self.startup_timeout, self.log_tail()))

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def close(self):
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    # --- facts from the state file

    endpoint = _state_fact("endpoint")
    port = _state_fact("port")
    static_token = _state_fact("static_token")
    sa_key_path = _state_fact("service_account_key")
    sa_private_key_pem = _state_fact("service_account_private_key_pem")
    sa_email = _state_fact("service_account_email")
    token_uri = _state_fact("token_uri")

    # --- HTTP

    def connection(self, timeout=60):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, token="static", query=None, timeout=60):
        """One request on a fresh connection; returns (status, headers dict lower-cased, body bytes).

        token: "static" (the server's static token), None (no Authorization) or a token string.
        """
        if query:
            path = path + ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        h = dict(headers or {})
        if token == "static":
            token = self.static_token
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json; charset=UTF-8")
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def json_request(self, method, path, body=None, headers=None, token="static", query=None):
        status, hdrs, data = self.request(method, path, body, headers, token, query)
        doc = json.loads(data) if data.strip() else None
        return status, hdrs, doc

    def control(self, method, op, payload=None):
        conn = self.connection(30)
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            conn.request(method, "/_test/" + op, body=body,
                         headers={"Content-Type": "application/json"} if body else {})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError("control %s %s -> %d %s" % (method, op, resp.status, data[:300]))
            return json.loads(data)
        finally:
            conn.close()

    # --- control endpoints

    def reset(self):
        return self.control("POST", "reset", {})

    def create_bucket(self, name, **kw):
        return self.control("POST", "buckets", dict(kw, name=name))

    def generations(self, bucket, name):
        """Every generation of object `name` (versions=true), oldest first: object resources,
        noncurrent ones with timeDeleted."""
        items, token = [], None
        while True:
            query = {"versions": "true", "prefix": name}
            if token:
                query["pageToken"] = token
            status, _, doc = self.json_request("GET", "/storage/v1/b/%s/o" % urllib.parse.quote(bucket, safe=""),
                                               query=query)
            if status != 200:
                raise RuntimeError("listing generations of %s/%s -> %d %s" % (bucket, name, status, doc))
            items += [o for o in doc.get("items", []) if o["name"] == name]
            token = doc.get("nextPageToken")
            if not token:
                return sorted(items, key=lambda o: int(o["generation"]))

    def add_fault(self, **rule):
        return self.control("POST", "faults", rule)["faults"][0]

    def clear_faults(self):
        return self.control("DELETE", "faults")

    def faults(self):
        return self.control("GET", "faults")["faults"]

    def fail_chunks(self, count=1, mode="drop", after_bytes=0, persist="aligned", status=None, commit=False):
        """Next `count` resumable chunk PUTs: mode "drop" cuts the connection after `after_bytes`
        body bytes; mode "status" (or a status code) answers with that error instead."""
        payload = {"count": count, "mode": str(mode)}
        if str(mode) == "drop":
            payload.update(after_bytes=after_bytes, persist=persist)
        else:
            payload.update(status=int(status or (mode if str(mode).isdigit() else 503)), commit=commit)
        return self.control("POST", "fail-chunks", payload)

    def fail_next(self, count=1, status=503, kind="*", **kw):
        return self.control("POST", "fail-next", dict(kw, count=count, status=status, kind=kind))

    def set_token_lifetime(self, seconds):
        return self.control("POST", "token-lifetime", {"seconds": seconds})

    def expire_tokens(self, token=None):
        return self.control("POST", "expire-tokens", {"token": token} if token else {})

    def add_token(self, token=None, principal=None, scopes=None, expires_in=None):
        payload = {}
        for k, v in (("token", token), ("principal", principal), ("scopes", scopes), ("expires_in", expires_in)):
            if v is not None:
                payload[k] = v
        return self.control("POST", "tokens", payload)["token"]

    def set_permission(self, bucket, access="readonly", token=None, principal=None):
        payload = {"bucket": bucket, "access": access}
        if token:
            payload["token"] = token
        if principal:
            payload["principal"] = principal
        return self.control("POST", "permissions", payload)

    def pending_uploads(self, include_finished=False):
        return self.control("GET", "uploads" + ("?all=1" if include_finished else ""))["uploads"]

    def expire_upload(self, upload_id):
        return self.control("POST", "uploads/expire", {"upload_id": upload_id})

    def set_config(self, **kw):
        return self.control("POST", "config", kw)

    def requests_log(self, clear=False):
        return self.control("GET", "requests" + ("?clear=1" if clear else ""))["requests"]

    # --- OAuth2 JWT-bearer flow, as a Google client library does it

    def make_assertion(self, scope=STORAGE_SCOPE, key_pem=None, lifetime=3600, iat=None, aud=None, iss=None):
        now = int(time.time()) if iat is None else iat
        claims = {"iss": iss or self.sa_email, "scope": scope, "aud": aud or self.token_uri,
                  "iat": now, "exp": now + lifetime}
        return make_jwt(claims, key_pem or self.sa_private_key_pem)

    def token_request(self, assertion, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer"):
        body = urllib.parse.urlencode({"grant_type": grant_type, "assertion": assertion}).encode()
        conn = self.connection(30)
        try:
            conn.request("POST", "/token", body=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def fetch_token(self, scope=STORAGE_SCOPE):
        status, doc = self.token_request(self.make_assertion(scope))
        if status != 200:
            raise RuntimeError("token endpoint said %d: %s" % (status, doc))
        return doc["access_token"]


def main():
    """Ad-hoc: start a server in the foreground and print its state until Ctrl-C."""
    with GcsTestServer(verbose="-v" in sys.argv) as gcs:
        print(json.dumps(gcs.state, indent=2), flush=True)
        try:
            while gcs.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
