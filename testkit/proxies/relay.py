"""The TCP plumbing the relaying proxies share (DelayProxy, ForwardProxy, TlsFront): a listening
socket on 127.0.0.1, an accept loop on a daemon thread that serves each client on a thread of
its own, the set of open sockets that stop() shuts down so no relay thread outlives the
server, and a quiet socket shutdown."""
import socket
import threading

from testkit.net import LOOPBACK, LoopbackServer, free_port


class RelayServer(LoopbackServer):
    """Listens on 127.0.0.1:self.port from construction on; start() (LoopbackServer's) starts
    accepting, and each accepted client goes to self._serve(client) on a daemon thread.

    Sockets passed to _track() are shut down by stop() (and at once if stop() has already
    run); _close() forgets and closes one. Accepted clients are tracked unless _accepted is
    overridden. self._lock guards self._open and may guard a subclass's own state too."""

    def __init__(self):
        self.port = free_port()
        self._lock = threading.Lock()
        self._open = set()  # live sockets, shut down by stop()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, self.port))
        self._listener.listen(256)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def stop(self):
        self._stop.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            live = list(self._open)
        for s in live:
            shutdown(s)

    def _serve(self, client):
        raise NotImplementedError

    def _accepted(self, client):
        """Runs on the accept thread before the client is served."""
        self._track(client)

    def _track(self, sock):
        with self._lock:
            self._open.add(sock)
        if self._stop.is_set():  # stop() ran between accept/connect and here
            shutdown(sock)

    def _close(self, sock):
        with self._lock:
            self._open.discard(sock)
        try:
            sock.close()
        except OSError:
            pass

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._accepted(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()


def shutdown(sock):
    """Ends both directions of sock, ignoring a socket that is already closed or gone."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
