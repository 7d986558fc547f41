"""Loopback networking for the test servers: free ports, whether a port answers, plain HTTP
GETs (readiness checks and the admin server), and the base of the in-process servers and
proxies that serve 127.0.0.1 from a thread (LoopbackServer)."""
import http.client
import http.server
import json
import random
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request

LOOPBACK = "127.0.0.1"

_handed_out = set()
_port_lock = threading.Lock()


def free_port():
    """A TCP port that is currently free on 127.0.0.1.

    Chosen below the kernel's ephemeral range (so outgoing connections made
    by clients cannot grab it between now and the server's bind) and never
    handed out twice by this process.
    """
    lo, hi = 20000, 32000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_lo = int(f.read().split()[0])
        hi = min(hi, eph_lo - 1)
    except (OSError, ValueError, IndexError):
        pass
    with _port_lock:
        for _ in range(2000):
            port = random.randint(lo, hi)
            if port in _handed_out:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
            finally:
                s.close()
            _handed_out.add(port)
            return port
    # Fall back to whatever the kernel gives us.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LOOPBACK, 0))
        port = s.getsockname()[1]
    finally:
        s.close()
    with _port_lock:
        _handed_out.add(port)
    return port


def port_open(port, host=LOOPBACK, timeout=0.5):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False



def http_answer(url, timeout=2.0):
    """(status, body) or None if there is no HTTP answer."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request("GET", u.path or "/")
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def http_get(url, method="GET", timeout=10):
    """Returns (status, headers, body bytes) without raising on HTTP errors."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def http_json(url, timeout=10):
    """(status, decoded JSON body) of a GET."""
    status, _, body = http_get(url, timeout=timeout)
    return status, json.loads(body)


class LoopbackServer:
    """Base of the in-process test servers and proxies: serves 127.0.0.1:self.port from a daemon
    thread. A subclass sets self.port and either calls _serve_http(handler class) or makes
    self._thread itself, and has stop(); start() returns self, and `with` starts and stops it."""

    def _serve_http(self, handler):
        self.httpd = http.server.ThreadingHTTPServer((LOOPBACK, self.port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _stop_http(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self):
        return f"http://{LOOPBACK}:{self.port}"

    endpoint = url  # what S3 callers call it

    def start(self):
        self._thread.start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
