#!/usr/bin/python3
"""A small synchronous NATS client for tests, plus JetStream API helpers.

Python 3 standard library only. One TCP connection, one background reader
thread that answers server PINGs and routes MSG/HMSG to subscriptions.
Request/reply goes through a single wildcard inbox subscription.

It does not reconnect: after a server is lost, open a new ``NatsClient``
(``NatsClient(urls)`` tries each URL of a cluster list in turn).

    with NatsClient("nats://127.0.0.1:4222") as nc:
        ack = nc.js_publish("jobs.x", b"{}")
        info = nc.stream_info("JOBS")
"""

import base64
import itertools
import json
import queue
import random
import socket
import string
import threading
import time
import urllib.parse

CRLF = b"\r\n"
HEADER_LINE = b"NATS/1.0"


class NatsError(Exception):
    pass


class NatsTimeout(NatsError):
    pass


class NoResponders(NatsError):
    pass


class ConnectionLost(NatsError):
    pass


class JetStreamError(NatsError):
    """An API error answer: ``code`` is the HTTP-like code, ``err_code`` the JetStream one."""

    def __init__(self, subject, error):
        self.subject = subject
        self.code = error.get("code")
        self.err_code = error.get("err_code")
        self.description = error.get("description", "")
        super().__init__("%s: %s (code %s, err_code %s)"
                         % (subject, self.description, self.code, self.err_code))


class Msg:
    __slots__ = ("subject", "reply", "headers", "status", "description", "data")

    def __init__(self, subject, reply, data, headers=None, status=None, description=None):
        self.subject = subject
        self.reply = reply
        self.data = data
        self.headers = headers or {}
        self.status = status
        self.description = description

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return "Msg(%r, reply=%r, status=%r, headers=%r, data=%r)" % (
            self.subject, self.reply, self.status, self.headers, self.data[:200])


def _token(n=16):
    alphabet = string.ascii_letters + string.digits
    return "".join(random.choice(alphabet) for _ in range(n))


def encode_headers(headers):
    out = [HEADER_LINE]
    for k, v in (headers or {}).items():
        values = v if isinstance(v, (list, tuple)) else [v]
        for one in values:
            out.append(("%s: %s" % (k, one)).encode())
    return CRLF.join(out) + CRLF + CRLF


def decode_headers(raw):
    """(headers dict, status, description). Repeated keys keep the last value."""
    text = raw.decode("utf-8", "replace")
    lines = text.split("\r\n")
    first = lines[0]
    if not first.startswith("NATS/1.0"):
        raise NatsError("bad header block: %r" % first)
    rest = first[len("NATS/1.0"):].strip()
    status, description = None, None
    if rest:
        parts = rest.split(" ", 1)
        status = int(parts[0])
        description = parts[1] if len(parts) > 1 else ""
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        key, _, value = line.partition(":")
        headers[key.strip()] = value.strip()
    return headers, status, description


class Subscription:
    def __init__(self, client, sid, subject):
        self.mux = False
        self.client = client
        self.sid = sid
        self.subject = subject
        self.queue = queue.Queue()

    def next_msg(self, timeout=5.0):
        try:
            item = self.queue.get(timeout=timeout)
        except queue.Empty:
            raise NatsTimeout("no message on %s within %.1fs" % (self.subject, timeout)) from None
        if isinstance(item, Exception):
            raise item
        return item

    def unsubscribe(self):
        self.client.unsubscribe(self)


class NatsClient:
    def __init__(self, urls, timeout=5.0, name="archie-tests"):
        if isinstance(urls, str):
            urls = [u for u in urls.split(",") if u]
        self.urls = list(urls)
        self.timeout = timeout
        self.name = name
        self.sock = None
        self.url = None
        self.server_info = None
        self._wlock = threading.Lock()
        self._slock = threading.Lock()
        self._subs = {}
        self._sids = itertools.count(1)
        self._pongs = queue.Queue()
        self._closed = False
        self._error = None
        self._inbox_prefix = "_INBOX.%s" % _token()
        self._replies = {}
        self._reply_ids = itertools.count(1)
        self._connect()

    # ---- connection
    def _connect(self):
        errors = []
        for url in self.urls:
            u = urllib.parse.urlsplit(url if "://" in url else "nats://" + url)
            try:
                sock = socket.create_connection((u.hostname, u.port or 4222), timeout=self.timeout)
            except OSError as e:
                errors.append("%s: %s" % (url, e))
                continue
            try:
                self._handshake(sock)
            except (OSError, NatsError) as e:
                sock.close()
                errors.append("%s: %s" % (url, e))
                continue
            self.url = url
            return
        raise NatsError("cannot connect to any of %s: %s" % (self.urls, "; ".join(errors)))

    def _handshake(self, sock):
        sock.settimeout(self.timeout)
        buf = b""
        while CRLF not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise NatsError("connection closed before INFO")
            buf += chunk
        line, _, rest = buf.partition(CRLF)
        if not line.startswith(b"INFO "):
            raise NatsError("expected INFO, got %r" % line[:100])
        self.server_info = json.loads(line[5:])
        connect = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True,
                   "protocol": 1, "lang": "python-test", "version": "0.1", "name": self.name}
        sock.sendall(b"CONNECT " + json.dumps(connect).encode() + CRLF + b"PING" + CRLF)
        buf = rest
        while True:
            while CRLF not in buf:
                chunk = sock.recv(4096)
                if not chunk:
                    raise NatsError("connection closed during CONNECT")
                buf += chunk
            line, _, buf = buf.partition(CRLF)
            if line == b"PONG":
                break
            if line.startswith(b"-ERR"):
                raise NatsError("server refused CONNECT: %s" % line.decode(errors="replace"))
            # +OK or INFO: ignore
        sock.settimeout(None)
        self.sock = sock
        self._reader = threading.Thread(target=self._read_loop, args=(buf,), daemon=True,
                                        name="nats-reader")
        self._reader.start()
        # The reply mux: one wildcard subscription for every request.
        self._mux = self.subscribe(self._inbox_prefix + ".*", _mux=True)

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def connected(self):
        return not self._closed and self._error is None

    def _send(self, data):
        if self._error is not None:
            raise ConnectionLost("connection to %s lost: %s" % (self.url, self._error))
        try:
            with self._wlock:
                self.sock.sendall(data)
        except OSError as e:
            raise ConnectionLost("send to %s failed: %s" % (self.url, e)) from e

    # ---- reader thread
    def _read_loop(self, buf):
        try:
            self._parse(buf)
        except Exception as e:  # noqa: BLE001 - surfaced to every waiter
            self._error = e
        finally:
            err = ConnectionLost("connection to %s lost: %s" % (self.url, self._error or "closed"))
            if self._error is None:
                self._error = err
            with self._slock:
                for sub in self._subs.values():
                    sub.queue.put(err)
                for q in self._replies.values():
                    q.put(err)
            self._pongs.put(err)

    def _parse(self, buf):
        sock = self.sock

        def fill():
            nonlocal buf
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionLost("server closed the connection")
            buf += chunk

        while True:
            while CRLF not in buf:
                fill()
            line, _, buf = buf.partition(CRLF)
            if line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                parts = line.decode().split()
                has_headers = parts[0] == "HMSG"
                if has_headers:
                    subject, sid = parts[1], int(parts[2])
                    reply = parts[3] if len(parts) == 6 else None
                    hlen, total = int(parts[-2]), int(parts[-1])
                else:
                    subject, sid = parts[1], int(parts[2])
                    reply = parts[3] if len(parts) == 5 else None
                    hlen, total = 0, int(parts[-1])
                while len(buf) < total + 2:
                    fill()
                payload, buf = buf[:total], buf[total + 2:]
                headers, status, desc = {}, None, None
                if has_headers:
                    headers, status, desc = decode_headers(payload[:hlen])
                msg = Msg(subject, reply, payload[hlen:], headers, status, desc)
                self._dispatch(sid, msg)
            elif line == b"PING":
                self._send(b"PONG" + CRLF)
            elif line == b"PONG":
                self._pongs.put(True)
            elif line.startswith(b"-ERR"):
                text = line.decode(errors="replace")
                # Permission/subject errors keep the connection; the rest close it.
                if "Permissions Violation" not in text and "Invalid Subject" not in text:
                    raise NatsError(text)
            # +OK and INFO need nothing

    def _dispatch(self, sid, msg):
        with self._slock:
            sub = self._subs.get(sid)
            if sub is None:
                return
            if sub.mux:
                q = self._replies.get(msg.subject.rsplit(".", 1)[-1])
                if q is not None:
                    q.put(msg)
                return
        sub.queue.put(msg)

    # ---- core protocol
    def flush(self, timeout=None):
        self._send(b"PING" + CRLF)
        try:
            got = self._pongs.get(timeout=timeout or self.timeout)
        except queue.Empty:
            raise NatsTimeout("no PONG from %s" % self.url) from None
        if isinstance(got, Exception):
            raise got

    def publish(self, subject, data=b"", reply=None, headers=None):
        self._send(self._pub_frame(subject, data, reply, headers))

    @staticmethod
    def _pub_frame(subject, data, reply=None, headers=None):
        if isinstance(data, str):
            data = data.encode()
        r = (" " + reply) if reply else ""
        if headers:
            h = encode_headers(headers)
            return (("HPUB %s%s %d %d\r\n" % (subject, r, len(h), len(h) + len(data))).encode()
                    + h + data + CRLF)
        return ("PUB %s%s %d\r\n" % (subject, r, len(data))).encode() + data + CRLF

    def subscribe(self, subject, queue_group=None, _mux=False):
        sid = next(self._sids)
        sub = Subscription(self, sid, subject)
        sub.mux = _mux
        with self._slock:
            self._subs[sid] = sub
        q = (" " + queue_group) if queue_group else ""
        self._send(("SUB %s%s %d\r\n" % (subject, q, sid)).encode())
        return sub

    def unsubscribe(self, sub):
        with self._slock:
            self._subs.pop(sub.sid, None)
        if self._error is None:
            self._send(("UNSUB %d\r\n" % sub.sid).encode())

    def _new_reply(self):
        token = str(next(self._reply_ids))
        q = queue.Queue()
        with self._slock:
            self._replies[token] = q
        return "%s.%s" % (self._inbox_prefix, token), token, q

    def _drop_reply(self, token):
        with self._slock:
            self._replies.pop(token, None)

    def request(self, subject, data=b"", timeout=None, headers=None):
        """One reply or NatsTimeout / NoResponders."""
        inbox, token, q = self._new_reply()
        try:
            self.publish(subject, data, reply=inbox, headers=headers)
            try:
                msg = q.get(timeout=timeout or self.timeout)
            except queue.Empty:
                raise NatsTimeout("no reply to %s within %.1fs" % (subject, timeout or self.timeout)) from None
        finally:
            self._drop_reply(token)
        if isinstance(msg, Exception):
            raise msg
        if msg.status == 503:
            raise NoResponders("no responders for %s" % subject)
        return msg

    # ---- JetStream
    def js_api(self, what, payload=None, timeout=None):
        """Request $JS.API.<what>; the decoded answer, JetStreamError on an error answer."""
        subject = "$JS.API." + what
        data = b"" if payload is None else json.dumps(payload).encode()
        msg = self.request(subject, data, timeout=timeout)
        answer = json.loads(msg.data) if msg.data else {}
        if "error" in answer:
            raise JetStreamError(subject, answer["error"])
        return answer

    def js_publish(self, subject, data=b"", headers=None, timeout=None):
        """Publish into a stream; the PubAck dict (stream, seq, ...)."""
        msg = self.request(subject, data, timeout=timeout, headers=headers)
        ack = json.loads(msg.data)
        if "error" in ack:
            raise JetStreamError(subject, ack["error"])
        return ack

    def js_publish_many(self, subject, bodies, window=256, timeout=None):
        """Pipelined publish of many bodies, at most `window` unacknowledged; PubAcks in order."""
        bodies = list(bodies)
        acks = [None] * len(bodies)
        pending = {}  # index -> (token, queue)
        next_i = 0
        done = 0
        limit = timeout or max(self.timeout, 30.0)
        deadline = time.monotonic() + limit
        try:
            while done < len(bodies):
                frames = []
                while next_i < len(bodies) and len(pending) < window:
                    inbox, token, q = self._new_reply()
                    pending[next_i] = (token, q)
                    frames.append(self._pub_frame(subject, bodies[next_i], reply=inbox))
                    next_i += 1
                if frames:
                    self._send(b"".join(frames))
                oldest = min(pending)
                token, q = pending[oldest]
                try:
                    msg = q.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise NatsTimeout("publish #%d to %s not acknowledged" % (oldest, subject)) from None
                if isinstance(msg, Exception):
                    raise msg
                if msg.status == 503:
                    raise NoResponders("no stream captures %s" % subject)
                ack = json.loads(msg.data)
                if "error" in ack:
                    raise JetStreamError(subject, ack["error"])
                acks[oldest] = ack
                self._drop_reply(token)
                del pending[oldest]
                done += 1
        finally:
            for token, _ in pending.values():
                self._drop_reply(token)
        return acks

    def account_info(self):
        return self.js_api("INFO")

    def add_stream(self, config):
        return self.js_api("STREAM.CREATE." + config["name"], config)

    def update_stream(self, config):
        return self.js_api("STREAM.UPDATE." + config["name"], config)

    def stream_info(self, name):
        return self.js_api("STREAM.INFO." + name)

    def delete_stream(self, name):
        return self.js_api("STREAM.DELETE." + name).get("success", False)

    def purge_stream(self, name):
        return self.js_api("STREAM.PURGE." + name)

    def stream_names(self):
        names, offset = [], 0
        while True:
            page = self.js_api("STREAM.NAMES", {"offset": offset})
            got = page.get("streams") or []
            names.extend(got)
            offset += len(got)
            if not got or offset >= page.get("total", 0):
                return names

    def consumer_info(self, stream, durable):
        return self.js_api("CONSUMER.INFO.%s.%s" % (stream, durable))

    def delete_consumer(self, stream, durable):
        return self.js_api("CONSUMER.DELETE.%s.%s" % (stream, durable)).get("success", False)

    def get_msg(self, stream, seq):
        """A stored message as a dict: subject, seq, data (bytes), headers (dict), time."""
        answer = self.js_api("STREAM.MSG.GET." + stream, {"seq": int(seq)})
        m = answer["message"]
        out = {"subject": m["subject"], "seq": m["seq"], "time": m.get("time"),
               "data": base64.b64decode(m.get("data") or b""), "headers": {}}
        if m.get("hdrs"):
            out["headers"], _, _ = decode_headers(base64.b64decode(m["hdrs"]))
        return out

    def stream_messages(self, stream):
        """Every message stored in a stream, by repeated MSG.GET (fine for small streams)."""
        state = self.stream_info(stream)["state"]
        out = []
        if state.get("messages", 0) == 0:
            return out
        for seq in range(state["first_seq"], state["last_seq"] + 1):
            try:
                out.append(self.get_msg(stream, seq))
            except JetStreamError as e:
                if e.err_code == 10037:  # no message found (deleted)
                    continue
                raise
        return out


def connect_any(urls, timeout=5.0, attempts_timeout=30.0):
    """A client connected to some URL of the list, retrying until attempts_timeout."""
    deadline = time.monotonic() + attempts_timeout
    while True:
        try:
            return NatsClient(urls, timeout=timeout)
        except NatsError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
