"""An HTTP proxy on 127.0.0.1 in front of an S3 server that answers every ranged GET with
only the first half of the range asked, with a Content-Range naming that shorter range: a
legal HTTP answer that a reader must either complete or refuse, never pad.

Requests are forwarded unchanged (the Host header included, so SigV4 signatures still
verify); only 206 answers are cut. `ranged_gets` and `cut_answers` count what it saw."""
import http.client
import http.server
import re
import threading

from testkit.net import LoopbackServer, free_port

_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class HalfRangeProxy(LoopbackServer):
    def __init__(self, upstream_host, upstream_port):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.ranged_gets = 0
        self.cut_answers = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=60)
                try:
                    upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() not in _HOP_BY_HOP:
                            upstream.putheader(name, value)
                    upstream.endheaders(body)
                    answer = upstream.getresponse()
                    data = answer.read()
                    # A HEAD answer's Content-Length is the object's size: kept as it is.
                    headers = [(k, v) for k, v in answer.getheaders()
                               if k.lower() not in _HOP_BY_HOP and (self.command == "HEAD" or k.lower() != "content-length")]
                    status = answer.status
                finally:
                    upstream.close()
                if self.command == "GET" and self.headers.get("Range"):
                    with proxy._lock:
                        proxy.ranged_gets += 1
                    found = next((v for k, v in headers if k.lower() == "content-range"), None)
                    m = _RANGE.fullmatch(found or "")
                    if status == 206 and m and len(data) > 1:
                        first, total = int(m.group(1)), m.group(3)
                        data = data[: len(data) // 2]
                        headers = [(k, v) for k, v in headers if k.lower() != "content-range"]
                        headers.append(("Content-Range", f"bytes {first}-{first + len(data) - 1}/{total}"))
                        with proxy._lock:
                            proxy.cut_answers += 1
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                if self.command != "HEAD":
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self._serve_http(Handler)

    def stop(self):
        self._stop_http()
