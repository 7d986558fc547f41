"""A TLS terminator on 127.0.0.1 in front of a plain-HTTP test server (a Ceph RGW gateway,
say): what an HTTPS endpoint behind a load balancer looks like to a client.

At start it makes a self-signed certificate for one DNS name (subjectAltName DNS:<name>) with
Debian's `openssl` tool, so a client that trusts `ca_file` and checks host names accepts it
for that name only. The name need not resolve: clients reach it through a ForwardProxy that
maps `authority` to `address`, or by connecting to 127.0.0.1 and sending the name as SNI.
Decrypted bytes are relayed to the upstream unchanged (Host header and all, so SigV4
signatures still verify), one upstream connection per client connection.

TLS runs over memory BIOs: each connection's SSL object is used under a lock by the two
relay threads, as OpenSSL does not allow one SSL object to read and write concurrently."""
import os
import socket
import ssl
import subprocess
import threading

from testkit.net import LOOPBACK
from testkit.proxies.relay import RelayServer, shutdown


class TlsFront(RelayServer):
    """upstream_host, upstream_port: the plain-HTTP server behind; directory: where the key
    and certificate go; name: the DNS name the certificate is for."""

    def __init__(self, upstream_host, upstream_port, directory, name="s3.archie.test",
                 handshake_timeout=10):
        super().__init__()
        self.upstream = (upstream_host, upstream_port)
        self.name = name
        self.handshake_timeout = handshake_timeout
        os.makedirs(directory, exist_ok=True)
        self.ca_file = os.path.join(directory, f"{name}-{self.port}.crt")
        self.key_file = os.path.join(directory, f"{name}-{self.port}.key")
        self.connections = 0
        self._context = None

    @property
    def authority(self):
        """"name:port" as clients name this server (a ForwardProxy hosts key)."""
        return f"{self.name}:{self.port}"

    @property
    def address(self):
        """Where it really listens (the ForwardProxy hosts value)."""
        return (LOOPBACK, self.port)

    @property
    def url(self):
        return f"https://{self.authority}"

    endpoint = url

    def start(self):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", self.key_file, "-out", self.ca_file, "-days", "2",
                        "-subj", f"/CN={self.name}", "-addext", f"subjectAltName=DNS:{self.name}"],
                       check=True, stdin=subprocess.DEVNULL, capture_output=True)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, self.key_file)
        self._context = context
        return super().start()

    # ---- plumbing
    def _accepted(self, client):
        with self._lock:
            self.connections += 1
        super()._accepted(client)

    def _serve(self, client):
        upstream = None
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = _TlsConnection(self._context, client)
            client.settimeout(self.handshake_timeout)
            tls.handshake()
            client.settimeout(None)
            upstream = socket.create_connection(self.upstream, timeout=30)
            upstream.settimeout(None)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._track(upstream)
            self._relay(tls, upstream)
        except (OSError, ssl.SSLError):
            pass  # a failed handshake or an unreachable upstream: the client sees a cut
        finally:
            if upstream is not None:
                self._close(upstream)
            self._close(client)

    def _relay(self, tls, upstream):
        """Plaintext both ways until both sides have closed (each end passed on: a TLS
        close_notify or EOF as a TCP half-close upstream, an upstream EOF as close_notify)."""

        def down():
            try:
                while True:
                    data = upstream.recv(1 << 16)
                    if not data:
                        break
                    tls.send(data)
                tls.close_write()
            except (OSError, ssl.SSLError):
                shutdown(tls.sock)
                shutdown(upstream)

        t = threading.Thread(target=down, daemon=True)
        t.start()
        try:
            while True:
                data = tls.recv()
                if not data:
                    break
                upstream.sendall(data)
            upstream.shutdown(socket.SHUT_WR)
        except (OSError, ssl.SSLError):
            shutdown(tls.sock)
            shutdown(upstream)
        t.join()


class _TlsConnection:
    """Server-side TLS over a socket through memory BIOs; send() and recv() may run on two
    threads at once."""

    def __init__(self, context, sock):
        self.sock = sock
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=True)
        self._lock = threading.Lock()  # the SSL object
        self._send_lock = threading.Lock()  # the socket's sending side

    def _take(self):
        """Under self._lock: the TLS records to send, with the sending side of the socket
        held for them (so records leave in the order the SSL object made them) until
        _send; the SSL lock itself is not held while the client is slow to read, so the
        other direction keeps flowing."""
        data = self._out.read()
        if data:
            self._send_lock.acquire()
        return data

    def _send(self, data):
        if data:
            try:
                self.sock.sendall(data)
            finally:
                self._send_lock.release()

    def _feed(self):
        """Reads from the socket into the incoming BIO; False at EOF."""
        data = self.sock.recv(1 << 16)
        if not data:
            return False
        with self._lock:
            self._in.write(data)
        return True

    def handshake(self):
        while True:
            with self._lock:
                try:
                    self._tls.do_handshake()
                    done = True
                except ssl.SSLWantReadError:
                    done = False
                out = self._take()
            self._send(out)
            if done:
                return
            if not self._feed():
                raise ConnectionAbortedError("client closed during the TLS handshake")

    def recv(self):
        """Some plaintext; b"" once the client has closed (close_notify or plain EOF)."""
        while True:
            with self._lock:
                try:
                    data = self._tls.read(1 << 16)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    data = b""
                out = self._take()  # e.g. a key update answered
            self._send(out)
            if data is not None:
                return data
            if not self._feed():
                return b""

    def send(self, data):
        view = memoryview(data)
        with self._lock:
            while view:
                n = self._tls.write(view)
                view = view[n:]
            out = self._take()
        self._send(out)

    def close_write(self):
        """Sends close_notify and ends the TCP stream's sending side."""
        with self._lock:
            try:
                self._tls.unwrap()
            except ssl.SSLError:
                pass  # SSLWantReadError: the peer's close_notify has not come yet; fine
            out = self._take()
        self._send(out)
        self.sock.shutdown(socket.SHUT_WR)
