"""Request bodies, read incrementally: Content-Length or chunked transfer coding, and
multipart/related bodies streamed part by part."""

import json
import socket

from .errors import ApiError, ClientGone, bad_request
from .limits import IO_BLOCK, JSON_BODY_LIMIT, KIB


def parse_json(raw):
    """A request's JSON document (an empty body is {}); 400 parseError if it is not JSON."""
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise bad_request("Parse Error", "parseError")


class Body:
    """A request body, read incrementally (Content-Length or chunked transfer coding)."""

    def __init__(self, rfile, headers):
        self.rfile = rfile
        te = (headers.get("Transfer-Encoding") or "").lower()
        self.chunked = "chunked" in te
        self.length = None
        if not self.chunked:
            cl = headers.get("Content-Length")
            try:
                self.length = int(cl) if cl is not None else 0
            except ValueError:
                raise bad_request("Invalid Content-Length header.")
            if self.length < 0:
                raise bad_request("Invalid Content-Length header.")
        self.remaining = self.length
        self.consumed = 0
        self.eof = (self.length == 0)
        self.broken = False
        self._chunk_left = 0

    def _raw(self, n):
        try:
            return self.rfile.read(n)
        except (socket.timeout, TimeoutError, ConnectionError, OSError):
            raise ClientGone()

    def _line(self):
        try:
            line = self.rfile.readline(65537)
        except (socket.timeout, TimeoutError, ConnectionError, OSError):
            raise ClientGone()
        if not line.endswith(b"\n"):
            raise ClientGone()
        return line

    def _read_some(self, k):
        """Up to k body bytes; fewer mean the client stopped sending (none at all: ClientGone)."""
        data = self._raw(k)
        self.consumed += len(data)
        if len(data) < k:
            self.broken = True
            if not data:
                raise ClientGone()
        return data

    def read(self, n=IO_BLOCK):
        if self.eof:
            return b""
        if self.broken:
            raise ClientGone()
        if not self.chunked:
            data = self._read_some(min(n, self.remaining))
            self.remaining -= len(data)
            if self.remaining == 0:
                self.eof = True
            return data
        if self._chunk_left == 0:
            line = self._line().split(b";", 1)[0].strip()
            try:
                size = int(line, 16)
            except ValueError:
                raise ClientGone()
            if size == 0:
                while self._line() not in (b"\r\n", b"\n"):
                    pass
                self.eof = True
                return b""
            self._chunk_left = size
        k = min(n, self._chunk_left)
        data = self._read_some(k)
        self._chunk_left -= len(data)
        if len(data) < k:
            return data
        if self._chunk_left == 0:
            self._line()
        return data

    def read_all(self, limit=JSON_BODY_LIMIT):
        parts = []
        total = 0
        while True:
            d = self.read()
            if not d:
                return b"".join(parts)
            total += len(d)
            if total > limit:
                raise ApiError(413, "uploadTooLarge", "The request body is too large.")
            parts.append(d)

    def drain(self, limit):
        """Reads and discards up to limit bytes; True if the body is now fully read."""
        got = 0
        try:
            while not self.eof and got <= limit:
                d = self.read()
                if not d and not self.eof:
                    return False
                got += len(d)
        except ClientGone:
            return False
        return self.eof


class MultipartReader:
    """Streams a multipart/related body: part headers, then part data until the boundary.

    Line breaks may be CRLF (RFC 2046) or bare LF: apitools, which gcloud uses, builds its
    multipart bodies with Python's email generator and sends LF only; Cloud Storage accepts both.
    """

    def __init__(self, body, boundary):
        self.body = body
        self.delim = b"\n--" + boundary
        self.buf = bytearray(b"\n")   # lets the first boundary match like the others
        self.done = False

    def _fill(self):
        d = self.body.read()
        if not d:
            if self.body.broken:
                raise ClientGone()
            return False
        self.buf += d
        return True

    def next_part(self):
        """Advances past the next boundary; returns the part's headers, or None at the end."""
        while True:
            i = self.buf.find(self.delim)
            if i >= 0:
                del self.buf[:i + len(self.delim)]
                break
            keep = len(self.delim)
            if len(self.buf) > keep:
                del self.buf[:len(self.buf) - keep]
            if not self._fill():
                raise bad_request("Malformed multipart body.")
        while len(self.buf) < 2:
            if not self._fill():
                raise bad_request("Malformed multipart body.")
        if self.buf[:2] == b"--":
            self.done = True
            return None
        while True:
            ends = [(i, n) for i, n in ((self.buf.find(b"\r\n\r\n"), 4), (self.buf.find(b"\n\n"), 2)) if i >= 0]
            if ends:
                i, n = min(ends)
                head = bytes(self.buf[:i])
                del self.buf[:i + n]
                break
            if len(self.buf) > 64 * KIB:
                raise bad_request("Malformed multipart body.")
            if not self._fill():
                raise bad_request("Malformed multipart body.")
        headers = {}
        for line in head.split(b"\n"):
            line = line.strip()
            if not line or b":" not in line:
                continue
            k, v = line.split(b":", 1)
            headers[k.strip().decode("latin-1").lower()] = v.strip().decode("latin-1")
        return headers

    def part_data(self):
        """Yields the current part's bytes (stops before the boundary, which stays buffered)."""
        while True:
            i = self.buf.find(self.delim)
            if i >= 0:
                end = i - 1 if i > 0 and self.buf[i - 1] == 13 else i   # CR of a CRLF delimiter
                if end > 0:
                    yield bytes(self.buf[:end])
                del self.buf[:i]
                return
            safe = len(self.buf) - len(self.delim) - 1
            if safe > 0:
                yield bytes(self.buf[:safe])
                del self.buf[:safe]
            if not self._fill():
                raise bad_request("Malformed multipart body.")
