"""The HTTP handler: request plumbing (bodies, answers, the request log, fault rules) and the
routing of each path to the resource mixins it is made of."""

import http.server
import json
import socket
import struct
import sys
import time
import traceback
import urllib.parse

from .auth import AuthChecks
from .buckets import BucketRoutes
from .control import ControlRoutes
from .errors import ApiError, ClientGone, ConnectionDropped, OAuthError, bad_request, fault_error
from .formats import rfc3339
from .limits import DRAIN_LIMIT
from .metadata_server import MetadataServer
from .oauth_endpoint import OAuthEndpoint
from .objects import ObjectRoutes
from .partial_response import apply_fields, parse_fields
from .request_body import Body
from .resumable_uploads import ResumableUploads
from .store import Store
from .uploads import UploadRoutes


class Handler(AuthChecks, BucketRoutes, ObjectRoutes, UploadRoutes, ResumableUploads, OAuthEndpoint,
              MetadataServer, ControlRoutes, http.server.BaseHTTPRequestHandler):
    """One connection's requests. The plumbing and routing are here; each resource's
    requests are answered by the mixin named for it (they use this class's self.store,
    self.config, self.q, self.body and the _send* and _fault methods)."""

    protocol_version = "HTTP/1.1"
    server_version = "gcs-test-server"
    sys_version = ""
    timeout = 120              # seconds a connection may sit idle or stall mid-body

    store: Store = None        # set on the subclass by make_server
    config: dict = None

    def version_string(self):
        return self.server_version

    # --- plumbing

    def log_message(self, fmt, *args):
        if self.config.get("verbose"):
            sys.stderr.write("gcs-test-server: %s - %s\n" % (self.address_string(), fmt % args))

    def send_response(self, code, message=None):
        # (getattr: the base class answers malformed request lines before _dispatch runs.)
        if not getattr(self, "_answered", True) and not getattr(self, "raw_path", "/_test/").startswith("/_test/"):
            # Answered but not yet in the request log (_record runs after the body is sent):
            # the control endpoint waits for these, so a test reading the log right after
            # its request returned finds it there.
            self._answered = True
            with self.store.recorded:
                self.store.unrecorded += 1
        self._status = code
        if message is None:
            message = {308: "Resume Incomplete", 499: "Client Closed Request"}.get(code)
        super().send_response(code, message)

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_PUT(self):
        self._dispatch()

    def do_DELETE(self):
        self._dispatch()

    def do_PATCH(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def base_url(self):
        host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]
        return "http://" + host

    def _dispatch(self):
        self._status = None
        self._answered = False
        self._error = None
        self._must_close = False
        self._principal = None
        self._kind = None
        started = time.time()
        split = urllib.parse.urlsplit(self.path)
        self.raw_path = split.path
        self.q = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        self.body = None
        try:
            self.body = Body(self.rfile, self.headers)
            self._route()
        except ApiError as e:
            self._error = e.message
            self._send_api_error(e)
        except OAuthError as e:
            self._error = "%s: %s" % (e.error, e.description)
            self._send_json(e.status, {"error": e.error, "error_description": e.description})
        except ClientGone:
            self.close_connection = True
        except ConnectionDropped:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            if self._status is None:
                try:
                    self._send_api_error(ApiError(500, "backendError", "Backend Error"))
                except OSError:
                    self.close_connection = True
            else:
                self.close_connection = True
        finally:
            if self.body is not None and not self.body.eof and not self.close_connection:
                # A handler answered without reading the body and did not ask to close.
                self.close_connection = True
            self._record(started)
            if self._answered:
                with self.store.recorded:
                    self.store.unrecorded -= 1
                    self.store.recorded.notify_all()

    def _record(self, started):
        if self.raw_path.startswith("/_test/"):
            return
        hdrs = {}
        for k in ("Content-Type", "Content-Length", "Content-Range", "Range", "X-Goog-Hash",
                  "X-Upload-Content-Type", "X-Upload-Content-Length", "Transfer-Encoding",
                  "Metadata-Flavor", "User-Agent", "x-goog-api-client"):
            v = self.headers.get(k)
            if v is not None:
                hdrs[k] = v
        auth = self.headers.get("Authorization")
        if auth:
            hdrs["Authorization"] = auth[:20] + ("..." if len(auth) > 20 else "")
        self.store.requests.append({
            "time": rfc3339(started), "method": self.command, "path": self.raw_path, "query": self.q,
            "kind": self._kind, "status": self._status, "principal": self._principal,
            "bytes_in": self.body.consumed if self.body else 0, "headers": hdrs, "error": self._error,
            "ms": int((time.time() - started) * 1000),
        })

    def _settle_body(self):
        """Before answering: finish reading a small unread body, or plan to close the connection."""
        if self.body is None or self.body.eof:
            return
        if self.body.length is not None and self.body.remaining > DRAIN_LIMIT:
            self._must_close = True
            return
        if not self.body.drain(DRAIN_LIMIT):
            self._must_close = True

    def _send(self, status, body=b"", content_type=None, headers=()):
        self._settle_body()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self._must_close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status, obj, headers=()):
        data = json.dumps(obj, indent=1).encode() + b"\n"
        self._send(status, data, "application/json; charset=UTF-8", headers)

    def _send_resource(self, obj, headers=()):
        fields = self.q.get("fields")
        if fields:
            try:
                obj = apply_fields(obj, parse_fields(fields))
            except ValueError:
                raise bad_request("Invalid field selection %s" % fields, "invalidParameter")
        self._send_json(200, obj, headers)

    def _send_api_error(self, e):
        if e.status == 304:
            self._send(304, b"", None, e.headers)
            return
        self._send_json(e.status, e.body(), e.headers)

    def _drop_connection(self):
        """Cuts the connection without an answer (RST) — a fault injection."""
        self.close_connection = True
        self._status = "dropped"
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise ConnectionDropped()

    def _fault(self, kind, bucket=None, name=None, handle_status=True):
        """Applies a matching generic fault rule; returns the rule for kind-specific handling."""
        self._kind = kind
        rule = self.store.take_fault(kind, bucket, name)
        if rule is None:
            return None
        delay = float(rule.get("delay", 0) or 0)
        if delay:
            time.sleep(delay)
        action = rule.get("action", "status")
        if action == "delay":
            return None
        if action == "drop" and rule.get("after_bytes") is None:
            self._drop_connection()
        if action == "status" and handle_status and not rule.get("commit"):
            raise fault_error(rule)
        return rule

    # --- routing

    def _route(self):
        p = self.raw_path
        m = self.command
        if p.startswith("/_test/"):
            return self._control(p[len("/_test/"):])
        if p == "/token" and m == "POST":
            return self._token_endpoint()
        if p.startswith("/computeMetadata/") or p == "/computeMetadata":
            return self._metadata_server(p)
        if p in ("/", "/computeMetadata/v1/"):
            return self._send(200, b"OK\n", "text/plain", [("Metadata-Flavor", "Google")])
        for prefix in ("/storage/v1/", "/download/storage/v1/", "/upload/storage/v1/",
                       "/resumable/upload/storage/v1/"):
            if p.startswith(prefix):
                rest = p[len(prefix):]
                segs = rest.split("/")
                # The discovery document's resumable path (used by apitools, hence gcloud) is
                # /resumable/upload/storage/v1/...; it behaves like /upload/storage/v1/.
                return self._api(prefix.replace("/resumable/upload/", "/upload/"), segs)
        raise ApiError(404, "notFound", "Not Found")

    def _api(self, prefix, segs):
        m = self.command
        if not segs or segs[0] != "b":
            raise ApiError(404, "notFound", "Not Found")
        if len(segs) == 1 or (len(segs) == 2 and segs[1] == ""):
            if prefix != "/storage/v1/":
                raise ApiError(404, "notFound", "Not Found")
            if m == "GET":
                return self._bucket_list()
            if m == "POST":
                return self._bucket_insert()
            raise ApiError(405, "methodNotAllowed", "Method not allowed")
        bucket = urllib.parse.unquote(segs[1])
        if len(segs) == 2:
            if prefix != "/storage/v1/":
                raise ApiError(404, "notFound", "Not Found")
            if m in ("GET", "HEAD"):
                return self._bucket_get(bucket)
            if m == "PATCH":
                return self._bucket_patch(bucket)
            if m == "DELETE":
                return self._bucket_delete(bucket)
            raise ApiError(405, "methodNotAllowed", "Method not allowed")
        if segs[2] != "o":
            raise ApiError(404, "notFound", "Not Found")
        if len(segs) == 3 or (len(segs) == 4 and segs[3] == ""):
            if prefix == "/upload/storage/v1/":
                if m == "POST":
                    return self._upload_post(bucket)
                if m == "PUT":
                    return self._upload_put(bucket)
                if m == "DELETE":
                    return self._upload_cancel(bucket)
                raise ApiError(405, "methodNotAllowed", "Method not allowed")
            if prefix == "/storage/v1/" and m == "GET":
                return self._object_list(bucket)
            if prefix == "/storage/v1/" and m == "POST":
                # objects.insert on the metadata path creates an empty object (metadata only).
                return self._object_insert_metadata_only(bucket)
            raise ApiError(405, "methodNotAllowed", "Method not allowed")
        raw_name = "/".join(segs[3:])
        if prefix == "/storage/v1/" and m == "POST" and len(segs) >= 5 and segs[-1] == "compose":
            return self._compose(bucket, urllib.parse.unquote("/".join(segs[3:-1])))
        name = urllib.parse.unquote(raw_name)
        if prefix == "/download/storage/v1/":
            if m in ("GET", "HEAD"):
                return self._object_get(bucket, name, media=True)
            raise ApiError(405, "methodNotAllowed", "Method not allowed")
        if prefix != "/storage/v1/":
            raise ApiError(404, "notFound", "Not Found")
        if m in ("GET", "HEAD"):
            return self._object_get(bucket, name, media=(self.q.get("alt") == "media"))
        if m == "DELETE":
            return self._object_delete(bucket, name)
        if m in ("PATCH", "PUT"):
            return self._object_patch(bucket, name)
        raise ApiError(405, "methodNotAllowed", "Method not allowed")
