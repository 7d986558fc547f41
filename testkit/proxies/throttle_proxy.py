#!/usr/bin/python3
"""A TCP proxy on 127.0.0.1 whose link has a fixed bandwidth: a WAN link in front of a server.

Every connection through one proxy shares one token bucket per direction, so the proxy as a
whole moves at most `rate` bytes per second each way, however many connections a client
opens: several proxies in front of one server are separate bottlenecks. It is HTTP-agnostic
and runs as its own process (one asyncio loop), so its CPU can be measured apart from the
client's and the server's:

    /usr/bin/python3 testkit/proxies/throttle_proxy.py --upstream 127.0.0.1:8000 --port 9000 --mbps 40

It prints `listening <port>` once it accepts connections and runs until SIGTERM/SIGINT.
Python 3 standard library only."""
import argparse
import asyncio
import signal
import sys
import time

LOOPBACK = "127.0.0.1"
CHUNK = 64 * 1024


class TokenBucket:
    """`rate` bytes/s with bursts up to `burst` bytes. A taker that overdraws sleeps off its debt,
    so takers are served in the order they ask and no chunk is ever split."""

    def __init__(self, rate, burst):
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = self.burst
        self.stamp = time.monotonic()

    async def take(self, n):
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= n
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)


class ThrottleProxy:
    def __init__(self, upstream_host, upstream_port, port, rate_bytes_s, burst_bytes=None):
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        # A burst of ~1/20 s keeps the rate steady at the scale of one request.
        burst = burst_bytes or max(CHUNK, rate_bytes_s / 20)
        self.up = TokenBucket(rate_bytes_s, burst)
        self.down = TokenBucket(rate_bytes_s, burst)

    async def _pump(self, reader, writer, bucket):
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                await bucket.take(len(data))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                writer.write_eof()
            except (OSError, RuntimeError):
                writer.close()

    async def _serve(self, client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pump(client_reader, server_writer, self.up),
                             self._pump(server_reader, client_writer, self.down))
        for w in (client_writer, server_writer):
            w.close()

    async def run(self, stop):
        server = await asyncio.start_server(self._serve, LOOPBACK, self.port, backlog=256)
        print("listening %d" % self.port, flush=True)
        async with server:
            await stop.wait()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the server behind the link")
    ap.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    ap.add_argument("--mbps", type=float, required=True, help="link bandwidth each way, MB/s (10^6 bytes)")
    a = ap.parse_args(argv)
    host, _, port = a.upstream.rpartition(":")
    proxy = ThrottleProxy(host or LOOPBACK, int(port), a.port, a.mbps * 1e6)

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
