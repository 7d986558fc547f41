"""A TCP pass-through proxy on 127.0.0.1 in front of one S3 endpoint, for fault injection
(lost, cut and made-up responses, requests held back, bodies damaged on the way up) and for
reading the bytes a client really sent."""
import re
import socket
import threading


class FaultProxy:
    """TCP pass-through to one RGW endpoint for fault injection and wire inspection.

    Bytes are forwarded unchanged (the server still verifies the client's signature), and
    every byte the client sends is kept, so a test can read the headers really sent. Rules
    match request lines ("GET /b/k?x=y HTTP/1.1") by regex and fire a given number of times:

    * truncate(pattern, keep): forward the request, pass the first `keep` bytes of the
      response, then close the connection (keep=0: the response is lost entirely).
    * respond(pattern, raw): answer with the raw bytes instead of the server, then close.
    * hold(pattern, event): forward the request only once event is set.
    * corrupt(pattern): flip the first body byte of the request on its way up (damage in
      transit that the checksums must catch).

    HTTP/1.1 without pipelining: a request starts with the first bytes going up on a new
    connection or after a response started coming down, and the next bytes coming down are
    its response."""

    def __init__(self, target_endpoint):
        host, port = target_endpoint.split("://", 1)[1].rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.endpoint = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.rules = []
        self.captured = []
        self.requests = []  # request lines seen, in order
        threading.Thread(target=self._accept, daemon=True).start()

    # ---- rules
    def _add(self, kind, pattern, arg, times):
        with self.lock:
            self.rules.append({"kind": kind, "re": re.compile(pattern), "arg": arg, "left": times})

    def truncate(self, pattern, keep=0, times=1):
        self._add("truncate", pattern, keep, times)

    def respond(self, pattern, raw, times=1):
        self._add("respond", pattern, raw, times)

    def hold(self, pattern, event, times=1):
        self._add("hold", pattern, event, times)

    def corrupt(self, pattern, times=1):
        self._add("corrupt", pattern, None, times)

    def reset(self):
        with self.lock:
            self.rules, self.captured, self.requests = [], [], []

    def sent(self):
        with self.lock:
            return b"".join(bytes(b) for b in self.captured)

    def requests_matching(self, pattern):
        with self.lock:
            return [r for r in self.requests if re.search(pattern, r)]

    def close(self):
        self.listener.close()

    # ---- plumbing
    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            conn = {"client": client, "upstream": upstream, "truncate": None, "cut": False, "left": 2,
                    "corrupt": False, "head": bytearray(),
                    "new_request": True,
                    "lock": threading.Lock(), "buf": bytearray()}
            with self.lock:
                self.captured.append(conn["buf"])
            threading.Thread(target=self._up, args=(conn,), daemon=True).start()
            threading.Thread(target=self._down, args=(conn,), daemon=True).start()

    def _fire(self, line):
        with self.lock:
            self.requests.append(line)
            for rule in self.rules:
                if rule["left"] > 0 and rule["re"].search(line):
                    rule["left"] -= 1
                    return rule
        return None

    def _up(self, conn):
        client, upstream = conn["client"], conn["upstream"]
        head = bytearray()
        try:
            while True:
                data = client.recv(256 * 1024)
                if not data:
                    break
                conn["buf"] += data
                if conn["new_request"]:
                    head += data
                    end = head.find(b"\r\n")
                    if end >= 0:
                        conn["new_request"] = False
                        line = bytes(head[:end]).decode("latin-1")
                        head.clear()
                        rule = self._fire(line)
                        if rule is None:
                            pass
                        elif rule["kind"] == "truncate":
                            conn["truncate"] = rule["arg"]
                        elif rule["kind"] == "hold":
                            rule["arg"].wait(60)
                        elif rule["kind"] == "corrupt":
                            conn["corrupt"] = True
                            conn["head"].clear()
                        elif rule["kind"] == "respond":
                            conn["cut"] = True
                            client.sendall(rule["arg"])
                            raise OSError("answered by the proxy")
                if conn["corrupt"]:
                    data = self._flip_first_body_byte(conn, data)
                upstream.sendall(data)
        except OSError:
            pass
        self._half_done(conn, upstream)

    @staticmethod
    def _flip_first_body_byte(conn, data):
        seen = len(conn["head"])
        conn["head"] += data
        end = conn["head"].find(b"\r\n\r\n")
        if end < 0 or end + 4 >= len(conn["head"]):
            return data  # the body has not started yet
        at = end + 4 - seen
        data = bytearray(data)
        data[at] ^= 0xFF
        conn["corrupt"] = False
        return bytes(data)

    def _down(self, conn):
        client, upstream = conn["client"], conn["upstream"]
        passed = 0
        try:
            while True:
                data = upstream.recv(256 * 1024)
                if not data:
                    break
                conn["new_request"] = True  # a response started: the next bytes up are a request
                keep = conn["truncate"]
                if keep is not None and passed + len(data) >= keep:
                    conn["cut"] = True
                    client.sendall(data[:keep - passed])
                    break
                if keep is not None:
                    passed += len(data)
                client.sendall(data)
        except OSError:
            pass
        self._half_done(conn, client)

    @staticmethod
    def _half_done(conn, peer):
        # A cut (truncate/respond) closes both sides; a normal end only half-closes.
        cut = conn["cut"]
        try:
            peer.shutdown(socket.SHUT_RDWR if cut else socket.SHUT_WR)
        except OSError:
            pass
        with conn["lock"]:
            conn["left"] -= 1
            last = conn["left"] == 0
        if last or cut:
            for s in (conn["client"], conn["upstream"]):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if last:
                conn["client"].close()
                conn["upstream"].close()
