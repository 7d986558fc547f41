#!/usr/bin/python3
"""An HTTP/1.1 reverse proxy on 127.0.0.1 that counts what goes through it, per wall-clock
second: requests started, request body bytes sent upstream, response body bytes sent back.
Put in front of an S3 endpoint, it measures what a client really asks of that server (a rate
limit, a budget), and with --delay it is a slow destination: every request is held that long
before it goes upstream.

Each client connection gets its own upstream connection; requests and responses are relayed
as they come (keep-alive and pipelining included), bodies streamed in pieces of at most 64 KiB
and never buffered whole. It understands HTTP/1.1 framing: request bodies by Content-Length or
`Transfer-Encoding: chunked`, responses by Content-Length, chunked, or until the server closes,
and no body for HEAD, 1xx, 204 and 304 (protocol upgrades are not supported). A client or
server that goes away mid-message ends that connection pair only. It runs as its own process
(one asyncio loop), so its CPU can be measured apart from the client's and the server's:

    /usr/bin/python3 testkit/proxies/counting_proxy.py --upstream 127.0.0.1:8000 [--port 0] \\
        [--stats-port 0] [--delay 2]

It prints `listening <port>` and `stats <port>` once it accepts connections (port 0: a free
one) and runs until SIGTERM/SIGINT. The counters, on the stats port:

    GET /stats  {"seconds": {"<unix second>": {"requests": n, "upload_bytes": n,
                 "download_bytes": n}, ...}, "totals": {...}}   (since the start or the last reset)
    GET /reset  clears them

CountingProxy (below) runs it from a test and reads the counters. Python 3 standard library
only."""
import argparse
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

LOOPBACK = "127.0.0.1"
CHUNK = 64 * 1024
FIELDS = ("requests", "upload_bytes", "download_bytes")


class BadMessage(Exception):
    """HTTP framing the proxy cannot follow: the connection pair is closed."""


class Counters:
    """Per-second counters, keyed by int(time.time()) at the moment of counting."""

    def __init__(self):
        self.seconds = {}

    def add(self, field, n=1):
        second = int(time.time())
        row = self.seconds.get(second)
        if row is None:
            row = self.seconds[second] = dict.fromkeys(FIELDS, 0)
        row[field] += n

    def reset(self):
        self.seconds = {}

    def snapshot(self):
        totals = dict.fromkeys(FIELDS, 0)
        for row in self.seconds.values():
            for f in FIELDS:
                totals[f] += row[f]
        return {"seconds": {str(s): dict(row) for s, row in sorted(self.seconds.items())}, "totals": totals}


# ---- HTTP framing -------------------------------------------------------------------------

async def read_head(reader, started=None):
    """(raw head bytes, start line, {lower-case name: value}) of the next message, or None when
    the peer closed cleanly before it; started() runs as soon as the start line is in. Header
    values of a repeated name are joined by ", "."""
    line = await reader.readline()
    while line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore empty lines before a request line
        line = await reader.readline()
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise BadMessage("message cut in its start line")
    if started:
        started()
    raw = [line]
    headers = {}
    while True:
        h = await reader.readline()
        if not h.endswith(b"\n"):
            raise BadMessage("message cut in its headers")
        raw.append(h)
        if h in (b"\r\n", b"\n"):
            break
        name, sep, value = h.decode("latin-1").partition(":")
        if not sep:
            raise BadMessage("header line without a colon: %r" % h[:80])
        name, value = name.strip().lower(), value.strip()
        headers[name] = headers[name] + ", " + value if name in headers else value
    return b"".join(raw), line.decode("latin-1").rstrip("\r\n"), headers


def is_chunked(headers):
    codings = [c.strip().lower() for c in headers.get("transfer-encoding", "").split(",") if c.strip()]
    return bool(codings) and codings[-1] == "chunked"


def content_length(headers):
    value = headers.get("content-length")
    if value is None:
        return None
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise BadMessage("bad Content-Length %r" % value)
    return int(values.pop())


async def relay_exactly(reader, writer, n, count):
    """Forwards exactly n bytes in pieces of at most CHUNK, count(len) for each piece."""
    while n > 0:
        data = await reader.read(min(CHUNK, n))
        if not data:
            raise BadMessage("peer closed %d bytes short of the body's end" % n)
        writer.write(data)
        count(len(data))
        n -= len(data)
        await writer.drain()


async def relay_chunked(reader, writer, count):
    """Forwards a chunked body as it is framed; count() sees the chunk data bytes only."""
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise BadMessage("body cut in a chunk size line")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadMessage("bad chunk size line %r" % line[:80]) from None
        writer.write(line)
        if size == 0:
            break
        await relay_exactly(reader, writer, size, count)
        crlf = await reader.readline()
        if crlf not in (b"\r\n", b"\n"):
            raise BadMessage("chunk data not followed by CRLF")
        writer.write(crlf)
    while True:  # trailer fields, then the empty line that ends the body
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise BadMessage("body cut in its trailers")
        writer.write(line)
        if line in (b"\r\n", b"\n"):
            break
    await writer.drain()


async def relay_until_eof(reader, writer, count):
    while True:
        data = await reader.read(CHUNK)
        if not data:
            return
        writer.write(data)
        count(len(data))
        await writer.drain()


# ---- the proxy ----------------------------------------------------------------------------

# What a peer that goes away or breaks the framing raises: StreamReader.readline() raises
# ValueError for a line over its limit, the others are closed or reset sockets and cut messages.
BROKEN = (ConnectionError, OSError, BadMessage, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError)


class Connection:
    """One client connection and its upstream connection: a task relays requests up, another
    responses down. `methods` holds the method of each request whose final response has not
    started yet (a HEAD's response has no body)."""

    def __init__(self, proxy, client, upstream):
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.up_reader, self.up_writer = upstream
        self.methods = collections.deque()
        self.client_done = False  # the client closed cleanly between requests
        self.waiting_for_response = False  # the response task waits for a status line
        self.responses = None

    async def run(self):
        requests = asyncio.ensure_future(self.relay_requests())
        self.responses = asyncio.ensure_future(self.relay_responses())
        try:
            await asyncio.wait({requests, self.responses}, return_when=asyncio.FIRST_COMPLETED)
            if requests.done() and not requests.cancelled() and requests.exception() is None and requests.result():
                # The client ended cleanly between requests: let the answers to what it sent come back.
                await asyncio.wait({self.responses})
        finally:
            for task in (requests, self.responses):
                task.cancel()
            for outcome in await asyncio.gather(requests, self.responses, return_exceptions=True):
                if isinstance(outcome, Exception):  # a bug, not a peer: say so, keep serving
                    print("counting_proxy: connection task failed: %r" % outcome, file=sys.stderr, flush=True)
            for w in (self.client_writer, self.up_writer):
                w.close()

    async def relay_requests(self):
        """True when the client closed between requests, False when it broke off mid-request."""
        counters, delay = self.proxy.counters, self.proxy.delay
        count_up = lambda n: counters.add("upload_bytes", n)  # noqa: E731
        try:
            while True:
                head = await read_head(self.client_reader, started=lambda: counters.add("requests"))
                if head is None:
                    break
                raw, line, headers = head
                self.methods.append(line.split(" ", 1)[0].upper())
                if delay > 0:
                    await asyncio.sleep(delay)
                self.up_writer.write(raw)
                if is_chunked(headers):
                    await relay_chunked(self.client_reader, self.up_writer, count_up)
                else:
                    await relay_exactly(self.client_reader, self.up_writer, content_length(headers) or 0, count_up)
                await self.up_writer.drain()
        except BROKEN:
            return False
        self.client_done = True
        try:
            if self.up_writer.can_write_eof():
                self.up_writer.write_eof()  # the server finishes what it has and closes
        except OSError:
            pass
        if self.waiting_for_response and not self.methods:
            self.responses.cancel()  # nothing more to answer
        return True

    async def relay_responses(self):
        """Returns when the server closed, the client went away or every request is answered
        after the client's clean end; run() then closes both connections."""
        counters = self.proxy.counters
        count_down = lambda n: counters.add("download_bytes", n)  # noqa: E731
        try:
            while not (self.client_done and not self.methods):
                self.waiting_for_response = True
                head = await read_head(self.up_reader)
                self.waiting_for_response = False
                if head is None:
                    return  # the server closed between responses
                raw, line, headers = head
                parts = line.split(" ", 2)
                if len(parts) < 2 or not parts[1].isdigit():
                    raise BadMessage("bad status line %r" % line[:80])
                status = int(parts[1])
                interim = 100 <= status < 200 and status != 101  # 100 Continue: the final one follows
                method = None if interim or not self.methods else self.methods.popleft()
                self.client_writer.write(raw)
                if interim or method == "HEAD" or status in (204, 304):
                    pass
                elif is_chunked(headers):
                    await relay_chunked(self.up_reader, self.client_writer, count_down)
                elif content_length(headers) is not None:
                    await relay_exactly(self.up_reader, self.client_writer, content_length(headers), count_down)
                else:
                    await relay_until_eof(self.up_reader, self.client_writer, count_down)
                    return  # the body ended with the connection
                await self.client_writer.drain()
        except BROKEN:
            return


class CountingProxyServer:
    def __init__(self, upstream_host, upstream_port, port=0, stats_port=0, delay=0.0):
        self.upstream = (upstream_host, upstream_port)
        self.port, self.stats_port, self.delay = port, stats_port, delay
        self.counters = Counters()

    async def _serve(self, client_reader, client_writer):
        try:
            upstream = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        await Connection(self, (client_reader, client_writer), upstream).run()

    async def _serve_stats(self, reader, writer):
        try:
            head = await read_head(reader)
            if head is None:
                return
            method, _, rest = head[1].partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if method == "GET" and path == "/stats":
                status, body = "200 OK", self.counters.snapshot()
            elif method == "GET" and path == "/reset":
                self.counters.reset()
                status, body = "200 OK", {"reset": True}
            else:
                status, body = "404 Not Found", {"error": "GET /stats or /reset"}
            data = json.dumps(body).encode()
            writer.write(b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                         b"Connection: close\r\n\r\n" % (status.encode(), len(data)) + data)
            await writer.drain()
        except BROKEN:
            pass
        finally:
            writer.close()

    async def run(self, stop):
        proxy = await asyncio.start_server(self._serve, LOOPBACK, self.port, backlog=256)
        stats = await asyncio.start_server(self._serve_stats, LOOPBACK, self.stats_port)
        print("listening %d" % proxy.sockets[0].getsockname()[1], flush=True)
        print("stats %d" % stats.sockets[0].getsockname()[1], flush=True)
        await stop.wait()
        # Connections still open are cancelled with the loop (asyncio.run).
        proxy.close()
        stats.close()


# ---- from a test --------------------------------------------------------------------------

class CountingProxy:
    """counting_proxy.py as a child process in front of an http:// endpoint (an RGW's): its own
    CPU, so relaying never competes with the test's threads. `endpoint` is the proxy's URL;
    stats() the counters with int seconds; stop() ends it (SIGTERM)."""

    def __init__(self, upstream_endpoint, delay=0.0):
        scheme, _, hostport = upstream_endpoint.partition("://")
        if scheme != "http":
            raise ValueError("the counting proxy relays plain HTTP, not %r" % upstream_endpoint)
        args = [sys.executable, os.path.abspath(__file__), "--upstream", hostport.rstrip("/")]
        if delay:
            args += ["--delay", str(delay)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        try:
            self.port = self._announced("listening")
            self.stats_port = self._announced("stats")
        except BaseException:
            self.stop()
            raise
        self.endpoint = "http://%s:%d" % (LOOPBACK, self.port)

    def _announced(self, word):
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != word:
            raise RuntimeError("counting proxy did not start (said %r, rc=%s)" % (line, self.proc.poll()))
        return int(line[1])

    def _get(self, path):
        with urllib.request.urlopen("http://%s:%d%s" % (LOOPBACK, self.stats_port, path), timeout=10) as r:
            return json.loads(r.read())

    def stats(self):
        """{"seconds": {int unix second: {"requests", "upload_bytes", "download_bytes"}}, "totals": {...}}"""
        raw = self._get("/stats")
        return {"seconds": {int(s): row for s, row in raw["seconds"].items()}, "totals": raw["totals"]}

    def reset(self):
        self._get("/reset")

    def window(self, field, first_second, seconds):
        """The per-second values of field for the whole seconds first_second .. +seconds-1
        (0 where nothing was counted)."""
        rows = self.stats()["seconds"]
        return [rows.get(s, {}).get(field, 0) for s in range(first_second, first_second + seconds)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the HTTP server behind the proxy")
    ap.add_argument("--port", type=int, default=0, help="port to listen on (127.0.0.1); 0: a free one (default)")
    ap.add_argument("--stats-port", type=int, default=0, help="port of GET /stats and /reset; 0: a free one (default)")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds every request is held before it goes upstream")
    a = ap.parse_args(argv)
    host, _, port = a.upstream.rpartition(":")
    proxy = CountingProxyServer(host or LOOPBACK, int(port), a.port, a.stats_port, a.delay)

    async def serve():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await proxy.run(stop)

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
