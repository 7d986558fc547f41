"""A TCP proxy on 127.0.0.1 that holds each HTTP request back for a random time before it
reaches the server: a remote region on a bad day. Requests that start together can land in
any order, which is what exposes replication races.

The proxy is HTTP-agnostic: a request starts with the first client bytes after the server
has answered (or on a new connection), and only that first chunk is delayed, so bodies flow
at full speed once a request is on its way. Keep-alive connections are supported; pipelining
is not needed by any client the tests use."""
import random
import socket
import threading
import time

from testkit.proxies.relay import RelayServer, shutdown


class DelayProxy(RelayServer):
    def __init__(self, upstream_host, upstream_port, max_delay=1.0, min_delay=0.0, seed=None):
        super().__init__()
        self.upstream = (upstream_host, upstream_port)
        self.max_delay, self.min_delay = max_delay, min_delay
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.requests = 0

    def _accepted(self, client):
        pass  # not tracked: stop() refuses new clients but leaves open connections relaying

    def _delay(self):
        with self.rng_lock:
            self.requests += 1
            return self.rng.uniform(self.min_delay, self.max_delay)

    def _serve(self, client):
        try:
            server = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # True when the next client bytes start a new request.
        state = {"new_request": True}
        lock = threading.Lock()

        def client_to_server():
            try:
                while True:
                    data = client.recv(1 << 16)
                    if not data:
                        break
                    with lock:
                        starts = state["new_request"]
                        state["new_request"] = False
                    if starts:
                        time.sleep(self._delay())
                    server.sendall(data)
            except OSError:
                pass
            finally:
                shutdown(server)

        def server_to_client():
            try:
                while True:
                    data = server.recv(1 << 16)
                    if not data:
                        break
                    with lock:
                        state["new_request"] = True
                    client.sendall(data)
            except OSError:
                pass
            finally:
                shutdown(client)

        t = threading.Thread(target=server_to_client, daemon=True)
        t.start()
        client_to_server()
        t.join()
        client.close()
        server.close()
