"""An HTTP forward proxy on 127.0.0.1, the kind a corporate network puts between its servers
and the internet (squid): clients send it absolute-form requests ("GET http://host:port/p")
for plain HTTP and CONNECT for TLS, optionally with Basic proxy credentials.

The proxy, not the client, resolves names: `hosts` maps the "name:port" authorities the client
uses (names like s3.archie.test that exist in no DNS) to the real 127.0.0.1 addresses they
stand for. A client that bypassed the proxy cannot reach them at all, and one that used the
proxy is seen in `requests`, so a test can tell the two apart.

Requests are forwarded as sent (the Host header included, so SigV4 signatures still verify)
except that the request line becomes origin-form and the hop-by-hop Proxy-Authorization and
Proxy-Connection headers are dropped. Keep-alive client connections carry request after
request; each request gets a fresh upstream connection, closed once its response is read.
CONNECT tunnels relay bytes untouched, so TLS runs end to end between client and server."""
import base64
import binascii
import socket
import threading
import urllib.parse

from testkit.net import LOOPBACK
from testkit.proxies.relay import RelayServer, shutdown

_MAX_LINE = 64 * 1024
_MAX_HEADERS = 200
_DROPPED = {"proxy-authorization", "proxy-connection"}
_REASONS = {400: "Bad Request", 407: "Proxy Authentication Required", 502: "Bad Gateway"}


class ForwardProxy(RelayServer):
    """hosts: {"name:port": (host, port)}; credentials: None or (user, password), then every
    request needs `Proxy-Authorization: Basic ...` or gets 407. Unknown authorities get 502.

    `requests` lists every request seen (refused ones too) as {"method", "authority",
    "target", "proxy_authorization"}; authority is the client's "name:port" (port 80 added
    when an http:// URL names none), target the request target as sent."""

    realm = "archie-test"

    def __init__(self, hosts, credentials=None, upstream_timeout=60):
        super().__init__()
        # Names are case-insensitive in DNS, so they are here too.
        self.hosts = {k.lower(): (h, int(p)) for k, (h, p) in hosts.items()}
        self.credentials = credentials
        self.upstream_timeout = upstream_timeout
        self.requests = []

    @property
    def endpoint(self):
        return f"http://{LOOPBACK}:{self.port}"

    def url(self, user=None, password=None):
        """The proxy URL a client is configured with, credentials (percent-encoded) in its
        userinfo if given."""
        if user is None:
            return self.endpoint
        q = lambda text: urllib.parse.quote(text, safe="")
        return f"http://{q(user)}:{q(password or '')}@{LOOPBACK}:{self.port}"

    def authorization(self, user=None, password=None):
        """The Proxy-Authorization value for these (default: the proxy's own) credentials."""
        if user is None:
            user, password = self.credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")

    def requests_to(self, authority):
        with self._lock:
            return [r for r in self.requests if (r["authority"] or "").lower() == authority.lower()]

    def reset(self):
        with self._lock:
            self.requests = []

    # ---- plumbing
    def _record(self, method, authority, target, proxy_authorization):
        with self._lock:
            self.requests.append({"method": method, "authority": authority, "target": target,
                                  "proxy_authorization": proxy_authorization})

    def _authorized(self, value):
        if self.credentials is None:
            return True
        if not value:
            return False
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and (user, password) == tuple(self.credentials)

    def _serve(self, client):
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = _Reader(client)
        try:
            while not self._stop.is_set():
                if not self._one_request(client, reader):
                    break
        except (OSError, _BadMessage):
            pass
        finally:
            self._close(client)

    def _one_request(self, client, reader):
        """Serves one request from the client; False when the client connection must end."""
        line = reader.readline()
        while line in (b"\r\n", b"\n"):  # RFC 9112: ignore blank lines before a request
            line = reader.readline()
        if not line:
            return False
        parts = line.decode("latin-1").rstrip("\r\n").split(" ")
        if len(parts) != 3:
            _answer(client, 400)
            return False
        method, target, version = parts
        headers = reader.headers()
        proxy_auth = _header(headers, "proxy-authorization")

        if method.upper() == "CONNECT":
            authority, rest = target, ""
        else:
            authority, rest = _split_absolute(target)
            if authority is None:  # origin-form or https://: not a proxy request we serve
                self._record(method, _header(headers, "host"), target, proxy_auth)
                _answer(client, 400, b"absolute-form http:// request or CONNECT expected\n")
                return False
        self._record(method, authority, target, proxy_auth)

        keep_alive = _keep_alive(version, headers)
        if not self._authorized(proxy_auth):
            return self._refuse(client, reader, method, headers, keep_alive, 407,
                                [f'Proxy-Authenticate: Basic realm="{self.realm}"'])
        address = self.hosts.get(authority.lower())
        if address is None:
            return self._refuse(client, reader, method, headers, keep_alive, 502,
                                body=f"unknown host {authority}\n".encode())
        try:
            upstream = socket.create_connection(address, timeout=self.upstream_timeout)
        except OSError as e:
            return self._refuse(client, reader, method, headers, keep_alive, 502,
                                body=f"cannot reach {authority}: {e}\n".encode())
        self._track(upstream)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if method.upper() == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                upstream.settimeout(None)
                self._tunnel(client, reader, upstream)
                return False
            return self._forward(client, reader, upstream, method, rest, version, headers, keep_alive)
        finally:
            self._close(upstream)

    def _refuse(self, client, reader, method, headers, keep_alive, status, extra=(), body=b""):
        # The request body is read and dropped so that the next request on this connection
        # (typically the retry with credentials) starts where the client thinks it does.
        if "100-continue" in _tokens(headers, "expect") and _has_body(headers):
            keep_alive = False  # the client waits for a 100 that never comes: no body to skip
        elif method.upper() != "CONNECT":
            _copy_body(reader, headers, None)
        _answer(client, status, body, extra, close=not keep_alive)
        return keep_alive

    def _forward(self, client, reader, upstream, method, rest, version, headers, keep_alive):
        head = [f"{method} {rest} {version}\r\n".encode("latin-1")]
        head += [raw for name, _, raw in headers if name.lower() not in _DROPPED]
        upstream.sendall(b"".join(head) + b"\r\n")
        # The body goes up from a thread while the answer is read: a client that sent
        # "Expect: 100-continue" waits for the server's 100 before sending it, and a server
        # may answer (an error) before it has read all of it.
        body = None
        if _has_body(headers):
            body = _BodySender(reader, headers, upstream)
            body.start()

        up = _Reader(upstream)
        sent_any = False
        try:
            while True:
                status_line = up.readline()
                if not status_line:
                    raise _BadMessage("upstream closed before answering")
                resp_headers = up.headers()
                client.sendall(status_line + b"".join(raw for _, _, raw in resp_headers) + b"\r\n")
                sent_any = True
                resp_version, status = _status(status_line)
                if status == 101:  # protocol switch: from now on just bytes
                    self._tunnel(client, reader, upstream, up.take_buffer())
                    return False
                if 100 <= status < 200:  # interim answer (100 Continue): the real one follows
                    continue
                break
            if method.upper() == "HEAD" or status in (204, 304):
                delimited = True
            else:
                delimited = _copy_body(up, resp_headers, client, until_eof=True)
        except (OSError, _BadMessage):
            if not sent_any:
                _answer(client, 502, b"upstream failed\n", close=True)
            return False
        if body is not None:
            # Answered before the client sent its body (refused "Expect: 100-continue"), or
            # the server hung up on part of it: where the next request starts is unknown.
            expect = "100-continue" in _tokens(headers, "expect")
            if not body.done.wait(0.2 if expect else self.upstream_timeout) or not body.ok:
                return False
        return keep_alive and delimited and _keep_alive(resp_version, resp_headers)

    def _tunnel(self, client, reader, upstream, upstream_pending=b""):
        """Relays bytes both ways until both sides have closed (each EOF passed on as a
        half-close), or the proxy stops."""
        client.settimeout(None)
        if upstream_pending:
            client.sendall(upstream_pending)
        pending = reader.take_buffer()  # bytes the client sent right behind its request
        if pending:
            upstream.sendall(pending)

        def pump(src, dst):
            try:
                while True:
                    data = src.recv(1 << 16)
                    if not data:
                        break
                    dst.sendall(data)
            except OSError:
                shutdown(src)
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        t = threading.Thread(target=pump, args=(upstream, client), daemon=True)
        t.start()
        pump(client, upstream)
        t.join()


class _BadMessage(Exception):
    pass


class _UpstreamGone(Exception):
    pass


class _BodySender:
    """Copies a request body from the client to the server on a thread of its own. If the
    client goes away mid-body the server connection is shut down too, which ends the wait
    for its answer; if the server goes away the answer it may have sent is still read."""

    def __init__(self, reader, headers, upstream):
        self.reader, self.headers, self.upstream = reader, headers, upstream
        self.done = threading.Event()
        self.ok = False

    def start(self):
        threading.Thread(target=self._run, daemon=True).start()

    def _send(self, data):
        try:
            self.upstream.sendall(data)
        except OSError as e:
            raise _UpstreamGone() from e

    def _run(self):
        try:
            _copy_body(self.reader, self.headers, None, send=self._send)
            self.ok = True
        except _UpstreamGone:
            pass
        except (OSError, _BadMessage):
            shutdown(self.upstream)
        finally:
            self.done.set()


class _Reader:
    """Buffered reads from a socket that can hand back what it has buffered (for tunnels)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self):
        if self.eof:
            return False
        data = self.sock.recv(1 << 16)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self):
        """One line with its terminator; b"" at EOF (a partial line at EOF is an error)."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end + 1])
                del self.buf[:end + 1]
                return line
            if len(self.buf) > _MAX_LINE:
                raise _BadMessage("line too long")
            if not self._fill():
                if self.buf:
                    raise _BadMessage("connection closed mid-line")
                return b""

    def headers(self):
        """[(name, value, raw line)] up to and without the blank line."""
        out = []
        while True:
            line = self.readline()
            if not line:
                raise _BadMessage("connection closed in the headers")
            if line in (b"\r\n", b"\n"):
                return out
            if len(out) >= _MAX_HEADERS:
                raise _BadMessage("too many headers")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise _BadMessage("malformed header line")
            out.append((name.strip(), value.strip(), line))

    def chunks(self, n):
        """Yields exactly n bytes in pieces."""
        while n > 0:
            if not self.buf and not self._fill():
                raise _BadMessage("connection closed mid-body")
            piece = bytes(self.buf[:n])
            del self.buf[:len(piece)]
            n -= len(piece)
            yield piece

    def until_eof(self):
        while self.buf or self._fill():
            piece = bytes(self.buf)
            self.buf.clear()
            yield piece

    def take_buffer(self):
        data = bytes(self.buf)
        self.buf.clear()
        return data


def _has_body(headers):
    return (_header(headers, "transfer-encoding") is not None
            or (_header(headers, "content-length") or "0").strip() not in ("", "0"))


def _copy_body(reader, headers, dst, until_eof=False, send=None):
    """Copies a message body framed by `headers` from reader to dst (None: drops it), raw
    bytes and framing unchanged. Without Content-Length or chunked coding a request has no
    body and a response (until_eof) runs to EOF; returns False in that last case."""
    if send is None:
        send = dst.sendall if dst is not None else (lambda data: None)
    codings = [c.strip().lower() for n, v, _ in headers if n.lower() == "transfer-encoding"
               for c in v.split(",")]
    if codings and codings[-1] == "chunked":
        while True:
            size_line = reader.readline()
            if not size_line:
                raise _BadMessage("connection closed in a chunked body")
            send(size_line)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadMessage("bad chunk size")
            if size == 0:
                break
            for piece in reader.chunks(size + 2):  # the data and its CRLF
                send(piece)
        while True:  # trailers, up to the blank line
            line = reader.readline()
            if not line:
                raise _BadMessage("connection closed in the trailers")
            send(line)
            if line in (b"\r\n", b"\n"):
                return True
    length = _header(headers, "content-length")
    if length is not None:
        try:
            n = int(length.split(",")[0])
        except ValueError:
            raise _BadMessage("bad Content-Length")
        for piece in reader.chunks(n):
            send(piece)
        return True
    if until_eof:
        for piece in reader.until_eof():
            send(piece)
        return False
    return True


def _split_absolute(target):
    """("name:port", origin-form rest) of an http:// absolute-form target, or (None, None)."""
    if not target[:7].lower() == "http://":
        return None, None
    after = target[7:]
    cut = min([i for i in (after.find("/"), after.find("?")) if i >= 0], default=len(after))
    netloc, rest = after[:cut], after[cut:]
    netloc = netloc.rpartition("@")[2]  # userinfo is not part of the authority
    if not netloc:
        return None, None
    if not netloc.rpartition("]")[2].count(":"):
        netloc += ":80"
    if not rest.startswith("/"):
        rest = "/" + rest
    return netloc, rest


def _header(headers, name):
    for n, v, _ in headers:
        if n.lower() == name:
            return v
    return None


def _tokens(headers, name):
    return {t.strip().lower() for n, v, _ in headers if n.lower() == name for t in v.split(",")}


def _keep_alive(version, headers):
    connection = _tokens(headers, "connection") | _tokens(headers, "proxy-connection")
    if "close" in connection:
        return False
    return version.upper() != "HTTP/1.0" or "keep-alive" in connection


def _status(status_line):
    parts = status_line.decode("latin-1").split(" ", 2)
    try:
        return parts[0], int(parts[1])
    except (IndexError, ValueError):
        raise _BadMessage("bad status line")


def _answer(sock, status, body=b"", extra=(), close=False):
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", "Content-Type: text/plain",
             f"Content-Length: {len(body)}", *extra]
    if close:
        lines.append("Connection: close")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
